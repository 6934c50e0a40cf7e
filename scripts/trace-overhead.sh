#!/usr/bin/env bash
# Measures what pinlat's tracer costs the measured CPU: the native agent runs with and without
# a tracefs instance recording that CPU, alternating (A B, B A, A B, ...) so drift in host
# load hits both sides alike.
#
#   scripts/trace-overhead.sh [PAIRS] [DURATION] [CPU]     # default 6 pairs, 5s, CPU 1
#   WORKLOADS="timer --priority 95" scripts/trace-overhead.sh 8
#
# Workloads: busy-poll (SCHED_OTHER, the agent's default), busy-poll at SCHED_FIFO 1 (as pinlat
# runs RT vCPU threads), timer at SCHED_FIFO 95. Compares busy-poll samples/s and the p50 and
# p99 (from the agent's summary line, i.e. CpuResult::summary()). The instance is configured as
# host-runner/src/trace/instance.rs does (own instance named pinlat-<pid>-overhead, mono
# clock, tracing_cpumask = CPU, 16 MiB on CPU, 4 KiB elsewhere, DEFAULT_EVENTS) and removed on
# every exit path. Needs root, tracefs, a C compiler, and target/release/pinlat-agent
# (`cargo build --release -p pinlat-agent`) or $PINLAT_AGENT. Prints one TSV row per run, then per workload the
# medians and the traced/untraced ratios.
#
# On a shared or virtual host the run-to-run spread of these figures is far above 2 %, so the
# script also measures what one recorded event costs, which that noise hardly moves: two
# SCHED_FIFO threads on CPU ping-pong a byte through pipes (4 events per round trip: 2 wakeups,
# 2 switches), traced and untraced, alternating. Cost per event × events per second of a
# workload is the CPU share the tracer takes from it.
set -euo pipefail

