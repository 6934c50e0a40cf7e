#!/usr/bin/env bash
# Build the guest agent as a static x86-64 binary (it runs as /init in an initramfs, where there
# is no dynamic loader) and print its path.
#
# glibc static (+crt-static). The explicit --target keeps RUSTFLAGS away from proc-macros and
# build scripts, which must stay dynamic. Symbols are stripped to keep the binary small.
#
#   scripts/build-agent.sh            # → target/x86_64-unknown-linux-gnu/release/pinlat-agent
#   PINLAT_AGENT=$(scripts/build-agent.sh 2>/dev/null)
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" -p pinlat-agent \
    --config 'profile.release.strip="symbols"' >&2
bin="${CARGO_TARGET_DIR:-target}/$target/release/pinlat-agent"
# Refuse to hand out a binary that would not start as /init.
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "build-agent: $bin is dynamically linked" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
if (( size > 5 * 1024 * 1024 )); then
    echo "build-agent: $bin is $size bytes, over the 5 MiB budget" >&2
    exit 1
fi
echo "build-agent: $bin ($size bytes, static)" >&2
realpath "$bin"
