//! Boots the real guest kernel (Debian's PREEMPT_RT kernel unless `PINLAT_KERNEL` names
//! another) under TCG with the static agent as `/init`, a virtio-blk disk served by
//! `iothread1` and a virtio-net NIC on the runner's echo socket, and the kernel modules their
//! drivers need in the initramfs. The agent must load the modules, find both devices and say
//! so in its hello, then run and power off; with its io and net loads on, drive both devices
//! from the housekeeping vCPU and report what they achieved.
//!
//! Needs `qemu-system-x86_64`, the agent from `scripts/build-agent.sh` and the kernel search
//! (which fetches Debian's kernel and its modules once). Named `boot_*` and holds
//! [`BootLock`]: one guest at a time on this machine.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pinlat::agentcfg::{AgentConfig, IoLoad, NetLoad};
use pinlat::kinds::Accel;
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{Decoded, FrameDecoder, Hello, LoadKind, LoadResult, Message, OpKind};
use pinlat_runner::agent::find_agent;
use pinlat_runner::devices::{
    create_disk, needs, Cache, Device, DeviceError, NetEcho, VirtioBlk, VirtioNet,
};
use pinlat_runner::follow::{log_tail, FileFollower};
use pinlat_runner::initramfs::Initramfs;
use pinlat_runner::kernel::KernelSearch;
use pinlat_runner::qemu::{runtime_dir, AgentChannel, Qemu, QemuBinary, VmSpec};
use pinlat_test_infra::BootLock;

/// Boot, modules and a 0.5 s run take 5–10 s here; a loaded 2-CPU machine takes longer.
const BOOT_DEADLINE: Duration = Duration::from_secs(240);

/// The booted guest: QEMU is always killed on drop, and the console, the frames' text and
/// QEMU's stderr are printed if the test is failing.
struct Guest {
    qemu: Qemu,
    console: PathBuf,
    channel: PathBuf,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- console (tail) ----\n{}\n---- agent channel (tail) ----\n{}\n---- QEMU stderr ----\n{}",
                log_tail(&self.console, 16384),
                log_tail(&self.channel, 4096),
                self.qemu.stderr_tail(4096)
            );
        }
    }
}

