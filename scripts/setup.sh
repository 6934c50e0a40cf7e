#!/usr/bin/env bash
# Installs what pinlat needs on a fresh Debian machine (run as root): QEMU, rt-tests (oslat and
# cyclictest, for comparisons), and cargo-nextest if missing. Idempotent and quick when done.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v oslat >/dev/null || need+=(rt-tests)
command -v dpkg-deb >/dev/null || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
