//! Boots the real guest kernel (Debian's PREEMPT_RT kernel unless `PINLAT_KERNEL` names
//! another) under QEMU with a tiny static init, and checks the host-side infrastructure end to
//! end: kernel search, initramfs, QEMU arguments, the ttyS1 channel, QMP thread ids, pinning
//! and scheduling read back from /proc, and that QEMU is always gone afterwards.
//!
//! Needs `qemu-system-x86_64` and a C compiler with static glibc (`gcc`, `libc6-dev`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pinlat::sched;
use pinlat_runner::follow::log_tail;
use pinlat_runner::procfs::{Procfs, SchedPolicy};
use pinlat_runner::qmp::{connect_unix, MgmtPoll};
use pinlat_test_infra::{BootLock, Guest};

/// Set in the re-executed test binary that plays the runner in
/// `boot_qemu_dies_with_the_runner`.
const CHILD_ENV: &str = "PINLAT_TEST_RUNNER_CHILD";

/// Boots a test guest; in the re-executed child the parent already holds the boot lock.
fn boot(vcpus: u32, rt: &str, extra: &[&str], paused: bool) -> Guest {
    Guest::boot(
        vcpus,
        rt,
        extra,
        paused,
        std::env::var_os(CHILD_ENV).is_none(),
    )
}

#[test]
fn boot_tcg_guest_qmp_threads_pinning_and_cleanup() {
    let mut g = boot(2, "1", &["pinlat.hold"], true);
    let pid = g.qemu.pid();
    let t0 = g.qemu.started();
    let mut qmp = g.qmp();
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
        "IO iothread1"
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
    let mut g = boot(1, "", &[], false);
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
        let mut g = boot(1, "", &["pinlat.hold"], false);
        // Proves QEMU is up and serving before the runner is killed.
        let mut qmp = g.qmp();
        assert!(qmp.query_status().is_ok());
        println!("QEMU_PID={}", g.qemu.pid());
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    use std::io::{BufRead, BufReader};
    let _lock = BootLock::acquire().expect("boot lock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "infra::boot_qemu_dies_with_the_runner",
            "--exact",
            "--nocapture",
        ])
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
