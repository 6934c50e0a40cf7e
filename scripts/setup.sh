#!/usr/bin/env bash
# Sets up a fresh Debian machine for pinlat (run as root): QEMU, rt-tests (oslat and cyclictest,
# for comparisons), a C toolchain for the tests' static init, Ansible and OpenSSH for the fleet
# test (scripts/test-ansible.sh), cargo-nextest if missing, and the static guest agent. Idempotent; quick when everything is there. The guest kernel is fetched
# on first use by `pinlat run` (Debian's PREEMPT_RT kernel, cached under ~/.cache/pinlat).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v oslat >/dev/null || need+=(rt-tests)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v cc >/dev/null || need+=(gcc)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    # The fleet test starts sshd instances of its own on loopback addresses only: the package
    # must not start (or enable) the system sshd, which would listen on every address. A
    # policy-rc.d that refuses every start does that for the install, then goes away.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        trap 'rm -f "$policy"' EXIT
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [[ " ${need[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable --quiet ssh.service ssh.socket 2>/dev/null || true
    fi
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
scripts/build-agent.sh >/dev/null
