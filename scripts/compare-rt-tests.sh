#!/usr/bin/env bash
# Side-by-side check of pinlat-agent against the tools engineers trust (Debian rt-tests):
#   busy-poll samples/s vs oslat loops/s          (same CPU, SCHED_OTHER, same duration)
#   timer median wake-up vs cyclictest median      (same CPU, interval, SCHED_FIFO priority)
# Runs alternate A B A B so drifting background load hits both tools alike, and every ratio is
# printed per round and as the median over rounds.
#
# A thin wrapper: the work is `cargo xtask compare-rt-tests` (xtask/src/compare_rt_tests.rs),
# which reads every figure from JSON: the agent's RunResult (--output) and rt-tests' --json.
#
# Usage: scripts/compare-rt-tests.sh [-c CPU] [-d SECONDS] [-r ROUNDS] [-i INTERVAL_US] [-p PRIO]
# Needs root (SCHED_FIFO, mlockall), oslat and cyclictest (apt-get install rt-tests).
# PINLAT_AGENT overrides the agent binary (default: a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask compare-rt-tests "$@"
