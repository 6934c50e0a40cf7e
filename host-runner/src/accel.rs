//! Settling the accelerator: `auto` boots one short guest under KVM and waits for the agent's
//! hello, because a `/dev/kvm` that opens is not a KVM that boots (a paravirtual nested KVM can
//! hang a stock kernel right after decompression).

use std::time::{Duration, Instant};

use pinlat::config::Config;

use crate::agent::agent_config;
use crate::follow::{log_tail, FileFollower};
use crate::initramfs::Initramfs;
use crate::kernel::GuestKernel;
use crate::qemu::{self, Qemu, QemuBinary, RuntimeDir, VmSpec};

/// How long the KVM probe waits for the agent's hello.
pub const KVM_PROBE_DEADLINE: Duration = Duration::from_secs(15);

/// Boots a guest under KVM and waits a short deadline for the agent's hello. `Ok(())` when
/// KVM works; `Err(reason)` otherwise.
pub fn probe_kvm(
    qemu_bin: &QemuBinary,
    kernel: &GuestKernel,
    agent: &[u8],
    config: &Config,
) -> Result<(), String> {
    if !qemu::kvm_device_usable() {
        return Err("/dev/kvm is missing or not accessible".into());
    }
    let guest = &config.guests[0];
    let mut cfg = agent_config(guest, &config.workloads[0], 100, 100);
    cfg.preheat_ms = 0;
    let runtime = RuntimeDir::new().map_err(|e| e.to_string())?;
    let initrd = runtime.path().join("probe.cpio");
    Initramfs::for_agent(agent.to_vec(), cfg.to_json().into_bytes())
        .write_file(&initrd)
        .map_err(|e| e.to_string())?;
    let console = runtime.path().join("probe-console.log");
    let channel = runtime.path().join("probe-agent.out");
    let mut spec = VmSpec::for_guest(
        guest,
        qemu::Accel::Kvm,
        &kernel.path,
        initrd,
        console.clone(),
        channel.clone(),
    );
    spec.name = "pinlat-kvm-probe".into();
    let mut q = Qemu::spawn_in(qemu_bin, &spec, runtime).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + KVM_PROBE_DEADLINE;
    let mut follower = FileFollower::new(&channel);
    let mut decoder = pinlat::wire::FrameDecoder::new();
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        buf.clear();
        let _ = follower.read_new(&mut buf, 1 << 20);
        for d in decoder.feed(&buf) {
            if matches!(&d, pinlat::wire::Decoded::Message(m) if matches!(**m, pinlat::wire::Message::Hello(_)))
            {
                let _ = q.kill();
                return Ok(());
            }
        }
        if let Ok(Some(status)) = q.try_wait() {
            return Err(format!(
                "QEMU -accel kvm exited ({status}): {}",
                q.stderr_tail(300).trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = q.kill();
    let tail = log_tail(&console, 300);
    let last = tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("nothing");
    Err(format!(
        "no agent hello within 15 s under -accel kvm (console last showed: {})",
        last.trim()
    ))
}
