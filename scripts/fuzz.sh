#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS]      # default 30 s per target
#   FUZZ_TARGETS="cpuset_parse qmp_reply" scripts/fuzz.sh 60
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Corpora grow in fuzz/corpus/<target>/ across runs; a crash
# leaves its input in fuzz/artifacts/<target>/ and makes this script exit 1 after the other
# targets have run. Reproduce with `cargo +nightly fuzz run <target> <artifact>`.
set -euo pipefail

secs="${1:-30}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/../fuzz"

# Seeds the corpus of a target from the repository's own examples, so short runs start
# from valid inputs instead of rediscovering the syntax.
seed() {
    local dir="corpus/$1"
    case "$1" in
    config_plan)
        for f in ../configs/*.toml ../configs/invalid/*.toml; do
            cp -n "$f" "$dir/seed-$(basename "$f")"
        done
        ;;
    cpuset_parse)
        local i=0
        for s in '0-3,^2,6' '^0' '0x5' '1-4' '0,,1' '^1,0-2' '0xff00' '8191' '3-1'; do
            printf '\x04%s' "$s" >"$dir/seed-$i"
            i=$((i + 1))
        done
        ;;
    qmp_reply)
        printf '%s\n' \
            '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}' \
            '{"return": {}, "id": 1}' \
            '{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}' \
            '{"return": [{"cpu-index": 0, "thread-id": 100, "qom-path": "/machine/unattached/device[0]", "target": "x86_64"}], "id": 2}' \
            '{"return": [{"id": "iothread1", "thread-id": 101}], "id": 3}' \
            '{"return": {"status": "running", "running": true}, "id": 4}' \
            '{"error": {"class": "CommandNotFound", "desc": "no"}, "id": 5}' \
            >"$dir/seed-session"
        ;;
    esac
}

# Build once, then run the binaries: `cargo fuzz run` would rebuild whenever the tree changed.
cargo +nightly fuzz build
bin=target/x86_64-unknown-linux-gnu/release
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
failed=()
for t in $targets; do
    mkdir -p "corpus/$t"
    seed "$t"
    echo "== $t: ${secs} s"
    start=$(date +%s)
    mkdir -p "artifacts/$t"
    if "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "corpus/$t"; then
        echo "== $t: ok after $(($(date +%s) - start)) s"
    else
        echo "== $t: FAILED after $(($(date +%s) - start)) s (see fuzz/artifacts/$t/)" >&2
        failed+=("$t")
    fi
done
if ((${#failed[@]})); then
    echo "fuzz targets that found a crash: ${failed[*]}" >&2
    exit 1
fi
echo "every fuzz target ran ${secs} s without a crash"
