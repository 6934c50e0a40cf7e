//! Settling the accelerator: `auto` boots one short guest under KVM and waits for the agent's
//! hello, because a `/dev/kvm` that opens is not a KVM that boots (a paravirtual nested KVM can
//! hang a stock kernel right after decompression).

use std::time::{Duration, Instant};

use pinlat::config::Config;

use crate::agent::agent_config;
use crate::follow::{log_tail, FileFollower};
use crate::initramfs::Initramfs;
use crate::kernel::GuestKernel;
use crate::qemu::{self, Qemu, QemuBinary, VmSpec};

/// How long the KVM probe waits for the agent's hello.
pub const KVM_PROBE_DEADLINE: Duration = Duration::from_secs(15);

/// Why KVM did not boot the probe guest.
#[derive(Debug, thiserror::Error)]
pub enum KvmProbeError {
    /// `/dev/kvm` cannot be opened read-write.
    #[error("/dev/kvm is missing or not accessible")]
    NoDevice,
    /// The probe's files could not be prepared (says nothing about KVM).
    #[error("Cannot prepare the probe guest")]
    Setup(#[source] anyhow::Error),
    /// QEMU could not be started (says nothing about KVM).
    #[error("Cannot start QEMU for the probe")]
    Launch(#[source] crate::qemu::QemuError),
    /// QEMU exited under `-accel kvm`.
    #[error("QEMU -accel kvm exited ({status}): {stderr}")]
    Exited {
        /// Exit status.
        status: String,
        /// The end of QEMU's stderr.
        stderr: String,
    },
    /// The guest did not reach the agent's hello in time.
    #[error("no agent hello within {} s under -accel kvm (console last showed: {last})", KVM_PROBE_DEADLINE.as_secs())]
    NoHello {
        /// The console's last line.
        last: String,
    },
}

impl KvmProbeError {
    /// Whether KVM itself failed (as opposed to the probe not being able to run).
    pub fn is_kvm_failure(&self) -> bool {
        !matches!(self, KvmProbeError::Setup(_) | KvmProbeError::Launch(_))
    }
}

/// Boots a guest under KVM and waits a short deadline for the agent's hello. `Ok(())` when
/// KVM works.
pub fn probe_kvm(
    qemu_bin: &QemuBinary,
    kernel: &GuestKernel,
    agent: &[u8],
    config: &Config,
) -> Result<(), KvmProbeError> {
    if !qemu::kvm_device_usable() {
        return Err(KvmProbeError::NoDevice);
    }
    let guest = &config.guests[0];
    let mut cfg = agent_config(guest, &config.workloads[0], 100, 100);
    cfg.preheat_ms = 0;
    let runtime = qemu::runtime_dir().map_err(|e| KvmProbeError::Setup(e.into()))?;
    let initrd = runtime.path().join("probe.cpio");
    Initramfs::for_agent(agent.to_vec(), cfg.to_json().into_bytes())
        .write_file(&initrd)
        .map_err(|e| KvmProbeError::Setup(e.into()))?;
    let console = runtime.path().join("probe-console.log");
    let channel = runtime.path().join("probe-agent.out");
    let mut spec = VmSpec::for_guest(
        guest,
        pinlat::kinds::Accel::Kvm,
        &kernel.path,
        initrd,
        console.clone(),
        qemu::AgentChannel::File(channel.clone()),
    );
    spec.name = "pinlat-kvm-probe".into();
    let mut q = Qemu::spawn_in(qemu_bin, &spec, runtime).map_err(KvmProbeError::Launch)?;
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
            return Err(KvmProbeError::Exited {
                status: status.to_string(),
                stderr: q.stderr_tail(300).trim().to_string(),
            });
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
    Err(KvmProbeError::NoHello {
        last: last.trim().to_string(),
    })
}
