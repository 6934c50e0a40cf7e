//! Matching injected stalls to the agent's largest events.
//!
//! The agent reports each top event as (end offset from the start of its measurement, length),
//! both in ns, but not the absolute time its measurement started. pinlat knows each injection's
//! absolute `CLOCK_MONOTONIC` end. So one unknown shift `s` relates them:
//! `injection end ≈ s + event offset`. Every (injection, event) pair of plausible length
//! proposes a shift; the shift that lines up the most injections within [`ALIGN_WINDOW_NS`]
//! wins, and every injection is then judged at that single shift: missed when no event ends
//! near it, mis-sized when the event's length is off by more than the tolerance. A single shift
//! for a whole run means a stall cannot be "found" by matching it to an unrelated noise event
//! somewhere else in the run.

use pinlat::wire::TopEvent;
use serde::{Deserialize, Serialize};

use super::inject::Injection;

/// How far an event's end may be from its injection's end at the chosen shift, ns. Stalls are
/// injected tens of ms apart, so this cannot pick a neighbour.
pub const ALIGN_WINDOW_NS: u64 = 500_000;

/// One injected stall and what the agent saw of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// The spin length asked for, ns.
    pub spin_ns: u64,
    /// The CPU time the agent lost by construction: timer deadline to end of spin, ns.
    pub injected_ns: u64,
    /// The injector's wake-up latency (part of `injected_ns`), ns.
    pub wakeup_ns: u64,
    /// The agent's event lined up with it: its length, ns. `None`: missed.
    pub detected_ns: Option<u64>,
    /// `detected − injected`, ns.
    pub error_ns: Option<i64>,
    /// Allowed |error|, ns.
    pub tolerance_ns: u64,
    /// Seen and sized within tolerance.
    pub ok: bool,
}

/// The shift (ns) that lines up the most injections with events, or `None` if no pair fits.
/// `range` bounds the shift (the agent's measurement started after it was spawned and before
/// it exited).
pub fn best_shift(inj: &[Injection], top: &[TopEvent], range: (u64, u64)) -> Option<u64> {
    let plausible = |i: &Injection, e: &TopEvent| {
        let want = i.stall_ns().max(1);
        e.latency_ns >= want / 4 && e.latency_ns <= want.saturating_mul(4)
    };
    let mut best: Option<(usize, u64, u64)> = None; // (matched, total residual, shift)
    for i in inj {
        for e in top.iter().filter(|e| plausible(i, e)) {
            let Some(s) = i.end_ns.checked_sub(e.offset_ns) else {
                continue;
            };
            if s < range.0 || s > range.1 {
                continue;
            }
            let (mut n, mut resid) = (0usize, 0u64);
            for j in inj {
                if let Some(r) = top
                    .iter()
                    .filter(|e| plausible(j, e))
                    .map(|e| (s + e.offset_ns).abs_diff(j.end_ns))
                    .filter(|&r| r <= ALIGN_WINDOW_NS)
                    .min()
                {
                    n += 1;
                    resid += r;
                }
            }
            let better = match best {
                None => true,
                Some((bn, br, _)) => n > bn || (n == bn && resid < br),
            };
            if better {
                best = Some((n, resid, s));
            }
        }
    }
    best.map(|(_, _, s)| s)
}

/// Judges every injection at `shift`. `tolerance(injected_ns)` gives the allowed |error|.
pub fn judge(
    inj: &[Injection],
    top: &[TopEvent],
    shift: Option<u64>,
    tolerance: impl Fn(u64) -> u64,
) -> Vec<Detection> {
    inj.iter()
        .map(|i| {
            let injected_ns = i.stall_ns();
            let tol = tolerance(injected_ns);
            let hit = shift.and_then(|s| {
                top.iter()
                    .filter(|e| (s + e.offset_ns).abs_diff(i.end_ns) <= ALIGN_WINDOW_NS)
                    .max_by_key(|e| e.latency_ns)
            });
            let detected_ns = hit.map(|e| e.latency_ns);
            let error_ns = detected_ns.map(|d| d as i64 - injected_ns as i64);
            Detection {
                spin_ns: i.spin_ns,
                injected_ns,
                wakeup_ns: i.wakeup_ns(),
                detected_ns,
                error_ns,
                tolerance_ns: tol,
                ok: error_ns.is_some_and(|e| e.unsigned_abs() <= tol),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inj(end_ns: u64, len: u64) -> Injection {
        Injection {
            deadline_ns: end_ns - len,
            start_ns: end_ns - len + 1_000,
            end_ns,
            spin_ns: len - 1_000,
        }
    }

    fn ev(offset_ns: u64, latency_ns: u64) -> TopEvent {
        TopEvent {
            offset_ns,
            latency_ns,
        }
    }

    const T0: u64 = 5_000_000_000;

    #[test]
    fn aligns_by_one_shift_and_ignores_noise() {
        let injs = [
            inj(T0 + 100_000_000, 1_000_000),
            inj(T0 + 200_000_000, 200_000),
            inj(T0 + 300_000_000, 4_000_000),
        ];
        // The agent started at T0 + 7 ms; events end 3 µs after the spins; one big noise event.
        let top = [
            ev(300_000_000 - 7_000_000 + 3_000, 4_004_000),
            ev(50_000_000, 9_000_000),
            ev(100_000_000 - 7_000_000 + 3_000, 1_003_000),
            ev(200_000_000 - 7_000_000 + 3_000, 203_000),
        ];
        let s = best_shift(&injs, &top, (T0, T0 + 1_000_000_000)).unwrap();
        assert_eq!(s, T0 + 7_000_000 - 3_000);
        let d = judge(&injs, &top, Some(s), |l| l / 10);
        assert!(d.iter().all(|d| d.ok), "{d:?}");
        assert_eq!(d[0].error_ns, Some(3_000));
    }

    #[test]
    fn a_dropped_event_is_missed_and_a_halved_one_mis_sized() {
        let injs = [
            inj(T0 + 100_000_000, 1_000_000),
            inj(T0 + 200_000_000, 1_000_000),
            inj(T0 + 300_000_000, 1_000_000),
        ];
        let top = [ev(100_000_000, 1_000_000), ev(300_000_000, 500_000)];
        let s = best_shift(&injs, &top, (0, u64::MAX)).unwrap();
        assert_eq!(s, T0);
        let d = judge(&injs, &top, Some(s), |l| l / 10);
        assert!(d[0].ok);
        assert_eq!(d[1].detected_ns, None);
        assert!(!d[1].ok);
        assert_eq!(d[2].error_ns, Some(-500_000));
        assert!(!d[2].ok);
    }

    #[test]
    fn shift_outside_the_agents_lifetime_is_refused() {
        let injs = [inj(T0 + 100_000_000, 1_000_000)];
        let top = [ev(100_000_000, 1_000_000)];
        assert_eq!(best_shift(&injs, &top, (T0 + 1, T0 + 10)), None);
        let d = judge(&injs, &top, None, |l| l / 10);
        assert!(!d[0].ok);
    }
}
