#!/usr/bin/env bash
# Sets up a fresh Debian machine for pinlat (run as root): QEMU, rt-tests (oslat and cyclictest,
# for comparisons), a C toolchain for the tests' static init, virt-xml-validate with libvirt's
# schemas (libvirt-clients, which brings libvirt0's /usr/share/libvirt/schemas, and xmllint from
# libxml2-utils: the libvirt exports are validated with them), libvirtd with its QEMU driver (the
# libvirt launcher's boot tests start a private one), LAVA's schema code (lava-common, 45 kB,
# pure Python: the LAVA definition's test validates with it), ansible-core and OpenSSH (the
# fleet test, scripts/test-ansible.sh, starts sshd instances of its own), cargo-nextest if
# missing, and the static guest agent. Idempotent; quick when everything is there. The guest
# kernel is fetched on first use by `pinlat run` (Debian's PREEMPT_RT kernel, cached under
# ~/.cache/pinlat).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v oslat >/dev/null || need+=(rt-tests)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v cc >/dev/null || need+=(gcc)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
command -v virt-xml-validate >/dev/null || need+=(libvirt-clients)
[ -e /usr/share/libvirt/schemas/domain.rng ] || need+=(libvirt0)
# The libvirt launcher (`pinlat run --launcher libvirt`) and its boot tests, which start a private
# libvirtd: the daemon and its QEMU driver only (not libvirt-daemon-system, which would also set
# up and start the system daemon).
[ -x /usr/sbin/libvirtd ] || need+=(libvirt-daemon)
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
    need+=(libvirt-daemon-driver-qemu)
command -v xmllint >/dev/null || need+=(libxml2-utils)
/usr/bin/python3 -c 'import lava_common.schemas.test.testdef' 2>/dev/null || need+=(lava-common)
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
# A privileged libvirtd refuses to start without its built-in QEMU user, which only
# libvirt-daemon-system creates (the tests' private daemon runs QEMU as root all the same).
if [ -x /usr/sbin/libvirtd ] && ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt \
        --shell /usr/sbin/nologin libvirt-qemu
fi
# pinlat's host tracer (and its boot tests) read tracefs; systemd mounts it at boot, a bare
# machine may not have: mount it where the kernel documents it (a run without it warns with
# this fix and measures untraced).
if ! grep -qw tracefs /proc/mounts && [ -d /sys/kernel/tracing ]; then
    mount -t tracefs nodev /sys/kernel/tracing
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
scripts/build-agent.sh >/dev/null
