#!/usr/bin/env python3
"""Records the guest console fixtures of tests/fixtures/console/ (see its README).

Boots the cached Debian PREEMPT_RT guest kernel (~/.cache/pinlat/kernels/*/vmlinuz-*, as
`pinlat run` fetches it) under QEMU TCG with pinlat's guest command line and a tiny static C
init, provokes one failure per scenario, and writes the guest's ttyS0 as <out>/<scenario>.log,
byte for byte. Every boot runs under `timeout -s KILL` and QEMU is killed when a scenario ends,
whatever happened; only this script's own QEMU threads and its own freezer cgroup are touched.

Needs: qemu-system-x86_64, cc with static glibc (libc6-dev), root for the scenarios that
change QEMU's threads (timer-check-panic: taskset/chrt; vcpu-frozen-*: the cgroup v1
freezer). Kernel addresses, PIDs and timestamps differ on every recording.

    scripts/record-console-fixtures.py --out /tmp/console all
    scripts/record-console-fixtures.py --out tests/fixtures/console timer-check-panic
"""
import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The init: pinlat.mode= on the kernel command line picks what it does. It says "hello" and
# "bye" on ttyS1 like the agent (file-backed, so the host can wait for it).
INIT_C = r'''
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int agent = -1;
static char cmd[1024];

static void say(const char *s) { if (agent >= 0) write(agent, s, strlen(s)); }
static void put(const char *path, const char *v) {
    int fd = open(path, O_WRONLY);
    if (fd >= 0) { write(fd, v, strlen(v)); close(fd); }
}
static int param(const char *name, int dflt) {
    char *s = strstr(cmd, name);
    return s ? atoi(s + strlen(name)) : dflt;
}
static void pin(int cpu) {
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s);
}
static void bye(void) { say("bye\n"); sync(); reboot(RB_POWER_OFF); }

/* The address of `sym` in /proc/kallsyms, as text. */
static void kallsym(const char *sym, char *out, size_t len) {
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[256], addr[64], type[8], name[200];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %7s %199s", addr, type, name) == 3 && !strcmp(name, sym)) {
            snprintf(out, len, "%s", addr);
            break;
        }
    if (f) fclose(f);
}

int main(void) {
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    mount("proc", "/proc", "proc", 0, 0);
    agent = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
    struct termios t;
    if (agent >= 0 && tcgetattr(agent, &t) == 0) { cfmakeraw(&t); tcsetattr(agent, TCSANOW, &t); }
    int c = open("/proc/cmdline", O_RDONLY);
    if (c >= 0) { read(c, cmd, sizeof cmd - 1); close(c); }
    char mode[32] = "hello", *m = strstr(cmd, "pinlat.mode=");
    if (m) sscanf(m + 12, "%31[a-z-]", mode);

    if (!strcmp(mode, "exit")) return 1;                 /* PID 1 exits: kernel panic */
    if (!strcmp(mode, "crash")) { put("/proc/sysrq-trigger", "c"); pause(); }
    say("hello pinlat\n");
    if (!strcmp(mode, "hold")) {                         /* the host stops the VM */
        for (int i = 0; i < param("pinlat.secs=", 20); i++) sleep(1);
        bye();
    }
    if (!strcmp(mode, "oops") || !strcmp(mode, "oops-init")) {
        /* The host patches sysinfo(2) into a NULL dereference through QEMU's gdbstub; the
         * call oopses in a child (the guest lives on) or in PID 1 (the kernel panics). */
        char addr[64], line[96];
        kallsym("__x64_sys_sysinfo", addr, sizeof addr);
        snprintf(line, sizeof line, "sym %s\n", addr);
        say(line);
        sleep(6);
        struct sysinfo si;
        if (!strcmp(mode, "oops-init")) sysinfo(&si);
        pid_t p = fork();
        if (p == 0) { sysinfo(&si); _exit(0); }
        waitpid(p, 0, 0);
        sleep(2);
        bye();
    }
    if (!strcmp(mode, "stall")) {
        /* Work on both vCPUs while the host freezes one vCPU thread: a task on CPU 1 keeps
         * entering the kernel (so CPU 1 owes RCU quiescent states) and one on CPU 0 waits for
         * grace periods (membarrier GLOBAL is synchronize_rcu(), an uninterruptible sleep). */
        put("/proc/sys/kernel/hung_task_timeout_secs", "10");
        if (strstr(cmd, "pinlat.kthreads0")) {
            /* Every task that may move (the RCU grace-period kthread too) to CPU 0. */
            DIR *proc = opendir("/proc");
            struct dirent *de;
            cpu_set_t z; CPU_ZERO(&z); CPU_SET(0, &z);
            while (proc && (de = readdir(proc)))
                if (atoi(de->d_name) > 0) sched_setaffinity(atoi(de->d_name), sizeof z, &z);
            if (proc) closedir(proc);
        }
        pid_t a = fork();
        if (a == 0) { pin(1); for (;;) getppid(); }
        pid_t b = fork();
        if (b == 0) {
            pin(0);
            for (;;) { syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0); usleep(100000); }
        }
        for (int i = 0; i < param("pinlat.secs=", 60); i++) sleep(1);
        kill(a, SIGKILL); kill(b, SIGKILL);
        bye();
    }
    bye();
    return 0;
}
'''

