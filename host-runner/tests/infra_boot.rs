//! Boots the real guest kernel (Debian's PREEMPT_RT kernel unless `PINLAT_KERNEL` names
//! another) under QEMU with a tiny static init, and checks the host-side infrastructure end to
//! end: kernel search, initramfs, QEMU arguments, the ttyS1 channel, QMP thread ids, pinning
//! and scheduling read back from /proc, and that QEMU is always gone afterwards.
//!
//! Needs `qemu-system-x86_64` and a C compiler with static glibc (`gcc`, `libc6-dev`).
//! Tests that boot a guest are named `boot_*` (one nextest group) and hold [`BootLock`], so
//! plain `cargo test` never boots two guests at once either.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pinlat::cpuset::CpuSet;
use pinlat::sched;
use pinlat_runner::follow::{log_tail, BootLock, FileFollower};
use pinlat_runner::initramfs::Initramfs;
use pinlat_runner::kernel::KernelSearch;
use pinlat_runner::procfs::{Procfs, SchedPolicy};
use pinlat_runner::qemu::{guest_cmdline, Accel, Qemu, QemuBinary, VmSpec, GUEST_PARAMS};
use pinlat_runner::qmp::{connect_unix, MgmtPoll};

/// A static init: mounts /dev and /proc, writes `hello` and its command line to ttyS1 in raw
/// mode, then either powers off at once or (with `pinlat.hold` on the command line) writes a
/// tick every 100 ms for up to 60 s first.
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

/// Set in the re-executed test binary that plays the runner in
/// `boot_qemu_dies_with_the_runner`.
const CHILD_ENV: &str = "PINLAT_TEST_RUNNER_CHILD";

/// A CPU list, ascending; the empty string is no CPU.
fn cpus(list: &str) -> Vec<u32> {
    if list.is_empty() {
        Vec::new()
    } else {
        CpuSet::parse(list).unwrap().iter().collect()
    }
}