/// Feeds the agent channel to the decoder until `want` accepts a message or `deadline`.
/// Messages decoded after the accepted one (a read often holds several frames) wait in
/// `pending` for the next call; the ones before it that `want` refuses are skipped.
fn next_message(
    follower: &mut FileFollower,
    decoder: &mut FrameDecoder,
    pending: &mut VecDeque<Message>,
    deadline: Instant,
    want: impl Fn(&Message) -> bool,
) -> Option<Message> {
    let mut buf = Vec::new();
    loop {
        while let Some(m) = pending.pop_front() {
            if let Message::Error(e) = &m {
                panic!("agent error: {}", e.message);
            }
            if want(&m) {
                return Some(m);
            }
        }
        buf.clear();
        follower.read_new(&mut buf, 1 << 20).unwrap();
        for d in decoder.feed(&buf) {
            match d {
                Decoded::Message(m) => pending.push_back(*m),
                Decoded::Rejected(r) => eprintln!("rejected frame: {r}"),
            }
        }
        if pending.is_empty() {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A booted guest with a virtio-blk disk (served by `iothread1`) and a virtio-net NIC on the
/// runner's echo socket, the agent reading its frames.
struct DeviceGuest {
    guest: Guest,
    echo: NetEcho,
    follower: FileFollower,
    decoder: FrameDecoder,
    pending: VecDeque<Message>,
    deadline: Instant,
    /// When QEMU was resumed.
    running: Instant,
    agent_cfg: AgentConfig,
    plan_names: Vec<String>,
    /// The console log and agent channel, removed with the guest.
    _logs: tempfile::TempDir,
}

/// Boots the device guest running `agent_cfg` (its modules are filled in here), checking on
/// the way that the disk is served by `iothread1`.
fn boot_device_guest(test: &str, mut agent_cfg: AgentConfig) -> DeviceGuest {
    let (agent_path, agent) = find_agent().unwrap_or_else(|e| panic!("{e}"));
    let kernel = KernelSearch::from_env(None)
        .find()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "kernel: {} ({}), modules: {:?}; agent: {}",
        kernel.path.display(),
        kernel.source,
        kernel.modules,
        agent_path.display()
    );
    let binary = QemuBinary::detect().unwrap_or_else(|e| panic!("{e}"));
    let logs_dir = tempfile::tempdir().unwrap();
    let logs = logs_dir.path();
    let runtime = runtime_dir().unwrap();

    // The devices' backends, in the run's private directory.
    let mut disk = VirtioBlk::in_dir(runtime.path(), 64);
    match create_disk(&disk) {
        Ok(()) => {}
        // A tmpfs runtime directory cannot do O_DIRECT: still test the devices.
        Err(e @ DeviceError::NoDirectIo { .. }) => {
            eprintln!("{e}; using cache=writeback");
            std::fs::remove_file(&disk.image).unwrap();
            disk.cache = Cache::Writeback;
            create_disk(&disk).unwrap();
        }
        Err(e) => panic!("{e}"),
    }
    let nic = VirtioNet::in_dir(runtime.path());
    let echo = NetEcho::start(&nic.socket).unwrap_or_else(|e| panic!("{e}"));
    let devices = vec![Device::VirtioBlk(disk), Device::VirtioNet(nic)];

    // Their drivers' modules, resolved from the kernel's module directory.
    let plan = kernel
        .module_plan(&needs(&devices, test))
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg = pinlat::config::Config::from_toml_str(
        "[[guests]]\nname = \"devices\"\nvcpus = 2\niothreads = 1\n[[layouts]]\nkind = \"vcpu0\"\n",
    )
    .unwrap();
    let guest = &cfg.guests[0];
    agent_cfg.modules = plan.names();
    let initrd = runtime.path().join("initrd.cpio");
    Initramfs::for_agent(agent, agent_cfg.to_json().into_bytes())
        .with_modules(&plan)
        .write_file(&initrd)
        .unwrap();
    eprintln!(
        "initramfs: {} bytes, of which {} modules: {} bytes ({:?})",
        std::fs::metadata(&initrd).unwrap().len(),
        plan.modules.len(),
        plan.total_bytes(),
        plan.names()
    );

    let console = logs.join("console.log");
    let channel = logs.join("agent.out");
    let spec = VmSpec::for_guest(
        guest,
        Accel::Tcg,
        &kernel.path,
        initrd,
        console.clone(),
        AgentChannel::File(channel.clone()),
    )
    .paused()
    .with_devices(devices);
    let mut g = Guest {
        qemu: Qemu::spawn_in(&binary, &spec, runtime).unwrap(),
        console,
        channel,
    };
    let deadline = Instant::now() + BOOT_DEADLINE;
    let mut qmp = g
        .qemu
        .connect_qmp(
            Instant::now() + Duration::from_secs(30),
            Duration::from_secs(10),
        )
        .unwrap();
    // The disk is served by iothread1, as the guest's `iothreads = 1` asks.
    let link = qmp
        .execute(
            "qom-get",
            Some(serde_json::json!({"path": "/machine/peripheral/vblk0", "property": "iothread"})),
        )
        .unwrap();
    assert_eq!(link.as_str(), Some("/objects/iothread1"), "{link}");
    qmp.cont().unwrap();
    let follower = FileFollower::new(&g.channel);
    DeviceGuest {
        guest: g,
        echo,
        follower,
        decoder: FrameDecoder::new(),
        pending: VecDeque::new(),
        deadline,
        running: Instant::now(),
        agent_cfg,
        plan_names: plan.names(),
        _logs: logs_dir,
    }
}

impl DeviceGuest {
    fn next(&mut self, want: impl Fn(&Message) -> bool) -> Option<Message> {
        next_message(
            &mut self.follower,
            &mut self.decoder,
            &mut self.pending,
            self.deadline,
            want,
        )
    }

    /// Waits for the guest to power off by itself, successfully.
    fn powers_off(&mut self) {
        let status = self
            .guest
            .qemu
            .wait_until(self.deadline)
            .unwrap()
            .expect("guest did not power off");
        assert!(status.success(), "{status}");
    }
}

#[test]
fn boot_virtio_devices_are_in_the_guest() {
    let _lock = BootLock::acquire().expect("boot lock");
    let mut agent_cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 500);
    agent_cfg.housekeeping_cpus = vec![0];
    agent_cfg.preheat_ms = 0;
    let mut d = boot_device_guest("boot_virtio_devices_are_in_the_guest", agent_cfg);

    let Some(Message::Hello(hello)) = d.next(|m| matches!(m, Message::Hello(_))) else {
        panic!("no hello within {BOOT_DEADLINE:?}");
    };
    let to_hello = d.running.elapsed();
    let Hello { facts, config, .. } = hello;
    let dev = &facts.devices;
    eprintln!(
        "hello {to_hello:?} after cont; modules loaded in {:?} ns: {:?}; virtio: {:?}",
        dev.modules_load_ns, dev.modules, dev.virtio
    );

    // The runner's echo check: the agent runs exactly the config it was sent.
    assert_eq!(config, d.agent_cfg);
    // Every planned module was loaded, in order, and timed.
    let loaded: Vec<&str> = dev.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(loaded, d.plan_names);
    assert!(dev
        .modules
        .iter()
        .all(|m| m.load_ns > 0 && !m.already_loaded));
    let total = dev.modules_load_ns.expect("module load time recorded");
    assert!(total >= dev.modules.iter().map(|m| m.load_ns).sum::<u64>());
    // Both devices, bound to their drivers, with the names the kernel gave them.
    let find = |kind: &str| {
        dev.virtio
            .iter()
            .find(|d| d.kind == kind)
            .unwrap_or_else(|| panic!("no virtio {kind} device in {:?}", dev.virtio))
    };
    let blk = find("block");
    assert_eq!(
        (blk.name.as_str(), blk.driver.as_deref()),
        ("vda", Some("virtio_blk"))
    );
    let net = find("net");
    assert!(net.name.starts_with("eth"), "{net:?}");
    assert_eq!(net.driver.as_deref(), Some("virtio_net"));
    // QEMU's NIC backend is the runner's socket.
    assert_eq!(d.echo.stats().connections, 1);

    // The run goes on to its end and the guest powers off.
    let done = d.next(|m| matches!(m, Message::Done(_)));
    assert!(done.is_some(), "no done frame");
    d.powers_off();
    let DeviceGuest { guest, echo, .. } = d;
    let stats = echo.stop().unwrap();
    eprintln!(
        "NIC echo: {stats:?}; spawn to power-off {:?}",
        guest.qemu.started().elapsed()
    );
}

/// The io and net loads on the housekeeping vCPU 0 drive the virtio disk and NIC while vCPU 1
/// busy-polls, and report what they achieved: operations timed in plausible histograms, frames
/// echoed by the host's backend and timed, the echo's own count agreeing. Rates under TCG are
/// whatever this machine gives: printed, never asserted.
#[test]
fn boot_guest_io_and_net_loads_measure_themselves() {
    let _lock = BootLock::acquire().expect("boot lock");
    let mut agent_cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 3_000);
    agent_cfg.housekeeping_cpus = vec![0];
    // Counted from the start, so the host's echo count can be held against the agent's.
    agent_cfg.preheat_ms = 0;
    agent_cfg.loads.io = Some(IoLoad {
        queue_depth: 2,
        span_bytes: Some(16 << 20),
        ..IoLoad::default()
    });
    agent_cfg.loads.net = Some(NetLoad {
        rate_pps: 200,
        ..NetLoad::default()
    });
    let frame_bytes = u64::from(NetLoad::default().frame_bytes);
    let mut d = boot_device_guest("boot_guest_io_and_net_loads_measure_themselves", agent_cfg);

    let mut loads: Vec<LoadResult> = Vec::new();
    let finals = loop {
        match d.next(|m| matches!(m, Message::Load(_) | Message::Final(_))) {
            Some(Message::Load(l)) => loads.push(l),
            Some(Message::Final(f)) => break vec![f],
            _ => panic!("no final within {BOOT_DEADLINE:?} (loads so far: {loads:?})"),
        }
    };
    assert!(
        d.next(|m| matches!(m, Message::Done(_))).is_some(),
        "no done frame"
    );
    d.powers_off();
    let DeviceGuest {
        guest,
        echo,
        agent_cfg,
        ..
    } = d;
    let echo = echo.stop().unwrap();
    assert!(
        finals[0].samples > 0,
        "the RT vCPU measured beside the loads"
    );
    for l in &loads {
        eprintln!("{}", describe(l));
    }
    eprintln!(
        "NIC echo: {echo:?}; spawn to power-off {:?}",
        guest.qemu.started().elapsed()
    );
    let kinds: Vec<LoadKind> = loads.iter().map(|l| l.load).collect();
    assert_eq!(
        kinds,
        [LoadKind::Io, LoadKind::Net],
        "one result per load, before the final"
    );

    // The io load: the guest's virtio disk, through O_DIRECT, from vCPU 0.
    let io = &loads[0];
    assert_eq!((io.device.as_str(), io.direct), ("/dev/vda", Some(true)));
    assert_eq!(io.cpus, [0]);
    assert!(io.duration_ns > 0);
    let io_cfg = agent_cfg.loads.io.as_ref().unwrap();
    for (op, s) in &io.ops {
        assert_eq!(s.errors, 0, "{op}: {:?}", s.first_error);
        assert_eq!(s.count, s.histogram.0.len() + s.overflow, "{op}");
        assert!(s.count == 0 || s.min_ns <= s.max_ns, "{op}");
        let per_op = if *op == OpKind::Flush {
            0
        } else {
            u64::from(io_cfg.block_bytes)
        };
        assert_eq!(s.bytes, s.count * per_op, "{op}");
    }
    let (reads, writes, flushes) = (
        io.ops[&OpKind::Read].count,
        io.ops[&OpKind::Write].count,
        io.ops[&OpKind::Flush].count,
    );
    assert!(reads > 0 && writes > 0, "{reads} reads, {writes} writes");
    // fdatasync after every write of each worker (the stop may cut the last ones short).
    assert!(
        flushes > 0 && flushes <= writes,
        "{flushes} flushes, {writes} writes"
    );
    assert!(
        writes - flushes <= u64::from(io_cfg.queue_depth),
        "{writes} writes, {flushes} flushes"
    );

    // The net load: the virtio-net interface, frames echoed by the host and timed.
    let net = &loads[1];
    assert!(net.device.starts_with("eth"), "{}", net.device);
    assert_eq!(net.cpus, [0]);
    assert_eq!(net.target_per_s, Some(200));
    let n = net.net.expect("frame counts");
    let rtt = &net.ops[&OpKind::Rtt];
    assert_eq!(rtt.errors, 0, "{:?}", rtt.first_error);
    assert!(n.received > 0, "{n:?}");
    assert_eq!(rtt.count, n.received);
    assert_eq!(rtt.count, rtt.histogram.0.len() + rtt.overflow);
    assert_eq!(
        n.received + n.lost,
        n.sent,
        "every frame ends received or lost: {n:?}"
    );
    assert!(n.lost * 10 <= n.sent, "more than 10 % lost: {n:?}");
    assert_eq!(n.unmatched, 0, "{n:?}");
    // The host's side of it: one connection, and every frame it echoed is one the load sent
    // and counted (no preheat: nothing went out uncounted), of the load's size: the link
    // carried the load's frames and nothing else.
    assert_eq!(echo.connections, 1);
    assert!(
        n.received <= echo.frames && echo.frames <= n.sent,
        "echoed {} frames; the guest sent {}, got {} back",
        echo.frames,
        n.sent,
        n.received
    );
    assert_eq!(echo.bytes, echo.frames * frame_bytes, "{echo:?}");
}

/// One line per load result: rates and latencies, for the test's log.
fn describe(l: &LoadResult) -> String {
    let mut s = format!(
        "{} on {} over {:.2} s:",
        l.load,
        l.device,
        l.duration_ns as f64 / 1e9
    );
    for (op, st) in &l.ops {
        let sum = st.summary(l.duration_ns);
        s += &format!(
            " {op} {} ({:.1}/s, p50 {} us, p99 {} us, max {} us, {} errors);",
            st.count,
            l.rate_per_s(*op),
            sum.p50_ns.value_ns.unwrap_or(0) / 1_000,
            sum.p99_ns.value_ns.unwrap_or(0) / 1_000,
            st.max_ns / 1_000,
            st.errors
        );
    }
    if let Some(n) = &l.net {
        s += &format!(
            " frames sent {} ({:.1}/s), received {}, lost {}, late {}, unmatched {}, skipped slots {}",
            n.sent,
            pinlat::wire::per_second(n.sent, l.duration_ns),
            n.received,
            n.lost,
            n.late,
            n.unmatched,
            n.skipped_slots
        );
    }
    s
}
