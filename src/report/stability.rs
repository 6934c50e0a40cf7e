//! Stability across repetitions, the rule labs gate realtime kernels with (Linaro
//! test-definitions, `automated/linux/cyclicdeadline/cyclicdeadline.sh`): take each
//! repetition's max latency; a layout × scenario × workload is *unstable* when half or more of
//! its repetitions — ⌊n/2⌋ or more, counted as that script counts — have a max above 1.1 × the
//! smallest max of its repetitions.
//!
//! It is reported beside the significance verdict (spread between repetitions), not folded
//! into it: significance asks whether two layouts differ beyond the noise, stability whether
//! one layout's worst case is reproducible at all. With fewer than 2 repetitions there is
//! nothing to judge.

use serde::{Deserialize, Serialize};

use super::us;

/// Fewest repetitions the rule judges.
pub const MIN_REPETITIONS: usize = 2;

/// A repetition's max above `NUMERATOR / DENOMINATOR` × the smallest max counts against
/// stability (1.1).
const NUMERATOR: u128 = 11;
const DENOMINATOR: u128 = 10;

/// Stability of one group over its repetitions (ok runs with samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stability {
    /// Repetitions judged.
    pub repetitions: usize,
    /// Smallest max of the repetitions, ns (0 with none).
    pub smallest_max_ns: u64,
    /// Repetitions whose max is above 1.1 × `smallest_max_ns`.
    pub above: usize,
    /// `Some(true)`: unstable; `Some(false)`: stable; `None`: fewer than
    /// [`MIN_REPETITIONS`] repetitions.
    pub unstable: Option<bool>,
}

impl Stability {
    /// Judges the maxima of a group's repetitions, ns.
    pub fn of(maxima: &[u64]) -> Stability {
        let smallest = maxima.iter().copied().min().unwrap_or(0);
        let above = maxima
            .iter()
            .filter(|&&m| u128::from(m) * DENOMINATOR > u128::from(smallest) * NUMERATOR)
            .count();
        let n = maxima.len();
        Stability {
            repetitions: n,
            smallest_max_ns: smallest,
            above,
            unstable: (n >= MIN_REPETITIONS).then_some(above >= n / 2),
        }
    }

    /// `stable`, `unstable` or `1 rep`.
    pub fn label(&self) -> String {
        match self.unstable {
            Some(true) => "unstable".to_string(),
            Some(false) => "stable".to_string(),
            None => format!("{} rep", self.repetitions),
        }
    }

    /// What the rule found, in words.
    pub fn describe(&self) -> String {
        let rule = format!(
            "{} of {} repetitions' max above 1.1 × the smallest, {} µs",
            self.above,
            self.repetitions,
            us(self.smallest_max_ns)
        );
        match self.unstable {
            Some(true) => format!("unstable across repetitions ({rule})"),
            Some(false) => format!("stable across repetitions ({rule})"),
            None => format!(
                "stability not judged ({} repetition(s); the rule needs {MIN_REPETITIONS})",
                self.repetitions
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_or_more_above_one_point_one_times_the_smallest_is_unstable() {
        assert_eq!(Stability::of(&[100, 111]).unstable, Some(true));
        assert_eq!(Stability::of(&[100, 110]).unstable, Some(false));
        assert_eq!(Stability::of(&[100, 105, 109, 200]).unstable, Some(false));
        assert_eq!(Stability::of(&[100, 105, 150, 200]).unstable, Some(true));
        // Odd counts: ⌊5/2⌋ = 2 above is enough, as cyclicdeadline.sh counts.
        assert_eq!(
            Stability::of(&[100, 100, 100, 120, 130]).unstable,
            Some(true)
        );
        assert_eq!(
            Stability::of(&[100, 100, 100, 100, 130]).unstable,
            Some(false)
        );
        let one = Stability::of(&[100]);
        assert_eq!(one.unstable, None);
        assert_eq!(one.label(), "1 rep");
        assert_eq!(Stability::of(&[]).unstable, None);
    }
}
