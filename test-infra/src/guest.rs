//! One booted test guest: the real guest kernel (found as `pinlat run` finds it) with a tiny
//! static init, built with the same [`VmSpec::for_guest`] as every run. It holds the boot lock,
//! is always killed on drop, and prints its console, agent channel and QEMU's stderr when the
//! test is failing.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pinlat::config::Guest as GuestConfig;
use pinlat::cpuset::CpuSet;
use pinlat::kinds::Accel;
use pinlat_runner::follow::{log_tail, FileFollower};
use pinlat_runner::initramfs::Initramfs;
use pinlat_runner::kernel::KernelSearch;
use pinlat_runner::qemu::{AgentChannel, Qemu, QemuBinary, VmSpec};
use pinlat_runner::qmp::QmpClient;

use crate::BootLock;

/// A static init: mounts /dev and /proc, writes `hello pinlat` and its command line to ttyS1 in
/// raw mode, then either powers off at once or (with `pinlat.hold` on the command line) writes
/// a tick every 100 ms for up to 60 s first.
const INIT_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>
int main(void) {
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    mount("proc", "/proc", "proc", 0, 0);
    int fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
    struct termios t;
    if (fd >= 0 && tcgetattr(fd, &t) == 0) { cfmakeraw(&t); tcsetattr(fd, TCSANOW, &t); }
    char cmd[1024] = {0}, buf[1200];
    int c = open("/proc/cmdline", O_RDONLY);
    if (c >= 0) { read(c, cmd, sizeof cmd - 1); close(c); }
    cmd[strcspn(cmd, "\n")] = 0;
    int n = snprintf(buf, sizeof buf, "hello pinlat\ncmdline %s\n", cmd);
    write(fd, buf, n);
    if (strstr(cmd, "pinlat.hold")) {
        for (int i = 0; i < 600; i++) {
            n = snprintf(buf, sizeof buf, "tick %d\n", i);
            write(fd, buf, n);
            usleep(100000);
        }
    }
    write(fd, "bye\n", 4);
    tcdrain(fd);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
"#;

/// Builds the static init of [`Guest`] in `dir` (needs `cc` and static glibc: `gcc`,
/// `libc6-dev`).
pub fn static_init(dir: &Path) -> Vec<u8> {
    let src = dir.join("init.c");
    let bin = dir.join("init");
    fs::write(&src, INIT_C).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running cc (install gcc and libc6-dev)");
    assert!(
        out.status.success(),
        "cc -static failed (install libc6-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read(&bin).unwrap()
}

/// One booted guest under TCG.
pub struct Guest {
    /// Its QEMU.
    pub qemu: Qemu,
    /// The console log.
    pub console: PathBuf,
    /// Everything read from the agent channel so far.
    pub agent_text: String,
    agent: FileFollower,
    _dir: tempfile::TempDir,
    _lock: Option<BootLock>,
}

impl Guest {
    /// Boots a guest of `vcpus` vCPUs whose realtime vCPUs are `rt` (a CPU list, may be empty),
    /// with one iothread and `extra` kernel parameters. `paused` starts it with `-S` and a
    /// second (management) QMP monitor. `lock` is false only in a child process of a test
    /// that already holds the boot lock.
    pub fn boot(vcpus: u32, rt: &str, extra: &[&str], paused: bool, lock: bool) -> Guest {
        let lock = lock.then(|| BootLock::acquire().expect("boot lock"));
        let dir = tempfile::tempdir().unwrap();
        let kernel = KernelSearch::from_env(None)
            .find()
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("kernel: {} ({})", kernel.path.display(), kernel.source);
        let initrd = dir.path().join("initrd.cpio");
        Initramfs::for_agent(static_init(dir.path()), b"{}".to_vec())
            .write_file(&initrd)
            .unwrap();
        let binary = QemuBinary::detect().unwrap_or_else(|e| panic!("{e}"));
        let guest = GuestConfig {
            name: "test".into(),
            vcpus,
            memory_mib: 256,
            realtime: if rt.is_empty() {
                CpuSet::new()
            } else {
                CpuSet::parse(rt).unwrap()
            },
            realtime_mask: String::new(),
            kernel: None,
            cmdline_extra: extra.join(" "),
            iothreads: 1,
        };
        let mut spec = VmSpec::for_guest(
            &guest,
            Accel::Tcg,
            &kernel.path,
            initrd,
            dir.path().join("console.log"),
            AgentChannel::File(dir.path().join("agent.out")),
        );
        if paused {
            spec = spec.paused();
            spec.mgmt_qmp = true;
        }
        let qemu = Qemu::spawn(&binary, &spec).unwrap();
        Guest {
            qemu,
            console: spec.console_log,
            agent: FileFollower::new(dir.path().join("agent.out")),
            agent_text: String::new(),
            _dir: dir,
            _lock: lock,
        }
    }

    /// Its QMP monitor, connected within 10 s, 5 s per command.
    pub fn qmp(&mut self) -> QmpClient<UnixStream> {
        self.qemu
            .connect_qmp(
                Instant::now() + Duration::from_secs(10),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Polls the agent channel until `needle` appears or `deadline` passes.
    pub fn wait_agent(&mut self, needle: &str, deadline: Instant) -> bool {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            self.agent.read_new(&mut buf, 1 << 20).unwrap();
            self.agent_text.push_str(&String::from_utf8_lossy(&buf));
            if self.agent_text.contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- console (tail) ----\n{}\n---- agent channel ----\n{}\n---- QEMU stderr ----\n{}",
                log_tail(&self.console, 8192),
                self.agent_text,
                self.qemu.stderr_tail(4096)
            );
        }
    }
}
