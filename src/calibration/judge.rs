//! Judging calibration trials: pure functions over recorded data.
//!
//! **Placing the agent's gaps.** The agent reports each of its largest gaps as (end offset from
//! the start of its recording, length) and the recording window in `CLOCK_MONOTONIC`
//! ([`MonoWindow`]). A gap's end is `window.start + offset × (window length / measured
//! duration)`: the scale corrects any error of the agent's TSC calibration, so a stall late in
//! the run is placed as exactly as an early one.
//!
//! **Sizing.** While the injector spins, the agent cannot run; from the injector's timer
//! deadline until it starts spinning, the agent may or may not run (the interrupt and the
//! context switch take the CPU; a late timer does not). So the agent's gap over a stall must lie
//! in `[spin, deadline→end]`, widened by the tolerance `max(10 %, noise floor, 20 µs)` for the
//! switches around it. The stall's gap is the largest of the agent's gaps that covers at least
//! half of the spin.
//!
//! **Noise only adds.** A host that takes the CPU (steal time, another task) can make a gap
//! longer, never shorter, and can never hide a gap. So a stall that is missed or measured
//! shorter than its spin fails the instrument whatever the host did; one measured longer than
//! its injected interval fails it only when nothing recorded in the trial explains the excess:
//! steal time, a stray gap at least as long as the excess, or the injector (SCHED_FIFO, above
//! the agent) itself held off the CPU past its deadline at least that long (seen here: woken
//! 4.2 ms late, with the agent's gap starting 1.9 ms before the deadline). Otherwise, and when
//! stalls fell outside the agent's window, the trial is voided and repeated.

use super::{Detection, Disturbance, Injection, MonoWindow, Outcome, Trial, TrialStatus, Verdict};
use crate::wire::TopEvent;

/// Stall lengths as multiples of the noise floor (p99.99 of the floor run).
pub const FLOOR_MULTIPLES: [u64; 3] = [5, 10, 20];
/// Lower bounds of the stall lengths, ns (paired with [`FLOOR_MULTIPLES`]).
pub const MIN_STALL_NS: [u64; 3] = [100_000, 1_000_000, 4_000_000];
/// Longest stall calibrate will inject, ns; a floor needing more means a host too noisy to
/// calibrate on.
pub const MAX_STALL_NS: u64 = 50_000_000;
/// Allowance for the kernel work around each stall that is real CPU loss but not part of the
/// spin (timer interrupt, two context switches), ns.
pub const SWITCH_ALLOWANCE_NS: u64 = 20_000;
/// How far outside a stall an agent's gap may end or begin and still be taken as its gap, ns
/// (the switch back to the agent, and placing error).
pub const EDGE_SLACK_NS: u64 = 100_000;

/// The stall lengths (spin time, ns) for a floor (p99.99, ns).
pub fn stall_lengths(floor_ns: u64) -> Vec<u64> {
    FLOOR_MULTIPLES
        .iter()
        .zip(MIN_STALL_NS)
        .map(|(k, min)| (k * floor_ns).max(min))
        .collect()
}

/// The allowed error beyond `[spin, injected]` for a stall of `injected_ns`:
/// `max(10 %, floor, switch allowance)`.
pub fn tolerance_ns(injected_ns: u64, floor_ns: u64) -> u64 {
    (injected_ns / 10).max(floor_ns).max(SWITCH_ALLOWANCE_NS)
}

/// Where an agent's gap lies in `CLOCK_MONOTONIC`: (start, end), ns.
pub fn place(window: MonoWindow, duration_ns: u64, e: &TopEvent) -> (u64, u64) {
    let span = window.end_ns.saturating_sub(window.start_ns);
    let scaled = if duration_ns == 0 {
        e.offset_ns
    } else {
        (e.offset_ns as u128 * span as u128 / duration_ns as u128) as u64
    };
    let end = window.start_ns.saturating_add(scaled);
    (end.saturating_sub(e.latency_ns), end)
}

/// Whether an agent's gap is this stall's: it covers at least half of the spin (placed with
/// [`EDGE_SLACK_NS`] of slack). A gap over less than half of it was not the agent's view of this
/// stall, whatever its length.
fn overlaps(gap: (u64, u64), inj: &Injection) -> bool {
    let from = gap.0.max(inj.start_ns);
    let to = gap.1.saturating_add(EDGE_SLACK_NS).min(inj.end_ns);
    to.saturating_sub(from) >= inj.spun_ns() / 2
}

