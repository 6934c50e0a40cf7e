#!/usr/bin/env bash
# What a soak costs (README "Soak"): runs the smallest soak (one 2-vCPU guest, vcpu0, idle,
# timer, one repetition, TCG) with the release pinlat under the boot lock, and samples every 5 s
# the runner's VmRSS and VmHWM (/proc/<pid>/status), the bytes it wrote (/proc/<pid>/io wchar)
# and the size of the results directory (du). Prints the CSV's path; the run's record holds the
# agent's VmHWM (guests[].agent_max_rss_kib).
#
#   scripts/soak-measure.sh [DURATION] [INTERVAL_MS] [REPORT_EVERY] [WORKDIR]
#   scripts/soak-measure.sh 10m 1000 1m       # A in README
#   scripts/soak-measure.sh 15m 10 1m         # B: more interval frames than a day at 1 s
set -euo pipefail
duration=${1:-10m}
interval_ms=${2:-1000}
every=${3:-1m}
work=${4:-$(mktemp -d /tmp/pinlat-soak.XXXXXX)}
cd "$(dirname "$0")/.."
cargo build --release --locked -p pinlat-runner >&2
agent=$(scripts/build-agent.sh 2>/dev/null)
mkdir -p "$work/out"
cat > "$work/soak.toml" <<TOML
[run]
accel = "tcg"
boot_timeout_s = 120
interval_ms = $interval_ms
[host]
cpus = "0-1"
[[guests]]
name = "rt"
vcpus = 2
[[layouts]]
kind = "vcpu0"
[[scenarios]]
kind = "idle"
[[workloads]]
kind = "timer"
preheat_ms = 200
TOML
csv="$work/samples.csv"
echo "t_s,vmrss_kib,vmhwm_kib,wchar_bytes,dir_du_bytes" > "$csv"
exec 9>/tmp/pinlat-boot.lock
echo "soak-measure: waiting for the boot lock" >&2
flock 9
PINLAT_AGENT=$agent target/release/pinlat run "$work/soak.toml" --soak "$duration" \
    --report-every "$every" --out "$work/out" 2>"$work/stderr.log" &
pid=$!
t0=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
    hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
    wchar=$(awk '/^wchar/{print $2}' "/proc/$pid/io" 2>/dev/null || true)
    du=$(du -sk "$work/out" 2>/dev/null | cut -f1)
    echo "$(($(date +%s) - t0)),${rss:-},${hwm:-},${wchar:-},$((${du:-0} * 1024))" >> "$csv"
    sleep 5
done
wait "$pid" || echo "soak-measure: pinlat exited $? (see $work/stderr.log)" >&2
echo "$csv"
