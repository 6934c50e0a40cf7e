#!/usr/bin/env bash
# Measures `pinlat report` on generated results directories of 100 and 1,000 runs and checks the
# two targets of issue 5: time for 1,000 ≤ 12 × time for 100, and peak RSS under 300 MiB.
#
# A thin wrapper: the work is `cargo xtask bench-report` (xtask/src/bench_report.rs), which
# generates the runs with the core library's own types (`cargo xtask gen-runs N DIR`) and reads
# peak RSS from wait4(2). Exit 0 both targets held, 1 a target missed, 2 bad usage, 3 failure.
#
# usage: scripts/bench-report.sh [WORKDIR]      (WORKDIR relative to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask bench-report "$@"
