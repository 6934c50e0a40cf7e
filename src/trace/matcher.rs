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
//!
//! One guest gap can span several stolen intervals that the vCPU thread ran between for a few
//! µs, too briefly to take a sample (under TCG, re-entering guest code alone takes longer): a
//! timer softirq that wakes a SCHED_FIFO thread, then that thread. When no single interval
//! matches, such a chain (gaps of at most [`CHAIN_GAP_NS`] between its members) is tried as
//! one culprit: the merged interval, named after its longest member, its parts summed by name.

use serde::{Deserialize, Serialize};

use super::account::Interval;

/// Fraction of an event's length by which a matching interval's length may differ.
pub const LENGTH_AGREEMENT: f64 = 0.1;
/// Least allowed length difference (beside twice the resolution), ns: the switch into the
/// culprit precedes the guest's last clock read, the switch back follows its next one.
pub const LENGTH_SLACK_NS: u64 = 50_000;

/// Longest time the vCPU thread may run between two stolen intervals that one guest gap spans,
/// ns: shorter than any sample the agent takes under TCG.
pub const CHAIN_GAP_NS: u64 = 50_000;

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
            // The intervals are disjoint: their overlaps add up (a chain below repeats them).
            let covered_ns = culprits.iter().map(|c| c.overlap_ns).sum();
            if !culprits.iter().any(|c| c.matches) {
                if let Some(chain) =
                    chain_match(&intervals[first..], ev, ev_start, tol, resolution_ns)
                {
                    culprits.push(chain);
                }
            }
            culprits.sort_by(|a, b| {
                b.matches
                    .cmp(&a.matches)
                    .then_with(|| b.overlap_ns.cmp(&a.overlap_ns))
                    .then_with(|| a.interval.start_ns.cmp(&b.interval.start_ns))
            });
            GuestMatch {
                event: *ev,
                tolerance_ns: tol,
                culprits,
                covered_ns,
            }
        })
        .collect()
}

/// The chain of intervals (from `from`, in time order) that explains `ev` when no single one
/// does: it starts within `tol` of the event's start, ends within `tol` of its end, its members
/// are at most [`CHAIN_GAP_NS`] apart, and its span agrees with the event's length.
fn chain_match(
    from: &[Interval],
    ev: &GuestEvent,
    ev_start: u64,
    tol: u64,
    resolution_ns: u64,
) -> Option<Culprit> {
    let hi = ev.end_ns.saturating_add(tol);
    for (i, head) in from.iter().enumerate().take_while(|(_, i)| i.start_ns < hi) {
        if head.start_ns.abs_diff(ev_start) > tol {
            continue;
        }
        let mut end = head.end_ns;
        for (j, next) in from.iter().enumerate().skip(i + 1) {
            if next.start_ns.saturating_sub(end) > CHAIN_GAP_NS || next.start_ns >= hi {
                break;
            }
            end = next.end_ns;
            let chain = &from[i..=j];
            let len = end - head.start_ns;
            if end.abs_diff(ev.end_ns) <= tol && lengths_agree(len, ev.length_ns, resolution_ns) {
                let merged = merge(chain);
                return Some(Culprit {
                    overlap_ns: merged
                        .end_ns
                        .min(ev.end_ns)
                        .saturating_sub(merged.start_ns.max(ev_start)),
                    start_delta_ns: signed_diff(merged.start_ns, ev_start),
                    end_delta_ns: signed_diff(merged.end_ns, ev.end_ns),
                    interval: merged,
                    matches: true,
                });
            }
        }
    }
    None
}

/// One interval from a chain: its span, named after its longest member, the parts summed by
/// class and name, largest first (at most [`super::account::MAX_PARTS`]).
fn merge(chain: &[Interval]) -> Interval {
    let longest = chain
        .iter()
        .max_by_key(|i| i.len_ns())
        .expect("a chain has members");
    let mut parts: Vec<super::account::Part> = Vec::new();
    for p in chain.iter().flat_map(|i| &i.parts) {
        match parts
            .iter_mut()
            .find(|q| q.class == p.class && q.name == p.name)
        {
            Some(q) => q.ns += p.ns,
            None => parts.push(p.clone()),
        }
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.ns));
    parts.truncate(super::account::MAX_PARTS);
    Interval {
        start_ns: chain[0].start_ns,
        end_ns: chain[chain.len() - 1].end_ns,
        class: longest.class,
        name: longest.name.clone(),
        parts,
    }
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

    fn part(class: Class, name: &str, ns: u64) -> super::super::account::Part {
        super::super::account::Part {
            class,
            name: name.into(),
            ns,
        }
    }

    /// Seen in CI: a 21.1 ms guest gap was a 0.9 ms timer softirq (waking the planted
    /// SCHED_FIFO thread), 2 µs of the vCPU thread, then the thread's 20.1 ms. Neither interval
    /// matches alone; the chain does, named after the thread.
    #[test]
    fn a_gap_spanning_a_chain_of_intervals_matches_the_chain() {
        let ivs = [
            Interval {
                parts: vec![
                    part(Class::Softirq, "TIMER", 879_000),
                    part(Class::HardIrq, "local_timer", 17_000),
                ],
                class: Class::Softirq,
                ..iv(1_000_000, 1_896_000, "TIMER")
            },
            Interval {
                parts: vec![
                    part(Class::Other, "inject", 19_969_000),
                    part(Class::HardIrq, "local_timer", 169_000),
                ],
                class: Class::Other,
                ..iv(1_898_000, 22_036_000, "inject")
            },
            // The vCPU ran 10 ms before the next tick: not part of the gap.
            iv(32_036_000, 32_050_000, "tick"),
        ];
        let ev = GuestEvent {
            end_ns: 22_037_000,
            length_ns: 21_040_000,
            uncertainty_ns: 200_000,
        };
        let m = &match_events(&ivs, &[ev], 1000)[0];
        let best = m.best().expect("the chain explains the event");
        assert_eq!(best.interval.name, "inject");
        assert_eq!(best.interval.class, Class::Other);
        assert_eq!(
            (best.interval.start_ns, best.interval.end_ns),
            (1_000_000, 22_036_000)
        );
        let names: Vec<(&str, u64)> = best
            .interval
            .parts
            .iter()
            .map(|p| (p.name.as_str(), p.ns))
            .collect();
        assert_eq!(
            names,
            [
                ("inject", 19_969_000),
                ("TIMER", 879_000),
                ("local_timer", 186_000)
            ]
        );
        // Each member is still listed, and what the trace covers is not counted twice.
        assert_eq!(m.culprits.len(), 3);
        assert_eq!(m.covered_ns, 896_000 + 20_138_000);

        // Members further apart than CHAIN_GAP_NS are no chain.
        let apart = [
            ivs[0].clone(),
            Interval {
                start_ns: 1_896_000 + CHAIN_GAP_NS + 1_000,
                ..ivs[1].clone()
            },
        ];
        assert!(match_events(&apart, &[ev], 1000)[0].best().is_none());
    }
}