/// Judges one trial from its raw fields (`window`, `duration_ns`, `injections`, `events`,
/// `steal_ns`), filling `detections` and `status`. `floor_ns` is the floor run's p99.99.
pub fn judge_trial(mut t: Trial, floor_ns: u64) -> Trial {
    let Some(window) = t.window else {
        t.detections = t
            .injections
            .iter()
            .map(|i| detection(i, None, floor_ns, Outcome::OutsideWindow))
            .collect();
        t.status = TrialStatus::Voided {
            reasons: vec![Disturbance::NoWindow],
        };
        return t;
    };
    let gaps: Vec<((u64, u64), u64)> = t
        .events
        .iter()
        .map(|e| (place(window, t.duration_ns, e), e.latency_ns))
        .collect();
    let stray_ns = gaps
        .iter()
        .filter(|(g, _)| !t.injections.iter().any(|i| overlaps(*g, i)))
        .map(|&(_, len)| len)
        .max()
        .unwrap_or(0);
    let steal_ns = t.steal_ns.unwrap_or(0);
    let mut outside = 0;
    let mut by_noise = false;
    let mut held_off_ns = 0;
    t.detections = t
        .injections
        .iter()
        .map(|inj| {
            if inj.deadline_ns < window.start_ns || inj.end_ns > window.end_ns {
                outside += 1;
                return detection(inj, None, floor_ns, Outcome::OutsideWindow);
            }
            let detected = gaps
                .iter()
                .filter(|(g, _)| overlaps(*g, inj))
                .map(|&(_, len)| len)
                .max();
            let injected = inj.stall_ns();
            let tol = tolerance_ns(injected, floor_ns);
            let outcome = match detected {
                None => Outcome::Missed,
                Some(d) if d.saturating_add(tol) < inj.spun_ns() => Outcome::Undersized,
                Some(d) if d > injected.saturating_add(tol) => {
                    let excess = d - injected - tol;
                    if steal_ns > 0 || stray_ns >= excess || inj.wakeup_ns() >= excess {
                        by_noise = true;
                        if inj.wakeup_ns() >= excess {
                            held_off_ns = held_off_ns.max(inj.wakeup_ns());
                        }
                        Outcome::OversizedByNoise
                    } else {
                        Outcome::Oversized
                    }
                }
                Some(_) => Outcome::Ok,
            };
            detection(inj, detected, floor_ns, outcome)
        })
        .collect();
    t.status = if t.detections.iter().any(|d| d.outcome.is_failure()) {
        TrialStatus::Failed
    } else if outside > 0 || by_noise {
        let mut reasons = Vec::new();
        if outside > 0 {
            reasons.push(Disturbance::OutsideWindow { stalls: outside });
        }
        if by_noise && steal_ns > 0 {
            reasons.push(Disturbance::Steal { steal_ns });
        }
        if by_noise && stray_ns > 0 {
            reasons.push(Disturbance::StrayGap { gap_ns: stray_ns });
        }
        if held_off_ns > 0 {
            reasons.push(Disturbance::InjectorHeldOff {
                late_ns: held_off_ns,
            });
        }
        TrialStatus::Voided { reasons }
    } else {
        TrialStatus::Passed
    };
    t
}

fn detection(inj: &Injection, detected: Option<u64>, floor_ns: u64, outcome: Outcome) -> Detection {
    let injected_ns = inj.stall_ns();
    Detection {
        spin_ns: inj.spin_ns,
        injected_ns,
        wakeup_ns: inj.wakeup_ns(),
        detected_ns: detected,
        error_ns: detected.map(|d| d as i64 - injected_ns as i64),
        tolerance_ns: tolerance_ns(injected_ns, floor_ns),
        outcome,
    }
}

