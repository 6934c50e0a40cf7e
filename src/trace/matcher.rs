//! Next to the guest's largest events, the host culprit: which stolen intervals of the RT pCPU
//! overlap a latency event the guest measured.
//!
//! The guest reports an event as the time it ended, mapped onto the host's `CLOCK_MONOTONIC`
//! (the trace's `mono` clock), its length, and how uncertain that mapping is. An event covers
//! `[end - length, end]`; a host interval is a candidate when it overlaps that span widened by
//! the tolerance on both sides, and a *match* when both its ends lie within the tolerance of
//! the event's ends and its length agrees with the event's (it explains the event in time and
//! in length). The tolerance is the event's own uncertainty plus the trace text's timestamp
//! resolution (1 µs for the kernel's text), and is returned with every answer so a report can
//! print it. Lengths do not depend on the clock mapping, so they must agree more tightly: to
//! [`LENGTH_AGREEMENT`] of the event's length or [`LENGTH_SLACK_NS`] plus twice the resolution,
//! whichever is more; with a coarse mapping (±100 ms) a 17 µs tick is no match for a 20 ms gap.

use serde::{Deserialize, Serialize};

use super::account::Interval;

/// Fraction of an event's length by which a matching interval's length may differ.
pub const LENGTH_AGREEMENT: f64 = 0.1;
/// Least allowed length difference (beside twice the resolution), ns: the switch into the
/// culprit precedes the guest's last clock read, the switch back follows its next one.
pub const LENGTH_SLACK_NS: u64 = 50_000;

/// Whether an interval of `interval_ns` explains an event of `event_ns` in length.
pub fn lengths_agree(interval_ns: u64, event_ns: u64, resolution_ns: u64) -> bool {
    let slack =
        ((event_ns as f64 * LENGTH_AGREEMENT) as u64).max(LENGTH_SLACK_NS + 2 * resolution_ns);
    interval_ns.abs_diff(event_ns) <= slack
}

/// A latency event measured in the guest, in host time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestEvent {
    /// When the event ended (the late sample or wake-up), host `CLOCK_MONOTONIC` ns.
    pub end_ns: u64,
    /// Its length (the gap or the wake-up latency), ns.
    pub length_ns: u64,
    /// Uncertainty of `end_ns` as a host time (guest↔host clock mapping), ns.
    pub uncertainty_ns: u64,
}

/// One host interval overlapping a guest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Culprit {
    /// The stolen interval.
    pub interval: Interval,
    /// How much of the event's span it covers, ns.
    pub overlap_ns: u64,
    /// Interval start minus event start, ns.
    pub start_delta_ns: i64,
    /// Interval end minus event end, ns.
    pub end_delta_ns: i64,
    /// Both ends within the tolerance: this interval explains the event in time and length.
    pub matches: bool,
}

/// The host culprits of one guest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestMatch {
    /// The guest event.
    pub event: GuestEvent,
    /// Tolerance used: the event's uncertainty plus the trace resolution, ns.
    pub tolerance_ns: u64,
    /// Overlapping intervals: matches first, then by overlap, largest first.
    pub culprits: Vec<Culprit>,
    /// Sum of the culprits' overlaps with the event's span, ns (how much of it the host
    /// trace explains).
    pub covered_ns: u64,
}

impl GuestMatch {
    /// The interval that explains the event, if one does.
    pub fn best(&self) -> Option<&Culprit> {
        self.culprits.first().filter(|c| c.matches)
    }
}