/// Builds the static init.
fn static_init(dir: &Path) -> Vec<u8> {
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

/// One booted guest: always killed on drop, and its console and QEMU stderr are printed if
/// the test is failing.
struct Guest {
    qemu: Qemu,
    console: PathBuf,
    agent: FileFollower,
    agent_text: String,
    _dir: tempfile::TempDir,
    _lock: Option<BootLock>,
}

impl Guest {
    /// Boots a guest; `paused` starts it with `-S` and a second (mgmt) QMP monitor.
    fn boot(vcpus: u32, rt: &str, hk: &str, extra: &[&str], paused: bool) -> Guest {
        // A child process spawned by a test that holds the lock must not wait for it.
        let lock = (std::env::var_os(CHILD_ENV).is_none())
            .then(|| BootLock::acquire().expect("boot lock"));
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
        let spec = VmSpec {
            name: "pinlat-test".into(),
            accel: Accel::Tcg,
            vcpus,
            memory_mib: 256,
            kernel: kernel.path,
            initrd,
            append: guest_cmdline(&cpus(rt), &cpus(hk), &[GUEST_PARAMS, extra].concat()),
            cpu_model: None,
            iothreads: vec!["io0".into()],
            console_log: dir.path().join("console.log"),
            agent_channel: dir.path().join("agent.out"),
            start_paused: paused,
            mgmt_qmp: paused,
            devices: Vec::new(),
        };
        let qemu = Qemu::spawn(&binary, &spec).unwrap();
        Guest {
            qemu,
            console: spec.console_log,
            agent: FileFollower::new(spec.agent_channel),
            agent_text: String::new(),
            _dir: dir,
            _lock: lock,
        }
    }

    /// Polls the agent channel until `needle` appears or `deadline` passes.
    fn wait_agent(&mut self, needle: &str, deadline: Instant) -> bool {
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

#[test]
fn boot_tcg_guest_qmp_threads_pinning_and_cleanup() {
    let mut g = Guest::boot(2, "1", "0", &["pinlat.hold"], true);
    let pid = g.qemu.pid();
    let t0 = g.qemu.started();
    let mut qmp = g
        .qemu
        .connect_qmp(
            Instant::now() + Duration::from_secs(10),
            Duration::from_secs(5),
        )
        .unwrap();
    eprintln!("QMP up after {:?}", t0.elapsed());
    let sock_mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(g.qemu.qmp_socket())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(sock_mode, 0o600);

    // Started with -S: vCPU threads exist but the guest has not run.
    let status = qmp.query_status().unwrap();
    assert_eq!(
        (status.status.as_str(), status.running),
        ("prelaunch", false)
    );

    // vCPU and iothread ids from QMP are real threads of the QEMU process, named by QEMU.
    let procfs = Procfs::default();
    let tids = procfs.list_tids(pid).unwrap();
    let vcpus = qmp.query_cpus_fast().unwrap();
    assert_eq!(
        vcpus.iter().map(|v| v.cpu_index).collect::<Vec<_>>(),
        [0, 1]
    );
    for v in &vcpus {
        assert!(
            tids.contains(&v.thread_id),
            "vCPU tid {} not in {tids:?}",
            v.thread_id
        );
        let info = procfs.read_thread(pid, v.thread_id).unwrap();
        assert_eq!(info.comm, format!("CPU {}/TCG", v.cpu_index));
    }
    let io = qmp.query_iothreads().unwrap();
    assert_eq!(io.len(), 1);
    assert_eq!(
        procfs.read_thread(pid, io[0].thread_id).unwrap().comm,
        "IO io0"
    );
    let main = procfs.read_thread(pid, pid).unwrap();
    assert_eq!(main.comm, "qemu-system-x86");

    // Pin vCPU 1's thread to one CPU and make it FIFO 1; read both back from /proc.
    let cpu = *sched::get_affinity(pid).unwrap().last().unwrap();
    let vcpu1 = vcpus[1].thread_id;
    sched::set_affinity(vcpu1, &[cpu]).unwrap();
    sched::set_fifo(vcpu1, 1).unwrap();
    let seen = procfs.read_thread(pid, vcpu1).unwrap();
    assert_eq!(seen.cpus_allowed_list, cpu.to_string());
    assert_eq!((seen.policy, seen.rt_priority), (SchedPolicy::Fifo, 1));
    sched::set_other(vcpu1).unwrap();
    assert_eq!(
        procfs.read_thread(pid, vcpu1).unwrap().policy,
        SchedPolicy::Other
    );
    // Other threads were left alone.
    assert_ne!(
        procfs
            .read_thread(pid, vcpus[0].thread_id)
            .unwrap()
            .cpus_allowed_list,
        cpu.to_string()
    );

    // Pinned before it ran, now let it run.
    assert!(g.agent_text.is_empty());
    qmp.cont().unwrap();
    assert!(qmp.query_status().unwrap().running);

    // The agent channel (ttyS1 → file chardev) carries the guest's lines, and the guest
    // kernel got the isolation parameters.
    let booted = g.wait_agent("tick 2\n", Instant::now() + Duration::from_secs(30));
    assert!(booted, "no agent output within 30 s");
    eprintln!("first ticks after {:?}", t0.elapsed());
    assert!(
        g.agent_text.starts_with("hello pinlat\n"),
        "{:?}",
        g.agent_text
    );
    assert!(g
        .agent_text
        .contains("isolcpus=1 nohz_full=1 rcu_nocbs=1 irqaffinity=0"));
    assert!(!g.agent_text.contains('\r'), "raw mode: no CR added");

    // mgmt-poll works on its own monitor while the control connection stays usable.
    let mgmt = g.qemu.mgmt_socket().unwrap().to_owned();
    let mut mgmt_qmp = connect_unix(
        &mgmt,
        Instant::now() + Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut poll = MgmtPoll::new();
    for _ in 0..20 {
        poll.round(&mut mgmt_qmp).unwrap();
    }
    eprintln!(
        "mgmt-poll queries: {:?}; unsupported: {:?}",
        poll.queries(),
        poll.unsupported()
    );
    assert!(poll.queries().iter().any(|q| q == "query-cpus-fast"));
    assert!(qmp.query_status().unwrap().running);

    // quit ends QEMU; it is reaped and its runtime dir and threads are gone.
    qmp.quit().unwrap();
    let status = g
        .qemu
        .wait_until(Instant::now() + Duration::from_secs(10))
        .unwrap()
        .expect("QEMU still running 10 s after quit");
    assert!(status.success(), "{status}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn boot_guest_poweroff_ends_qemu_with_output_complete() {
    let mut g = Guest::boot(1, "", "0", &[], false);
    let t0 = g.qemu.started();
    let status = g
        .qemu
        .wait_until(Instant::now() + Duration::from_secs(60))
        .unwrap()
        .expect("guest did not power off within 60 s");
    eprintln!("boot + poweroff took {:?}", t0.elapsed());
    assert!(status.success(), "{status}");
    assert!(g.wait_agent("bye\n", Instant::now() + Duration::from_secs(1)));
    assert!(g
        .agent_text
        .starts_with("hello pinlat\ncmdline console=ttyS0"));
    let console = log_tail(&g.console, 1 << 20);
    assert!(console.contains("reboot: Power down"), "{console}");
}

/// The runner dies by SIGKILL (no destructor runs): PR_SET_PDEATHSIG must still take QEMU
/// down with it. The test re-executes its own binary as the "runner", which boots a guest,
/// prints QEMU's pid and waits to be killed.
#[test]
fn boot_qemu_dies_with_the_runner() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let mut g = Guest::boot(1, "", "0", &["pinlat.hold"], false);
        // Proves QEMU is up and serving before the runner is killed.
        let mut qmp = g
            .qemu
            .connect_qmp(
                Instant::now() + Duration::from_secs(10),
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(qmp.query_status().is_ok());
        println!("QEMU_PID={}", g.qemu.pid());
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    use std::io::{BufRead, BufReader};
    let _lock = BootLock::acquire().expect("boot lock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["boot_qemu_dies_with_the_runner", "--exact", "--nocapture"])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(pid) = line.split("QEMU_PID=").nth(1) {
                let _ = tx.send(pid.trim().parse::<i32>().unwrap());
            }
        }
    });
    let qemu_pid = rx.recv_timeout(Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    let qemu_pid = qemu_pid.expect("the child runner never reported QEMU's pid");
    assert!(qemu_pid > 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    // QEMU is reparented to init (or a subreaper) and reaped there; its /proc entry goes
    // away, or it lingers as a zombie if the reaper is slow.
    let alive = || {
        fs::read_to_string(format!("/proc/{qemu_pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    while alive() {
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(qemu_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("QEMU {qemu_pid} outlived its runner by 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