/// The verdict over every attempt: failed if a judged trial failed, trusted if `wanted` trials
/// passed, else inconclusive with the figures of what voided the others. `floor_problem` is a
/// reason the floor run alone makes the host too noisy to calibrate on.
pub fn verdict(trials: &[Trial], wanted: u32, floor_problem: Option<String>) -> Verdict {
    if trials.iter().any(|t| t.status == TrialStatus::Failed) {
        return Verdict::Failed;
    }
    let passed = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Passed)
        .count();
    if let Some(p) = floor_problem {
        return Verdict::Inconclusive { reasons: vec![p] };
    }
    if passed >= wanted as usize && passed > 0 {
        return Verdict::Trusted;
    }
    let mut reasons = vec![format!(
        "{passed} of {wanted} trials could be judged; {} of {} attempts were voided",
        trials.len() - passed,
        trials.len()
    )];
    for t in trials {
        if let TrialStatus::Voided { reasons: why } = &t.status {
            reasons.push(format!(
                "trial {}: {}",
                t.attempt,
                why.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Verdict::Inconclusive { reasons }
}

/// Why the floor run alone makes a host too noisy to calibrate on: the stall lengths it asks
/// for exceed [`MAX_STALL_NS`].
pub fn floor_problem(floor_p9999_ns: u64) -> Option<String> {
    stall_lengths(floor_p9999_ns)
        .iter()
        .any(|&l| l > MAX_STALL_NS)
        .then(|| {
            format!(
                "noise floor p99.99 {floor_p9999_ns} ns is too high: stalls would exceed {} ms; fix the host (pinlat doctor) first",
                MAX_STALL_NS / 1_000_000
            )
        })
}

/// Re-derives every trial's judgement and the verdict of a report from its raw data alone.
pub fn rejudge(mut r: super::CalibrationReport) -> super::CalibrationReport {
    let floor = r.floor.p9999_ns;
    r.trials = r
        .trials
        .into_iter()
        .map(|t| judge_trial(t, floor))
        .collect();
    r.verdict = verdict(&r.trials, r.trials_wanted, floor_problem(floor));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 5_000_000_000;

    /// A stall injected with `wake` ns of wake-up latency, spinning `spin` ns, ending at `end`.
    fn inj(end: u64, spin: u64, wake: u64) -> Injection {
        Injection {
            deadline_ns: end - spin - wake,
            start_ns: end - spin,
            end_ns: end,
            spin_ns: spin,
        }
    }

    fn trial(injections: Vec<Injection>, events: Vec<TopEvent>, steal_ns: u64) -> Trial {
        Trial {
            attempt: 1,
            window: Some(MonoWindow {
                start_ns: T0,
                end_ns: T0 + 600_000_000,
            }),
            duration_ns: 600_000_000,
            injections,
            events,
            steal_ns: Some(steal_ns),
            floor_p9999_ns: 300,
            detections: Vec::new(),
            status: TrialStatus::Passed,
        }
    }

    /// The agent's gap for a stall ending at `end`, `len` long, ending `after` ns later.
    fn gap(end: u64, len: u64, after: u64) -> TopEvent {
        TopEvent {
            offset_ns: end + after - T0,
            latency_ns: len,
        }
    }

    #[test]
    fn stall_lengths_scale_with_the_floor_above_their_minimums() {
        assert_eq!(stall_lengths(20), MIN_STALL_NS.to_vec());
        assert_eq!(stall_lengths(100_000), vec![500_000, 1_000_000, 4_000_000]);
        assert_eq!(
            stall_lengths(1_000_000),
            vec![5_000_000, 10_000_000, 20_000_000]
        );
    }

    #[test]
    fn tolerance_is_the_largest_of_ten_percent_floor_and_allowance() {
        assert_eq!(tolerance_ns(100_000, 20), SWITCH_ALLOWANCE_NS);
        assert_eq!(tolerance_ns(4_000_000, 20), 400_000);
        assert_eq!(tolerance_ns(100_000, 50_000), 50_000);
    }

    #[test]
    fn gaps_between_spin_and_injected_pass_whatever_the_wake_up_latency() {
        let a = inj(T0 + 100_000_000, 100_000, 60_000);
        let b = inj(T0 + 300_000_000, 4_000_000, 140_000);
        // The agent lost the CPU from the deadline (a), or only for the spin (b).
        let t = judge_trial(
            trial(
                vec![a, b],
                vec![
                    gap(a.end_ns, 165_000, 5_000),
                    gap(b.end_ns, 4_010_000, 5_000),
                    gap(T0 + 400_000_000, 9_000, 0),
                ],
                0,
            ),
            300,
        );
        assert_eq!(t.status, TrialStatus::Passed, "{:?}", t.detections);
        assert_eq!(t.detections[0].detected_ns, Some(165_000));
    }

    #[test]
    fn missed_and_undersized_stalls_fail_even_on_a_noisy_host() {
        let a = inj(T0 + 100_000_000, 1_000_000, 30_000);
        let b = inj(T0 + 200_000_000, 1_000_000, 30_000);
        let t = judge_trial(
            trial(vec![a, b], vec![gap(b.end_ns, 600_000, 5_000)], 20_000_000),
            300,
        );
        assert_eq!(t.status, TrialStatus::Failed);
        assert_eq!(t.detections[0].outcome, Outcome::Missed);
        assert_eq!(t.detections[1].outcome, Outcome::Undersized);
    }

    #[test]
    fn a_stall_merged_with_steal_is_voided_not_failed() {
        // The hypervisor took the CPU right after the spin: the agent's gap ends 3 ms late and
        // is 3 ms too long. Today's placement by end time alone called this stall missed.
        let a = inj(T0 + 300_000_000, 4_000_000, 30_000);
        let merged = judge_trial(
            trial(
                vec![a],
                vec![gap(a.end_ns, 7_030_000, 3_000_000)],
                10_000_000,
            ),
            300,
        );
        assert_eq!(merged.detections[0].outcome, Outcome::OversizedByNoise);
        assert_eq!(
            merged.status,
            TrialStatus::Voided {
                reasons: vec![Disturbance::Steal {
                    steal_ns: 10_000_000
                }]
            }
        );
        // The same gap with no steal and nothing else seen: the instrument over-reports.
        let clean = judge_trial(
            trial(vec![a], vec![gap(a.end_ns, 7_030_000, 3_000_000)], 0),
            300,
        );
        assert_eq!(clean.status, TrialStatus::Failed);
        assert_eq!(clean.detections[0].outcome, Outcome::Oversized);
        // A stray 5 ms gap elsewhere shows the host took the CPU that long in this trial.
        let stray = judge_trial(
            trial(
                vec![a],
                vec![
                    gap(a.end_ns, 7_030_000, 3_000_000),
                    gap(T0 + 500_000_000, 5_000_000, 0),
                ],
                0,
            ),
            300,
        );
        assert!(matches!(stray.status, TrialStatus::Voided { .. }));
        // Seen on this machine: the injector woke 4.2 ms late and the agent's gap began 1.9 ms
        // before the deadline: something held the CPU across the deadline.
        let late = inj(T0 + 300_000_000, 4_000_000, 4_176_900);
        let held = judge_trial(
            trial(vec![late], vec![gap(late.end_ns, 10_037_400, 5_000)], 0),
            300,
        );
        assert_eq!(
            held.status,
            TrialStatus::Voided {
                reasons: vec![Disturbance::InjectorHeldOff { late_ns: 4_176_900 }]
            }
        );
    }

    #[test]
    fn stalls_outside_the_window_void_the_trial() {
        let a = inj(T0 - 1_000_000, 100_000, 10_000);
        let t = judge_trial(trial(vec![a], vec![], 0), 300);
        assert_eq!(
            t.status,
            TrialStatus::Voided {
                reasons: vec![Disturbance::OutsideWindow { stalls: 1 }]
            }
        );
        let mut none = trial(vec![a], vec![], 0);
        none.window = None;
        assert_eq!(
            judge_trial(none, 300).status,
            TrialStatus::Voided {
                reasons: vec![Disturbance::NoWindow]
            }
        );
    }

    #[test]
    fn placement_follows_the_measured_window_not_the_agents_clock() {
        // The agent's clock runs 0.2 % fast: its offsets overstate by 1.2 ms at 600 ms.
        let w = MonoWindow {
            start_ns: T0,
            end_ns: T0 + 600_000_000,
        };
        let e = TopEvent {
            offset_ns: 601_200_000,
            latency_ns: 1_000,
        };
        assert_eq!(
            place(w, 601_200_000, &e),
            (T0 + 599_999_000, T0 + 600_000_000)
        );
    }

    #[test]
    fn verdict_has_three_outcomes() {
        let pass = judge_trial(trial(vec![], vec![], 0), 300);
        let void = Trial {
            status: TrialStatus::Voided {
                reasons: vec![Disturbance::Steal {
                    steal_ns: 20_000_000,
                }],
            },
            ..pass.clone()
        };
        let fail = Trial {
            status: TrialStatus::Failed,
            ..pass.clone()
        };
        assert_eq!(
            verdict(&[pass.clone(), pass.clone()], 2, None),
            Verdict::Trusted
        );
        assert_eq!(
            verdict(&[pass.clone(), void.clone(), fail], 2, None),
            Verdict::Failed
        );
        let Verdict::Inconclusive { reasons } = verdict(&[pass.clone(), void], 2, None) else {
            panic!("expected inconclusive");
        };
        assert!(reasons[0].contains("1 of 2 trials"), "{reasons:?}");
        assert!(reasons[1].contains("20 ms steal"), "{reasons:?}");
        assert!(matches!(
            verdict(&[pass], 1, Some("floor".into())),
            Verdict::Inconclusive { .. }
        ));
    }
}