/// Matches each guest event against `intervals` (in time order, as
/// [`super::attribute::CpuAttribution::intervals`] are); `resolution_ns` is the trace's
/// timestamp resolution ([`super::parse::ParseStats::resolution_ns`]).
pub fn match_events(
    intervals: &[Interval],
    events: &[GuestEvent],
    resolution_ns: u64,
) -> Vec<GuestMatch> {
    events
        .iter()
        .map(|ev| {
            let tol = ev.uncertainty_ns.saturating_add(resolution_ns);
            let ev_start = ev.end_ns.saturating_sub(ev.length_ns);
            let lo = ev_start.saturating_sub(tol);
            let hi = ev.end_ns.saturating_add(tol);
            // Intervals are disjoint and ordered, so their ends ascend too.
            let first = intervals.partition_point(|i| i.end_ns <= lo);
            let mut culprits: Vec<Culprit> = intervals[first..]
                .iter()
                .take_while(|i| i.start_ns < hi)
                .map(|i| {
                    let overlap_ns = i
                        .end_ns
                        .min(ev.end_ns)
                        .saturating_sub(i.start_ns.max(ev_start));
                    let start_delta_ns = signed_diff(i.start_ns, ev_start);
                    let end_delta_ns = signed_diff(i.end_ns, ev.end_ns);
                    Culprit {
                        interval: i.clone(),
                        overlap_ns,
                        start_delta_ns,
                        end_delta_ns,
                        matches: start_delta_ns.unsigned_abs() <= tol
                            && end_delta_ns.unsigned_abs() <= tol
                            && lengths_agree(i.len_ns(), ev.length_ns, resolution_ns),
                    }
                })
                .collect();
            culprits.sort_by(|a, b| {
                b.matches
                    .cmp(&a.matches)
                    .then_with(|| b.overlap_ns.cmp(&a.overlap_ns))
                    .then_with(|| a.interval.start_ns.cmp(&b.interval.start_ns))
            });
            let covered_ns = culprits.iter().map(|c| c.overlap_ns).sum();
            GuestMatch {
                event: *ev,
                tolerance_ns: tol,
                culprits,
                covered_ns,
            }
        })
        .collect()
}

fn signed_diff(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a - b).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b - a).map_or(i64::MIN, |d| -d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::class::Class;

    fn iv(start_ns: u64, end_ns: u64, name: &str) -> Interval {
        Interval {
            start_ns,
            end_ns,
            class: Class::Emulator,
            name: name.into(),
            parts: vec![],
        }
    }

    #[test]
    fn the_interval_matching_in_time_and_length_comes_first() {
        let ivs = [
            iv(1_000, 1_500, "tick"),
            iv(10_000, 12_000, "hog"),
            iv(12_100, 12_200, "irq"),
            iv(50_000, 60_000, "far"),
        ];
        let ev = GuestEvent {
            end_ns: 12_050,
            length_ns: 2_000,
            uncertainty_ns: 100,
        };
        let m = &match_events(&ivs, &[ev], 1)[0];
        assert_eq!(m.tolerance_ns, 101);
        let names: Vec<_> = m
            .culprits
            .iter()
            .map(|c| c.interval.name.as_str())
            .collect();
        assert_eq!(names, ["hog", "irq"]);
        let best = m.best().unwrap();
        assert_eq!((best.start_delta_ns, best.end_delta_ns), (-50, -50));
        assert_eq!(best.overlap_ns, 1_950);
        assert!(!m.culprits[1].matches);
        assert_eq!(m.covered_ns, 1_950);
    }

    #[test]
    fn a_short_interval_is_no_match_for_a_long_event_however_wide_the_tolerance() {
        let ivs = [
            iv(10_000_000, 10_017_000, "tick"),
            iv(20_000_000, 40_000_000, "hog"),
        ];
        let near = |end_ns, length_ns| GuestEvent {
            end_ns,
            length_ns,
            uncertainty_ns: 100_000_000,
        };
        let m = match_events(&ivs, &[near(30_000_000, 20_000_000)], 1_000);
        assert_eq!(m[0].best().unwrap().interval.name, "hog");
        let m = match_events(&ivs[..1], &[near(30_000_000, 20_000_000)], 1_000);
        assert!(m[0].best().is_none(), "{:?}", m[0]);
        assert_eq!(m[0].culprits.len(), 1, "it still overlaps, and says so");
        assert!(lengths_agree(20_025_000, 20_000_000, 1_000));
        assert!(
            lengths_agree(30_000, 10_000, 1_000),
            "a few µs off at µs scale"
        );
    }

    #[test]
    fn no_culprit_no_match_and_edges_saturate() {
        let ivs = [iv(10_000, 12_000, "hog")];
        let m = &match_events(
            &ivs,
            &[
                GuestEvent {
                    end_ns: 5_000,
                    length_ns: 1_000,
                    uncertainty_ns: 0,
                },
                GuestEvent {
                    end_ns: 10,
                    length_ns: u64::MAX,
                    uncertainty_ns: u64::MAX,
                },
            ],
            1000,
        );
        assert!(m[0].culprits.is_empty() && m[0].best().is_none());
        assert_eq!(m[1].culprits.len(), 1);
        assert_eq!(signed_diff(0, u64::MAX), i64::MIN);
    }
}
