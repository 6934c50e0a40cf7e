#!/usr/bin/env bash
# Side-by-side check of pinlat-agent against the tools engineers trust (Debian rt-tests):
#   busy-poll samples/s  vs  oslat loops/s          (same CPU, SCHED_OTHER, same duration)
#   timer median wake-up vs  cyclictest median      (same CPU, interval, SCHED_FIFO priority)
# Runs alternate A B A B so drifting background load hits both tools alike, and every ratio is
# printed per round and as the median over rounds.
#
# Usage: scripts/compare-rt-tests.sh [-c CPU] [-d SECONDS] [-r ROUNDS] [-i INTERVAL_US] [-p PRIO]
# Needs root (SCHED_FIFO, mlockall), oslat and cyclictest (apt-get install rt-tests), jq.
# PINLAT_AGENT overrides the agent binary (default: a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."

ncpu=$(nproc)
cpu=$((ncpu - 1))
dur=5
rounds=3
interval=1000
prio=95
while getopts "c:d:r:i:p:h" o; do
    case $o in
        c) cpu=$OPTARG ;;
        d) dur=$OPTARG ;;
        r) rounds=$OPTARG ;;
        i) interval=$OPTARG ;;
        p) prio=$OPTARG ;;
        *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
main_cpu=0
[[ $cpu == 0 && $ncpu -gt 1 ]] && main_cpu=1

for tool in oslat cyclictest jq; do
    command -v "$tool" >/dev/null || { echo "compare: $tool missing (apt-get install rt-tests jq)" >&2; exit 2; }
done
if [[ -z ${PINLAT_AGENT:-} ]]; then
    cargo build --release -q -p pinlat-agent
    PINLAT_AGENT=target/release/pinlat-agent
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.3f\n", a / b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

oslat_rate() {
    oslat -c "$cpu" -C "$main_cpu" -D "$dur" -q --json="$tmp/oslat.json" >/dev/null
    jq '.thread."0" | ([.histogram[]] | add) / .duration | floor' "$tmp/oslat.json"
}
agent_poll_rate() {
    "$PINLAT_AGENT" --native --workload busy-poll --cpus "$cpu" --duration "${dur}s" --preheat 1s \
        -q -o "$tmp/agent.json"
    jq '.results[0] | .samples * 1000000000 / .duration_ns | floor' "$tmp/agent.json"
}
cyclictest_median() {
    cyclictest -m -p "$prio" -i "$interval" -a "$cpu" -t 1 -D "$dur" -q -N -v 2>/dev/null |
        awk -F: 'NF == 3 && $1 ~ /^ *0$/ { print $3 + 0 }' | median
}
agent_timer_median() {
    "$PINLAT_AGENT" --native --workload timer --cpus "$cpu" --duration "${dur}s" --preheat 0s \
        --interval-us "$interval" --priority "$prio" -o "$tmp/agent.json" 2>&1 >/dev/null |
        sed -n 's/.* p50_ns=\([0-9]*\).*/\1/p'
}

echo "CPU $cpu, ${dur}s per run, $rounds rounds A B A B; agent $PINLAT_AGENT"
echo
echo "busy-poll: agent samples/s vs oslat loops/s (higher is sharper)"
: >"$tmp/poll"
for r in $(seq "$rounds"); do
    o=$(oslat_rate)
    a=$(agent_poll_rate)
    printf '  round %d  oslat %12d/s  agent %12d/s  ratio %s\n' "$r" "$o" "$a" "$(ratio "$a" "$o")"
    ratio "$a" "$o" >>"$tmp/poll"
done
echo "  median ratio agent/oslat: $(median <"$tmp/poll")"
echo
echo "timer: median wake-up latency, interval ${interval}us, SCHED_FIFO $prio (ratio 1.0 = same)"
: >"$tmp/timer"
for r in $(seq "$rounds"); do
    c=$(cyclictest_median)
    a=$(agent_timer_median)
    printf '  round %d  cyclictest %8s ns  agent %8s ns  ratio %s\n' "$r" "$c" "$a" "$(ratio "$a" "$c")"
    ratio "$a" "$c" >>"$tmp/timer"
done
echo "  median ratio agent/cyclictest: $(median <"$tmp/timer")"
