#!/usr/bin/env bash
# The test command (README "Quick start", .ci/run): builds the static guest agent that the
# guest-booting tests put into their initramfs, then runs every test of the workspace with
# cargo-nextest (guest-booting tests serialized by .config/nextest.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x scripts/build-agent.sh ]; then
    scripts/build-agent.sh >/dev/null
fi
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "cargo-nextest not found: falling back to cargo test (install: cargo install cargo-nextest)" >&2
    exec cargo test --workspace --no-fail-fast "$@"
fi