# pinlat's guest command line (host-runner/src/qemu/args.rs guest_cmdline + GUEST_PARAMS).
BASE = "console=ttyS0,115200 panic=-1 quiet"
PARAMS = "tsc=reliable noirqdebug"
RT1 = "isolcpus=1 nohz_full=1 rcu_nocbs=1 irqaffinity=0"   # 2 vCPUs, vCPU 1 realtime
ALL_RT1 = "isolcpus=0 nohz_full=0 rcu_nocbs=0"              # 1 vCPU, all realtime


def newc(entries):
    """An uncompressed newc cpio archive of (name, mode, data, (rdevmajor, rdevminor))."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", (0, 0))], 1):
        nb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
        out += b"070701" + "".join("%08x" % v for v in fields).encode() + nb
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def initramfs(init):
    ents = [("dev", 0o040755, b"", (0, 0)), ("dev/console", 0o020600, b"", (5, 1)),
            ("proc", 0o040555, b"", (0, 0)), ("sys", 0o040555, b"", (0, 0))]
    if init is not None:
        ents.append(("init", 0o100755, init, (0, 0)))
    return newc(ents)


def kernel():
    found = sorted(glob.glob(os.path.expanduser("~/.cache/pinlat/kernels/*/vmlinuz-*")))
    if not found:
        sys.exit("no cached guest kernel: `cargo run -p pinlat-runner -- doctor` says how to get one")
    return found[-1]


class Vm:
    """One QEMU, launched like pinlat launches it (host-runner/src/qemu/args.rs), bounded by
    `timeout -s KILL` and always killed by kill()."""

    def __init__(self, d, vcpus, append, init, paused=False, gdb=False, limit_s=120):
        self.console = os.path.join(d, "console.log")
        self.agent = os.path.join(d, "agent.out")
        self.qmp_path = os.path.join(d, "qmp.sock")
        self.gdb_path = os.path.join(d, "gdb.sock")
        initrd = os.path.join(d, "initrd.cpio")
        with open(initrd, "wb") as f:
            f.write(initramfs(init))
        args = ["timeout", "-s", "KILL", str(limit_s), "qemu-system-x86_64",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-name", "pinlat-fixture,debug-threads=on", "-accel", "tcg,thread=multi",
                "-smp", str(vcpus), "-m", "256", "-kernel", kernel(), "-initrd", initrd,
                "-append", append,
                "-chardev", "file,id=console,path=" + self.console, "-serial", "chardev:console",
                "-chardev", "file,id=agent,path=" + self.agent, "-serial", "chardev:agent",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if paused:
            args.append("-S")
        if gdb:
            args += ["-gdb", "unix:%s,server=on,wait=off" % self.gdb_path]
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(d, "qemu.err"), "wb"))

    def qemu_pid(self):
        """QEMU's pid: the only child of `timeout`."""
        for _ in range(200):
            try:
                with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("QEMU did not start")

    def qmp(self, cmds):
        for _ in range(200):
            if os.path.exists(self.qmp_path):
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.qmp_path)
        f = s.makefile("rwb")
        f.readline()
        out = []
        for c in [{"execute": "qmp_capabilities"}] + cmds:
            f.write(json.dumps(c).encode() + b"\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    out.append(r)
                    break
        s.close()
        return out[1:]

    def vcpu_tid(self, index):
        cpus = self.qmp([{"execute": "query-cpus-fast"}])[0]["return"]
        return [c["thread-id"] for c in cpus if c["cpu-index"] == index][0]

    def wait_agent(self, needle, secs):
        end = time.time() + secs
        while time.time() < end:
            try:
                with open(self.agent, "rb") as f:
                    text = f.read().decode(errors="replace")
                if needle in text:
                    return text
            except OSError:
                pass
            if self.p.poll() is not None:
                return None
            time.sleep(0.1)
        return None

    def wait_exit(self, secs):
        try:
            return self.p.wait(secs)
        except subprocess.TimeoutExpired:
            return None

    def console_bytes(self):
        try:
            with open(self.console, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def kill(self):
        try:
            pid = self.qemu_pid() if self.p.poll() is None else None
            if pid:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        except (OSError, RuntimeError):
            pass
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def gdb_write(path, addr, data):
    """Writes `data` at guest virtual address `addr` through QEMU's gdbstub (the VM stops while
    a debugger is attached and goes on at `c`)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(10)
    buf = b""

    def reply(wanted):
        """Acknowledges packets until one whose body starts with one of `wanted`."""
        nonlocal buf
        while True:
            start = buf.find(b"$")
            end = buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(buf) >= end + 3:
                body, buf = buf[start + 1:end], buf[end + 3:]
                s.sendall(b"+")
                if body.startswith(wanted):
                    return body
                continue
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("gdbstub closed the connection")
            buf += chunk

    def send(body):
        s.sendall(b"$%s#%02x" % (body, sum(body) & 0xFF))

    send(b"?")
    reply((b"T", b"S"))
    send(b"M%x,%x:%s" % (addr, len(data), data.hex().encode()))
    body = reply((b"OK", b"E"))
    send(b"c")
    time.sleep(0.5)
    s.close()
    if body != b"OK":
        raise RuntimeError("gdbstub refused the write: %r" % body)


class Freezer:
    """A cgroup v1 freezer group of our own for one QEMU thread; thawed and removed on exit."""

    def __init__(self, tid):
        self.dir = "/sys/fs/cgroup/freezer/pinlat-fixture-%d" % os.getpid()
        os.mkdir(self.dir)
        self._write("tasks", str(tid))

    def _write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def freeze(self, secs):
        self._write("freezer.state", "FROZEN")
        time.sleep(secs)
        self._write("freezer.state", "THAWED")

    def close(self):
        try:
            self._write("freezer.state", "THAWED")
            with open(os.path.join(self.dir, "tasks")) as f:
                for tid in f.read().split():
                    with open("/sys/fs/cgroup/freezer/tasks", "w") as root:
                        root.write(tid)
        finally:
            os.rmdir(self.dir)


def scenario_timer_check_panic(vm_of):
    """The issue's layout: a 1-vCPU all-realtime guest, every QEMU thread on host CPU 1 (the
    emulator shares the RT vCPU's pCPU), the vCPU thread SCHED_FIFO 1, started paused so the
    vCPU is FIFO from its first instruction."""
    vm = vm_of(1, " ".join([BASE, ALL_RT1, PARAMS]), paused=True, limit_s=90)
    pid = vm.qemu_pid()
    tid = vm.vcpu_tid(0)
    subprocess.check_call(["taskset", "-a", "-p", "-c", "1", str(pid)], stdout=subprocess.DEVNULL)
    subprocess.check_call(["chrt", "-f", "-p", "1", str(tid)])
    vm.qmp([{"execute": "cont"}])
    vm.wait_exit(80)


def scenario_init_exits_panic(vm_of):
    vm_of(1, " ".join([BASE, ALL_RT1, PARAMS, "pinlat.mode=exit"])).wait_exit(90)


def scenario_sysrq_crash_panic(vm_of):
    vm_of(2, " ".join([BASE, RT1, PARAMS, "pinlat.mode=crash"])).wait_exit(90)


def scenario_no_root_fs_panic(vm_of):
    vm_of(1, " ".join([BASE, PARAMS]), init=None).wait_exit(90)


def scenario_no_working_init_panic(vm_of):
    vm_of(1, " ".join([BASE, PARAMS]), init=b"not an executable\n").wait_exit(90)


def _oops(vm_of, mode):
    vm = vm_of(2, " ".join([BASE, RT1, PARAMS, "pinlat.mode=" + mode]), gdb=True)
    text = vm.wait_agent("sym ", 60) or ""
    addr = [l.split()[1] for l in text.splitlines() if l.startswith("sym ")][0]
    gdb_write(vm.gdb_path, int(addr, 16), bytes.fromhex("488b042500000000"))  # mov rax, [0]
    vm.wait_exit(60)


def scenario_oops_survived(vm_of):
    _oops(vm_of, "oops")


def scenario_oops_then_panic(vm_of):
    _oops(vm_of, "oops-init")


def _freeze(vm_of, extra):
    vm = vm_of(2, " ".join([BASE, PARAMS, "pinlat.mode=stall pinlat.secs=70", extra]), limit_s=240)
    if not vm.wait_agent("hello", 60):
        raise RuntimeError("no hello")
    freezer = Freezer(vm.vcpu_tid(1))
    try:
        time.sleep(3)
        freezer.freeze(40)
    finally:
        freezer.close()
    vm.wait_agent("bye", 150)
    vm.wait_exit(20)


def scenario_vcpu_frozen_hung_task_rcu_starved(vm_of):
    _freeze(vm_of, "")


def scenario_vcpu_frozen_rcu_stall_soft_lockup(vm_of):
    _freeze(vm_of, "pinlat.kthreads0")


def scenario_vm_stopped_soft_lockup(vm_of):
    vm = vm_of(2, " ".join([BASE, RT1, PARAMS, "pinlat.mode=hold pinlat.secs=20"]), limit_s=180)
    if not vm.wait_agent("hello", 60):
        raise RuntimeError("no hello")
    time.sleep(2)
    pid = vm.qemu_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(30)
    finally:
        os.kill(pid, signal.SIGCONT)
    vm.wait_agent("bye", 120)
    vm.wait_exit(20)


def scenario_verbose_boot_ok(vm_of):
    """A whole boot without `quiet` (trimmed afterwards: lines 20-70, the e820 and ACPI
    tables, are cut to stay under 20 KB)."""
    vm_of(2, " ".join(["console=ttyS0,115200 panic=-1", RT1, PARAMS])).wait_exit(90)


SCENARIOS = {name[len("scenario_"):].replace("_", "-"): fn
             for name, fn in sorted(globals().items()) if name.startswith("scenario_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for <scenario>.log")
    ap.add_argument("scenario", nargs="+", choices=sorted(SCENARIOS) + ["all"])
    args = ap.parse_args()
    names = sorted(SCENARIOS) if "all" in args.scenario else args.scenario
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pinlat-fixture-") as build:
        src = os.path.join(build, "init.c")
        with open(src, "w") as f:
            f.write(INIT_C)
        subprocess.check_call(["cc", "-static", "-O2", "-w", "-o", os.path.join(build, "init"), src])
        with open(os.path.join(build, "init"), "rb") as f:
            init = f.read()
        for name in names:
            with tempfile.TemporaryDirectory(prefix="pinlat-fixture-" + name + "-") as d:
                vms = []

                def vm_of(vcpus, append, init=init, **kw):
                    vms.append(Vm(d, vcpus, append, init, **kw))
                    return vms[-1]

                started = time.time()
                try:
                    SCENARIOS[name](vm_of)
                finally:
                    for vm in vms:
                        vm.kill()
                console = vms[-1].console_bytes() if vms else b""
                if name == "verbose-boot-ok":
                    lines = console.split(b"\n")
                    console = b"\n".join(lines[:19] + lines[70:])
                with open(os.path.join(args.out, name + ".log"), "wb") as f:
                    f.write(console)
                print("%s: %d bytes in %.0f s" % (name, len(console), time.time() - started))


if __name__ == "__main__":
    main()