pairs="${1:-6}" dur="${2:-5s}" cpu="${3:-1}"
cd "$(dirname "$0")/.."
agent="${PINLAT_AGENT:-target/release/pinlat-agent}"
[ -x "$agent" ] || { echo "build the agent first: cargo build --release -p pinlat-agent" >&2; exit 2; }
tracefs=/sys/kernel/tracing
[ -d "$tracefs/instances" ] || { echo "tracefs is not mounted at $tracefs" >&2; exit 2; }
inst="$tracefs/instances/pinlat-$$-overhead"
tmp="$(mktemp -d)"
cleanup() {
    if [ -d "$inst" ]; then echo 0 >"$inst/tracing_on"; rmdir "$inst"; fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

events="sched/sched_switch sched/sched_wakeup sched/sched_wakeup_new sched/sched_migrate_task
irq/irq_handler_entry irq/irq_handler_exit irq/softirq_entry irq/softirq_exit
ipi/ipi_send_cpu ipi/ipi_send_cpumask ipi/ipi_entry ipi/ipi_exit kvm/kvm_exit kvm/kvm_entry"

tracer_on() {
    mkdir "$inst"
    echo 0 >"$inst/tracing_on"
    echo mono >"$inst/trace_clock"
    printf '%x\n' $((1 << cpu)) >"$inst/tracing_cpumask"
    echo 4 >"$inst/buffer_size_kb"
    echo 16384 >"$inst/per_cpu/cpu$cpu/buffer_size_kb"
    for e in $events; do
        [ -e "$inst/events/$e/enable" ] && echo 1 >"$inst/events/$e/enable"
    done
    for f in "$inst"/events/irq_vectors/*_entry "$inst"/events/irq_vectors/*_exit; do
        echo 1 >"$f/enable"
    done
    echo 1 >"$inst/tracing_on"
}

# Prints "events lost" of the CPU's buffer, then removes the instance.
tracer_off() {
    echo 0 >"$inst/tracing_on"
    awk -F': *' '/^entries/ {e=$2} /^overrun/ {o=$2} /^dropped events/ {d=$2} END {print e, o + d}' \
        "$inst/per_cpu/cpu$cpu/stats"
    rmdir "$inst"
}

# run WORKLOAD-ARGS TRACED → prints "samples_per_s p50_ns p99_ns max_ns events lost"
run() {
    local traced="$2" stats="- -"
    [ "$traced" = 1 ] && tracer_on
    # shellcheck disable=SC2086
    "$agent" --native $1 --cpus "$cpu" --duration "$dur" --output "$tmp/out.json" 2>"$tmp/err"
    [ "$traced" = 1 ] && stats="$(tracer_off)"
    local line
    line="$(grep '^summary ' "$tmp/err" | head -1)"
    get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
    echo "$(get samples_per_s) $(get p50_ns) $(get p99_ns) $(get max_ns) $stats"
}

printf 'workload\tpair\ttraced\tsamples_per_s\tp50_ns\tp99_ns\tmax_ns\tevents\tlost\n'
rows="$tmp/rows"
: >"$rows"
IFS=, read -r -a workloads <<<"${WORKLOADS:-busy-poll,busy-poll --priority 1,timer --priority 95}"
for wl in "${workloads[@]}"; do
    name="${wl// --priority /@fifo}"
    for p in $(seq 1 "$pairs"); do
        if ((p % 2)); then order="0 1"; else order="1 0"; fi
        for t in $order; do
            r="$(run "--workload $wl" "$t")"
            printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$t" "${r// /$'\t'}" | tee -a "$rows"
        done
    done
done

echo
echo "# medians per workload; ratio = traced / untraced"
for name in $(cut -f1 "$rows" | sort -u); do
    for col in 4 5 6; do
        for t in 0 1; do
            awk -F'\t' -v n="$name" -v t="$t" -v c="$col" '$1 == n && $3 == t {print $c}' "$rows" |
                sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}' \
                >"$tmp/m$t"
        done
        label=$(case $col in 4) echo samples_per_s ;; 5) echo p50_ns ;; *) echo p99_ns ;; esac)
        awk -v n="$name" -v l="$label" -v a="$(cat "$tmp/m0")" -v b="$(cat "$tmp/m1")" \
            'BEGIN {printf "%-22s %-14s untraced %12.0f  traced %12.0f  ratio %.4f\n", n, l, a, b, (a > 0 ? b / a : 0)}'
    done
    awk -F'\t' -v n="$name" '$1 == n && $3 == 1 {e += $8; k++} END {printf "%-22s events/run %.0f\n", n, e / k}' "$rows"
done

echo
echo "# cost of one recorded event: pipe ping-pong of two SCHED_FIFO 50 threads on CPU $cpu"
cat >"$tmp/pp.c" <<'C'
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static int ab[2], ba[2], cpu;
static long rounds;
static void place(void) {
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s);
    struct sched_param p = { .sched_priority = 50 }; sched_setscheduler(0, SCHED_FIFO, &p);
}
static void *peer(void *x) {
    (void)x; place(); char c;
    for (long i = 0; i < rounds; i++)
        if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) exit(1);
    return NULL;
}
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    cpu = atoi(argv[1]); rounds = atol(argv[2]);
    if (pipe(ab) || pipe(ba)) return 1;
    pthread_t t; pthread_create(&t, NULL, peer, NULL);
    place(); usleep(1000);
    struct timespec s, e; char c = 'x';
    clock_gettime(CLOCK_MONOTONIC, &s);
    for (long i = 0; i < rounds; i++)
        if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) return 1;
    clock_gettime(CLOCK_MONOTONIC, &e);
    pthread_join(t, NULL);
    printf("%.1f\n", ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / rounds);
    return 0;
}
C
cc -O2 -pthread -o "$tmp/pp" "$tmp/pp.c"
rounds=20000 # ~80 ms here: well inside the RT runtime budget, so throttling never splits a run
: >"$tmp/pp.rows"
for i in $(seq 1 12); do
    if ((i % 2)); then order="0 1"; else order="1 0"; fi
    for t in $order; do
        sleep 0.3
        [ "$t" = 1 ] && tracer_on
        ns="$("$tmp/pp" "$cpu" "$rounds")"
        ev=0
        [ "$t" = 1 ] && ev="$(tracer_off | cut -d' ' -f1)"
        echo "$t $ns $ev" >>"$tmp/pp.rows"
    done
done
med() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
u="$(awk '$1 == 0 {print $2}' "$tmp/pp.rows" | med)"
t="$(awk '$1 == 1 {print $2}' "$tmp/pp.rows" | med)"
e="$(awk '$1 == 1 {print $3}' "$tmp/pp.rows" | med)"
awk -v u="$u" -v t="$t" -v e="$e" -v r="$rounds" 'BEGIN {
    per = e / r
    printf "round trip untraced %.0f ns, traced %.0f ns, %.2f events per round trip: %.0f ns per event\n", u, t, per, (t - u) / per
}'
