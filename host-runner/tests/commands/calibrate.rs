//! `pinlat calibrate`: the verdict logic on calibrations recorded on this kind of machine, and
//! one real run.
//!
//! The fixtures in `tests/fixtures/calibrate/` are `calibrate.json` files written by
//! `pinlat calibrate --out` on a 2-CPU VM: quiet (`clean`, `clean-with-steal`), with a
//! SCHED_FIFO 50 hog on the measured CPU (`noisy-one-voided`: 3 ms every 40 ms; `too-noisy`:
//! 2 ms every 10 ms), and a run where the injector was held off its CPU 4.2 ms past a deadline
//! (`held-off`). Each is re-judged from its raw trials, so these tests judge today's logic, not
//! the one that wrote them. Broken instruments are simulated by editing the agent's recorded
//! gaps. The one real run, `boot_calibrate_runs_for_real`, is in `tests/guests/calibrate.rs`.

use std::path::PathBuf;

use pinlat::calibration::judge::rejudge;
use pinlat::calibration::{CalibrationReport, Disturbance, Outcome, TrialStatus, Verdict};

fn fixture(name: &str) -> CalibrationReport {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/calibrate")
        .join(format!("{name}.json"));
    let r: CalibrationReport = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    rejudge(r)
}

/// The recorded report with every agent gap changed by `f` (a broken instrument).
fn sabotaged(name: &str, f: impl Fn(u64) -> Option<u64>) -> CalibrationReport {
    let mut r = fixture(name);
    for t in &mut r.trials {
        t.events = t
            .events
            .iter()
            .filter_map(|e| {
                f(e.latency_ns).map(|l| pinlat::wire::TopEvent {
                    latency_ns: l,
                    ..*e
                })
            })
            .collect();
    }
    rejudge(r)
}

#[test]
fn quiet_recordings_are_trusted_with_every_stall_sized() {
    for name in ["clean", "clean-with-steal"] {
        let r = fixture(name);
        assert_eq!(r.verdict, Verdict::Trusted, "{name}: {}", r.to_table());
        assert_eq!(r.judged_detections().count(), 12, "{name}");
        for d in r.judged_detections() {
            // The agent cannot see less than the spin itself.
            assert!(d.detected_ns.unwrap() >= d.spin_ns, "{name}: {d:?}");
        }
        // The stall lengths are well above the floor.
        assert!(r
            .stall_lengths_ns
            .iter()
            .all(|&l| l >= 5 * r.floor.p9999_ns));
    }
    // Steal time alone does not void a trial whose stalls were all sized.
    let r = fixture("clean-with-steal");
    assert!(r.trials[0].steal_ns.unwrap() > 0);
    assert_eq!(r.trials[0].status, TrialStatus::Passed);
}

#[test]
fn a_host_that_takes_the_cpu_voids_trials_and_is_named_in_the_verdict() {
    let r = fixture("noisy-one-voided");
    assert_eq!(r.verdict, Verdict::Trusted, "{}", r.to_table());
    assert!(matches!(r.trials[0].status, TrialStatus::Voided { .. }));

    let r = fixture("too-noisy");
    let Verdict::Inconclusive { reasons } = &r.verdict else {
        panic!("{}", r.to_table());
    };
    assert!(
        reasons[0].contains("0 of 1 trials could be judged"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("gap no injection explains")),
        "{reasons:?}"
    );
    assert!(r
        .to_table()
        .contains("too noisy to judge the instrument (exit 4)"));

    // The injector woke 4.2 ms late and the agent's gap began 1.9 ms before the deadline:
    // the host, not the instrument.
    let r = fixture("held-off");
    assert!(
        matches!(&r.trials[0].status, TrialStatus::Voided { reasons }
            if reasons.iter().any(|d| matches!(d, Disturbance::InjectorHeldOff { .. }))),
        "{}",
        r.to_table()
    );
    assert!(matches!(r.verdict, Verdict::Inconclusive { .. }));
}

#[test]
fn an_instrument_that_misses_stalls_fails() {
    let r = sabotaged("clean", |l| (l < 50_000).then_some(l));
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_table());
    assert!(r.missed() >= 1, "{}", r.to_table());
    assert!(r.to_table().contains("MISSED"));
}

#[test]
fn an_instrument_that_mis_sizes_stalls_fails_either_way() {
    let r = sabotaged("clean", |l| Some(l / 2));
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_table());
    assert!(
        r.judged_detections()
            .filter(|d| d.outcome == Outcome::Undersized)
            .count()
            >= 4,
        "{}",
        r.to_table()
    );
    let r = sabotaged("clean", |l| Some(l * 2));
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_table());
    assert!(r.mis_sized() >= 1, "{}", r.to_table());
}
