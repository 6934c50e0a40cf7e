//! Durations as people type them on a command line: a whole number and a unit (`10s`, `500ms`,
//! `250us`, `2m`, `1h`; a bare number is seconds).
//!
//! One parser for both binaries, so `pinlat run --duration` and `pinlat-agent --duration` accept
//! the same words. Everything is exact integer nanoseconds underneath; a caller that keeps a
//! coarser unit (the agent's config is in ms, the runner's in s) asks for a whole number of its
//! unit with [`parse_in`], and a value that is not one (`999us` as ms) is refused with the
//! nearest values that are, never rounded or truncated silently. There are no fractions
//! (`1.5s`): the message says to write `1500ms` instead.

use std::fmt;

/// A unit a duration may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Nanoseconds, `ns`.
    Ns,
    /// Microseconds, `us` (also `µs`, `μs`).
    Us,
    /// Milliseconds, `ms`.
    Ms,
    /// Seconds, `s`, or no unit at all.
    S,
    /// Minutes, `m`.
    M,
    /// Hours, `h`.
    H,
}

impl Unit {
    /// Every unit, smallest first.
    pub const ALL: [Unit; 6] = [Unit::Ns, Unit::Us, Unit::Ms, Unit::S, Unit::M, Unit::H];

    /// Length of one of this unit, ns.
    pub const fn ns(self) -> u64 {
        match self {
            Unit::Ns => 1,
            Unit::Us => 1_000,
            Unit::Ms => 1_000_000,
            Unit::S => 1_000_000_000,
            Unit::M => 60_000_000_000,
            Unit::H => 3_600_000_000_000,
        }
    }

