//! `guest-net`: the housekeeping vCPUs send Ethernet frames through a virtio-net NIC at the
//! scenario's rate and time their round trip; the runner's echo service
//! ([`crate::devices::NetEcho`], on a UNIX socket in the run's private directory) sends every
//! frame straight back, so nothing leaves the machine. QEMU's main loop (or the netdev's
//! thread) moves every frame both ways: that is the emulator work a layout places. The load
//! runs inside the guest and reports its own latency; the echo is started with the guest's
//! devices ([`crate::devices::Backends`]), so there is nothing to start here.

use std::path::PathBuf;

use pinlat::agentcfg::{AgentConfig, NetLoad};
use pinlat::config::NetScenario;

use super::{Disturbance, DisturbanceError, Outcome, Targets};
use crate::devices::{Device, VirtioNet};
use crate::qemu::VmSpec;

/// The NIC backend's socket name in the run's private directory.
const SOCKET: &str = "net0.sock";

/// The guest's network load on the housekeeping vCPUs, on a NIC of its own.
#[derive(Debug)]
pub struct GuestNet {
    net: NetScenario,
}

impl GuestNet {
    /// The load with the scenario's settings.
    pub fn new(net: NetScenario) -> Self {
        GuestNet { net }
    }
}

impl Disturbance for GuestNet {
    fn prepare_agent(&self, _index: usize, agent: &mut AgentConfig) {
        agent.loads.net = Some(NetLoad {
            // The first virtio-net interface: this scenario's, the only one the guest has.
            interface: None,
            rate_pps: self.net.rate_pps,
            frame_bytes: self.net.frame_bytes,
        });
    }

    fn prepare_vm(&self, _index: usize, vm: &mut VmSpec) {
        vm.add_device(Device::VirtioNet(VirtioNet {
            socket: PathBuf::from(SOCKET),
        }));
    }

    fn start(&mut self, _: &Targets) -> Result<(), DisturbanceError> {
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        Outcome::default()
    }
}
