//! `guest-io`: the housekeeping vCPUs drive O_DIRECT reads, writes and `fdatasync`s on a
//! virtio-blk disk, so the threads that serve the disk work while the RT vCPUs measure: with
//! `aio = "threads"` (the default) QEMU's thread-pool workers, which are emulator threads;
//! with the guest's `iothreads >= 1` its `iothread1`; the main loop for completions otherwise.
//! The disk is a sparse file in the run's private directory ([`crate::devices::Backends`]); the
//! load runs inside the guest and reports its own latency; the host side has nothing to start.

use std::path::PathBuf;

use pinlat::agentcfg::{AgentConfig, IoLoad};
use pinlat::config::IoScenario;

use super::{Disturbance, DisturbanceError, Outcome, Targets};
use crate::devices::{Cache, Device, VirtioBlk};
use crate::qemu::VmSpec;

/// The disk image's name in the run's private directory.
const IMAGE: &str = "disk0.raw";

/// The guest's I/O load on the housekeeping vCPUs, on a disk of its own.
#[derive(Debug)]
pub struct GuestIo {
    io: IoScenario,
}

impl GuestIo {
    /// The load with the scenario's settings.
    pub fn new(io: IoScenario) -> Self {
        GuestIo { io }
    }
}

impl Disturbance for GuestIo {
    fn prepare_agent(&self, _index: usize, agent: &mut AgentConfig) {
        agent.loads.io = Some(IoLoad {
            // The first virtio-blk disk: this scenario's, the only one the guest has.
            path: None,
            block_bytes: self.io.block_kib * 1024,
            queue_depth: self.io.queue_depth,
            read_percent: self.io.read_percent,
            fdatasync_every: self.io.fdatasync_every,
            span_bytes: None,
        });
    }

    fn prepare_vm(&self, _index: usize, vm: &mut VmSpec) {
        vm.add_device(Device::VirtioBlk(VirtioBlk {
            image: PathBuf::from(IMAGE),
            size_mib: self.io.disk_mib,
            cache: Cache::None,
            aio: self.io.aio,
            iothread: None,
        }));
    }

    fn start(&mut self, _: &Targets) -> Result<(), DisturbanceError> {
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        Outcome::default()
    }
}
