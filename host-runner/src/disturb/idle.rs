//! `idle`: nothing runs beside the measurement; the baseline every other scenario is read
//! against.

use super::{Disturbance, DisturbanceError, Outcome, Targets};

/// The baseline.
#[derive(Debug)]
pub struct Idle;

impl Disturbance for Idle {
    fn start(&mut self, _: &Targets) -> Result<(), DisturbanceError> {
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        Outcome::default()
    }
}
