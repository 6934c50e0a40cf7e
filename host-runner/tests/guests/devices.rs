//! Boots the real guest kernel (Debian's PREEMPT_RT kernel unless `PINLAT_KERNEL` names
//! another) under TCG with the static agent as `/init`, a virtio-blk disk served by
//! `iothread1` and a virtio-net NIC on the runner's echo socket, and the kernel modules their
//! drivers need in the initramfs. The agent must load the modules, find both devices and say
//! so in its hello, then run and power off.
//!
//! Needs `qemu-system-x86_64`, the agent from `scripts/build-agent.sh` and the kernel search
//! (which fetches Debian's kernel and its modules once). Named `boot_*` and holds
//! [`BootLock`]: one guest at a time on this machine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pinlat::agentcfg::AgentConfig;
use pinlat::kinds::Accel;
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{Decoded, FrameDecoder, Hello, Message};
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
fn next_message(
    follower: &mut FileFollower,
    decoder: &mut FrameDecoder,
    deadline: Instant,
    want: impl Fn(&Message) -> bool,
) -> Option<Message> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        follower.read_new(&mut buf, 1 << 20).unwrap();
        for d in decoder.feed(&buf) {
            match d {
                Decoded::Message(m) if want(&m) => return Some(*m),
                Decoded::Message(m) => {
                    if let Message::Error(e) = *m {
                        panic!("agent error: {}", e.message);
                    }
                }
                Decoded::Rejected(r) => eprintln!("rejected frame: {r}"),
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn boot_virtio_devices_are_in_the_guest() {
    let _lock = BootLock::acquire().expect("boot lock");
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
    let logs = tempfile::tempdir().unwrap();
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
        .module_plan(&needs(&devices, "boot_virtio_devices_are_in_the_guest"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg = pinlat::config::Config::from_toml_str(
        "[[guests]]\nname = \"devices\"\nvcpus = 2\niothreads = 1\n[[layouts]]\nkind = \"vcpu0\"\n",
    )
    .unwrap();
    let guest = &cfg.guests[0];
    let mut agent_cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 500);
    agent_cfg.housekeeping_cpus = vec![0];
    agent_cfg.preheat_ms = 0;
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

    let console = logs.path().join("console.log");
    let channel = logs.path().join("agent.out");
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
    let running = Instant::now();

    let mut follower = FileFollower::new(&g.channel);
    let mut decoder = FrameDecoder::new();
    let Some(Message::Hello(hello)) = next_message(&mut follower, &mut decoder, deadline, |m| {
        matches!(m, Message::Hello(_))
    }) else {
        panic!("no hello within {BOOT_DEADLINE:?}");
    };
    let to_hello = running.elapsed();
    let Hello { facts, config, .. } = hello;
    let dev = &facts.devices;
    eprintln!(
        "hello {to_hello:?} after cont; modules loaded in {:?} ns: {:?}; virtio: {:?}",
        dev.modules_load_ns, dev.modules, dev.virtio
    );

    // The runner's echo check: the agent runs exactly the config it was sent.
    assert_eq!(config, agent_cfg);
    // Every planned module was loaded, in order, and timed.
    let loaded: Vec<&str> = dev.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(loaded, plan.names());
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
    assert_eq!(echo.stats().connections, 1);

    // The run goes on to its end and the guest powers off.
    let done = next_message(&mut follower, &mut decoder, deadline, |m| {
        matches!(m, Message::Done(_))
    });
    assert!(done.is_some(), "no done frame");
    let status = g
        .qemu
        .wait_until(deadline)
        .unwrap()
        .expect("guest did not power off");
    assert!(status.success(), "{status}");
    let stats = echo.stop().unwrap();
    eprintln!(
        "NIC echo: {stats:?}; spawn to power-off {:?}",
        g.qemu.started().elapsed()
    );
}
