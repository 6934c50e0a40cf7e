#!/usr/bin/env bash
# Measures `pinlat report` on generated results directories of 100 and 1,000 runs (copies of
# the 24 fixture runs in tests/fixtures/runs-basic with fresh repetition numbers, so the runs
# spread over the same 12 layout × scenario × workload groups), and checks the two targets of
# issue 5: time for 1,000 ≤ 12 × time for 100, and peak RSS under 300 MiB.
#
# usage: scripts/bench-report.sh [WORKDIR]      (needs /usr/bin/time and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
cargo build --release -q -p pinlat-runner
bin=target/release/pinlat

gen() { # gen N DIR
    python3 - "$1" "$2" <<'PY'
import json, os, sys, glob
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out + "/runs", exist_ok=True)
src = sorted(glob.glob("tests/fixtures/runs-basic/runs/*.json"))
recs = [json.load(open(p)) for p in src]
for i in range(n):
    r = dict(recs[i % len(recs)])
    rep = i // len(recs) + 1 + (100 if r["repetition"] == 2 else 0)
    r["repetition"] = rep
    r["name"] = f'{r["layout"]}.{r["scenario"]}.{r["workload"]}.r{rep}'
    with open(f'{out}/runs/{r["name"]}.json', "w") as f:
        json.dump(r, f)
for x in ("plan.json", "host.json"):
    p = json.load(open("tests/fixtures/runs-basic/" + x))
    if x == "plan.json":
        p["runs"] = []
    json.dump(p, open(f"{out}/{x}", "w"))
PY
}

measure() { # measure DIR -> "seconds rss_kib"
    /usr/bin/time -v "$bin" report "$1" 2>"$1.time" >/dev/null || true
    local wall rss
    wall=$(grep 'Elapsed (wall clock)' "$1.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$1.time" | awk '{print $NF}')
    python3 -c "import sys; p='$wall'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))), $rss)"
}

for n in 100 1000; do
    rm -rf "$work/runs-$n"
    gen "$n" "$work/runs-$n"
done
read -r t100 r100 < <(measure "$work/runs-100")
read -r t1000 r1000 < <(measure "$work/runs-1000")
# Repeat once and keep the faster of two (first-touch page cache effects).
read -r t100b _ < <(measure "$work/runs-100")
read -r t1000b _ < <(measure "$work/runs-1000")
python3 - "$t100" "$t100b" "$t1000" "$t1000b" "$r100" "$r1000" <<'PY'
import sys
t100, t100b, t1000, t1000b, r100, r1000 = map(float, sys.argv[1:])
a, b = min(t100, t100b), min(t1000, t1000b)
ratio = b / a if a > 0 else float("inf")
print(f"100 runs:   {a:.2f} s, max RSS {r100/1024:.1f} MiB")
print(f"1000 runs:  {b:.2f} s, max RSS {r1000/1024:.1f} MiB")
print(f"time ratio 1000/100: {ratio:.2f} (target <= 12)")
ok = ratio <= 12 and r1000 < 300 * 1024
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
