//! Which guest boot a run measured in, and its place there (README "One boot, many
//! measurements"): with `run.boot_per = "repetition"` one boot serves the phases of a layout ×
//! variant × repetition (and device set), in a shuffled order; what a phase inherits from the
//! phases before it in its boot is the reader's to judge, so every record says.

use serde::{Deserialize, Serialize};

use crate::kinds::BootPer;

/// A run's guest boot and its place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootPhase {
    /// How many measurements a boot served in this session (`run.boot_per`).
    pub boot_per: BootPer,
    /// The boot: the name of the first run measured in it.
    pub boot_id: String,
    /// This run's place among the boot's phases, from 0: the phases before it ran in the same
    /// guest.
    pub phase: u32,
    /// Phases planned for the boot (fewer ran when one failed: the rest went to a new boot).
    pub phases: u32,
    /// The seed the boot's phase order was drawn from; `None` with a boot per measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_seed: Option<u64>,
    /// The run whose failure ended the previous boot, when this boot measures the phases that
    /// boot had left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_after: Option<String>,
}

impl BootPhase {
    /// Whether the run shared its guest with a run before it.
    pub fn inherits(&self) -> bool {
        self.phase > 0
    }
}
