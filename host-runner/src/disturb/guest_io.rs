//! `guest-io`: the housekeeping vCPUs drive emulated I/O (the agent's `io` load), so QEMU's
//! emulator threads work while the RT vCPUs measure. The load runs inside the guest; the host
//! side has nothing to start.

use pinlat::agentcfg::AgentConfig;
use pinlat::config::ScenarioKind;

use super::{Disturbance, DisturbanceError, Outcome, Targets};

/// The agent's I/O load on the housekeeping vCPUs.
#[derive(Debug)]
pub struct GuestIo;

impl Disturbance for GuestIo {
    fn kind(&self) -> ScenarioKind {
        ScenarioKind::GuestIo
    }

    fn prepare_agent(&self, _index: usize, agent: &mut AgentConfig) {
        agent.loads.io = Some(Default::default());
    }

    fn start(&mut self, _: &Targets) -> Result<(), DisturbanceError> {
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        Outcome::default()
    }
}