    /// The suffix [`format()`] writes (`ns`, `us`, `ms`, `s`, `m`, `h`).
    pub const fn suffix(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::M => "m",
            Unit::H => "h",
        }
    }

    /// The unit's name in a sentence, plural (`milliseconds`).
    pub const fn plural(self) -> &'static str {
        match self {
            Unit::Ns => "nanoseconds",
            Unit::Us => "microseconds",
            Unit::Ms => "milliseconds",
            Unit::S => "seconds",
            Unit::M => "minutes",
            Unit::H => "hours",
        }
    }

    /// The unit a suffix names; the empty suffix is seconds.
    fn from_suffix(s: &str) -> Option<Unit> {
        Some(match s {
            "ns" => Unit::Ns,
            "us" | "µs" | "μs" => Unit::Us,
            "ms" => Unit::Ms,
            "" | "s" => Unit::S,
            "m" => Unit::M,
            "h" => Unit::H,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// A duration that cannot be used. Each message quotes the text and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No whole number where the duration should start (empty, a sign, letters only).
    #[error("\"{text}\": expected a whole number with a unit, like 10s or 500ms")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// A decimal point: fractions are not accepted.
    #[error("\"{text}\": no fractions: write it in a smaller unit, like 1500ms for 1.5s")]
    Fraction {
        /// The text given.
        text: String,
    },
    /// A suffix that is not a unit.
    #[error("\"{text}\": unknown unit '{unit}': use ns, us, ms, s, m or h")]
    UnknownUnit {
        /// The text given.
        text: String,
        /// The suffix that is not a unit.
        unit: String,
    },
    /// Longer than a u64 of nanoseconds (about 584 years) or of the caller's unit.
    #[error("\"{text}\": too long: at most {max}{unit}")]
    TooLong {
        /// The text given.
        text: String,
        /// The largest value accepted in `unit`.
        max: u64,
        /// The unit the text was written in.
        unit: Unit,
    },
    /// Zero where the caller needs a positive duration.
    #[error("\"{text}\": must be greater than 0")]
    Zero {
        /// The text given.
        text: String,
    },
    /// Not a whole number of the unit the caller keeps (`999us` for a value in ms).
    #[error("\"{text}\" is not a whole number of {}: use {suggestion}", unit.plural())]
    NotWhole {
        /// The text given.
        text: String,
        /// The unit the caller keeps.
        unit: Unit,
        /// The nearest values that are whole (`1ms`, or `1s or 2s`).
        suggestion: String,
    },
}

/// Parses a duration into ns. A bare number is seconds.
pub fn parse_ns(text: &str) -> Result<u64, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let owned = || text.to_string();
    if digits.is_empty() {
        return Err(DurationError::NotANumber { text: owned() });
    }
    if suffix.starts_with(['.', ',']) {
        return Err(DurationError::Fraction { text: owned() });
    }
    let unit = Unit::from_suffix(suffix).ok_or_else(|| DurationError::UnknownUnit {
        text: owned(),
        unit: suffix.to_string(),
    })?;
    let too_long = || DurationError::TooLong {
        text: owned(),
        max: u64::MAX / unit.ns(),
        unit,
    };
    // Only digits, so the one way to fail is a number too large for a u64.
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    n.checked_mul(unit.ns()).ok_or_else(too_long)
}

/// Parses a duration that must be a whole number of `unit`; returns that number. `999us` in
/// [`Unit::Ms`] is refused (suggesting `1ms`), not rounded to 0 or 1.
pub fn parse_in(text: &str, unit: Unit) -> Result<u64, DurationError> {
    let ns = parse_ns(text)?;
    let (whole, rest) = (ns / unit.ns(), ns % unit.ns());
    if rest == 0 {
        return Ok(whole);
    }
    let up = format(whole + 1, unit);
    let suggestion = if whole == 0 {
        up
    } else {
        format!("{} or {up}", format(whole, unit))
    };
    Err(DurationError::NotWhole {
        text: text.to_string(),
        unit,
        suggestion,
    })
}

/// [`parse_in`] for a duration that must be positive: zero is refused.
pub fn parse_positive_in(text: &str, unit: Unit) -> Result<u64, DurationError> {
    match parse_in(text, unit)? {
        0 => Err(DurationError::Zero {
            text: text.to_string(),
        }),
        n => Ok(n),
    }
}

/// `value` in `unit` as [`parse_in`] reads it back (`1500ms`).
pub fn format(value: u64, unit: Unit) -> String {
    format!("{value}{}", unit.suffix())
}

/// `ns` in the largest unit that holds it exactly (`90s` → `90s`, `120s` → `2m`, 0 → `0s`).
pub fn format_ns(ns: u64) -> String {
    if ns == 0 {
        return format(0, Unit::S);
    }
    let unit = Unit::ALL
        .into_iter()
        .rev()
        .find(|u| ns % u.ns() == 0)
        .unwrap_or(Unit::Ns);
    format(ns / unit.ns(), unit)
}

/// Whole seconds as a clock shows them, `h:mm:ss` (`7805` → `2:10:05`; hours beyond 24 stay
/// hours): how progress lines and reports show a soak's measured time.
pub fn hms(s: u64) -> String {
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hours_minutes_seconds() {
        assert_eq!(hms(0), "0:00:00");
        assert_eq!(hms(7_805), "2:10:05");
        assert_eq!(hms(43_200), "12:00:00");
        assert_eq!(hms(90_000), "25:00:00");
    }

    #[test]
    fn every_unit_and_the_bare_number() {
        assert_eq!(parse_ns("7ns"), Ok(7));
        assert_eq!(parse_ns("7us"), Ok(7_000));
        assert_eq!(parse_ns("7µs"), Ok(7_000));
        assert_eq!(parse_ns("7μs"), Ok(7_000));
        assert_eq!(parse_ns("7ms"), Ok(7_000_000));
        assert_eq!(parse_ns("7s"), Ok(7_000_000_000));
        assert_eq!(parse_ns(" 7 "), Ok(7_000_000_000));
        assert_eq!(parse_ns("2m"), Ok(120_000_000_000));
        assert_eq!(parse_ns("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_in("2m", Unit::S), Ok(120));
        assert_eq!(parse_in("3", Unit::Ms), Ok(3_000));
        assert_eq!(parse_in("0s", Unit::Ms), Ok(0));
    }

    #[test]
    fn sub_unit_remainders_are_refused_with_the_nearest_whole_values() {
        let e = parse_in("999us", Unit::Ms).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"999us\" is not a whole number of milliseconds: use 1ms"
        );
        let e = parse_positive_in("1500ms", Unit::S).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"1500ms\" is not a whole number of seconds: use 1s or 2s"
        );
        assert_eq!(parse_in("1000us", Unit::Ms), Ok(1));
    }

    #[test]
    fn bad_text_says_what_to_write() {
        let msg = |t: &str| parse_ns(t).unwrap_err().to_string();
        assert_eq!(
            msg("10x"),
            "\"10x\": unknown unit 'x': use ns, us, ms, s, m or h"
        );
        assert!(msg("s").contains("expected a whole number with a unit"));
        assert!(msg("").contains("expected a whole number"));
        assert!(msg("-5s").contains("expected a whole number"));
        assert!(msg("1.5s").contains("like 1500ms for 1.5s"));
        assert_eq!(
            msg("99999999999h"),
            "\"99999999999h\": too long: at most 5124095h"
        );
        assert!(msg("99999999999999999999999s").contains("too long"));
        assert_eq!(
            parse_positive_in("0m", Unit::S).unwrap_err().to_string(),
            "\"0m\": must be greater than 0"
        );
    }

    #[test]
    fn format_picks_the_largest_exact_unit() {
        assert_eq!(format_ns(0), "0s");
        assert_eq!(format_ns(90_000_000_000), "90s");
        assert_eq!(format_ns(120_000_000_000), "2m");
        assert_eq!(format_ns(1_500_000), "1500us");
        assert_eq!(format_ns(7), "7ns");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_the_identity(
            value in prop_oneof![0..100_000u64, any::<u64>()],
            unit in 0..6usize,
        ) {
            let unit = Unit::ALL[unit];
            let text = format(value, unit);
            match value.checked_mul(unit.ns()) {
                Some(ns) => {
                    prop_assert_eq!(parse_ns(&text), Ok(ns));
                    prop_assert_eq!(parse_in(&text, unit), Ok(value));
                    prop_assert_eq!(parse_ns(&format_ns(ns)), Ok(ns));
                }
                None => {
                    let is_too_long = matches!(parse_ns(&text), Err(DurationError::TooLong { .. }));
                    prop_assert!(is_too_long);
                }
            }
        }

        #[test]
        fn whole_values_in_a_coarser_unit_are_exact_or_refused(
            ns in prop_oneof![(0..100_000u64).prop_map(|n| n * 1_000_000), any::<u64>()],
            unit in 0..6usize,
        ) {
            let unit = Unit::ALL[unit];
            match parse_in(&format(ns, Unit::Ns), unit) {
                Ok(n) => prop_assert_eq!(n * unit.ns(), ns),
                Err(DurationError::NotWhole { .. }) => prop_assert!(ns % unit.ns() != 0),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,24}") {
            let _ = parse_ns(&text);
        }
    }
}
