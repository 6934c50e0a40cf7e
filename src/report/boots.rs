//! How the runs of a results directory shared guest boots (`run.boot_per`, README "One boot,
//! many measurements"), for the line every report prints beside the accelerator: a reader
//! comparing layouts needs to know whether a run measured in a fresh guest or in one that
//! earlier runs had warmed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::kinds::BootPer;
use crate::result::RunRecord;

/// The boots of a report's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootsView {
    /// How many measurements a boot served (the first run's, when the runs disagree).
    pub boot_per: BootPer,
    /// Runs that recorded their boot.
    pub runs: usize,
    /// Distinct boots among them.
    pub boots: usize,
    /// Boots that measured what a failed phase's boot had left.
    pub reboots: usize,
    /// The phase orders' seed, when the runs have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_seed: Option<u64>,
}

/// Collects the boots of the runs as they are read.
#[derive(Debug, Default)]
pub struct Acc {
    boot_per: Option<BootPer>,
    runs: usize,
    boots: BTreeSet<String>,
    reboots: BTreeSet<String>,
    seed: Option<u64>,
}

impl Acc {
    /// Adds one run.
    pub fn add(&mut self, rec: &RunRecord) {
        let Some(b) = &rec.boot else { return };
        self.boot_per.get_or_insert(b.boot_per);
        self.runs += 1;
        self.boots.insert(b.boot_id.clone());
        if b.reboot_after.is_some() {
            self.reboots.insert(b.boot_id.clone());
        }
        if self.seed.is_none() {
            self.seed = b.order_seed;
        }
    }

    /// The view; `None` when no run recorded its boot (results from before boots were shared:
    /// one boot each).
    pub fn finish(self) -> Option<BootsView> {
        Some(BootsView {
            boot_per: self.boot_per?,
            runs: self.runs,
            boots: self.boots.len(),
            reboots: self.reboots.len(),
            order_seed: self.seed,
        })
    }
}

impl BootsView {
    /// One sentence for the report's header.
    pub fn sentence(&self) -> String {
        let reboots = match self.reboots {
            0 => String::new(),
            n => format!(", {n} of them after a failed phase to measure what its boot had left"),
        };
        match self.boot_per {
            BootPer::Measurement => format!(
                "Guests: a fresh boot per measurement (run.boot_per = \"measurement\"): {} run(s) in {} boot(s){reboots}",
                self.runs, self.boots
            ),
            BootPer::Repetition => format!(
                "Guests: one boot per layout × variant × repetition and device set (run.boot_per = \"repetition\"): {} run(s) in {} boot(s){reboots}; each boot's phases ran in an order drawn from seed {}, and a phase after the first inherits its guest's page cache, caches and timers (README \"One boot, many measurements\")",
                self.runs,
                self.boots,
                self.order_seed.map_or("?".to_string(), |s| s.to_string())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{test_record, BootPhase};

    fn rec(boot: &str, phase: u32, reboot: bool) -> RunRecord {
        RunRecord {
            boot: Some(BootPhase {
                boot_per: BootPer::Repetition,
                boot_id: boot.into(),
                phase,
                phases: 2,
                order_seed: Some(9),
                reboot_after: reboot.then(|| "a.failed.r1".into()),
            }),
            ..test_record()
        }
    }

    #[test]
    fn boots_reboots_and_the_seed_are_counted_and_said() {
        let mut acc = Acc::default();
        for r in [
            rec("b1", 0, false),
            rec("b1", 1, false),
            rec("b2", 0, true),
            rec("b3", 0, false),
        ] {
            acc.add(&r);
        }
        let v = acc.finish().unwrap();
        assert_eq!(
            (v.runs, v.boots, v.reboots, v.order_seed),
            (4, 3, 1, Some(9))
        );
        let s = v.sentence();
        assert!(
            s.contains("4 run(s) in 3 boot(s), 1 of them after a failed phase")
                && s.contains("seed 9")
                && s.contains("run.boot_per = \"repetition\""),
            "{s}"
        );
    }

    #[test]
    fn runs_from_before_shared_boots_say_nothing() {
        let mut acc = Acc::default();
        acc.add(&test_record());
        assert_eq!(acc.finish(), None);
    }
}
