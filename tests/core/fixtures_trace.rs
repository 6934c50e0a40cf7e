//! A results directory whose runs carry host traces (`tests/fixtures/runs-traced`): `share` and
//! `vcpu0` under `mgmt-poll`, busy-poll. Under `share` QEMU's main loop takes RT pCPU 1 for
//! 3 ms once (matched to the guest's largest gap) beside timer ticks; under `vcpu0` only ticks
//! and a kworker. One run's SMIs were counted, the other's were not available. The traces are
//! written here by hand (what `pinlat::trace::analyse` keeps), so the report's culprit section
//! is tested without a host.

use std::path::Path;

use pinlat::config::{LayoutKind, ScenarioKind, WorkloadKind};
use pinlat::kinds::Accel;
use pinlat::trace::matcher::{Culprit, GuestEvent, GuestMatch};
use pinlat::trace::record::{
    Aligned, ClockMapping, EventMatch, GuestTrace, PcpuTrace, RunTrace, SmiCount, Strip,
    TraceStats, TraceStatus,
};
use pinlat::trace::{Class, ClassStats, CpuAttribution, Interval, NameStats, Part, Window};
use pinlat::wire::ClockSource;

use pinlat_test_infra::fixtures::{self, Spec};

const MS: u64 = 1_000_000;
/// The host window of every run: 0.5 s at host 1000 s.
const W: Window = Window {
    start_ns: 1_000_000_000_000,
    end_ns: 1_000_500_000_000,
};

fn specs() -> Vec<Spec> {
    let base = Spec {
        layout: "share",
        kind: LayoutKind::Share,
        variant: None,
        scenario: ScenarioKind::MgmtPoll,
        workload: WorkloadKind::BusyPoll,
        rep: 1,
        accel: Accel::Tcg,
        tail_ns: (2_900_000, 3_000_400),
        tail_every: 5_000,
        failed: false,
        samples: 5_000,
        period_ns: 100_000,
        weight: 1,
        intervals: 2,
        clock: ClockSource::Tsc,
        guest_rt: true,
        started_unix_ms: None,
    };
    vec![
        base,
        Spec {
            layout: "vcpu0",
            kind: LayoutKind::Vcpu0,
            variant: None,
            tail_ns: (30_000, 40_000),
            ..base
        },
    ]
}

fn iv(start_ms: u64, len_ns: u64, class: Class, name: &str) -> Interval {
    let start_ns = W.start_ns + start_ms * MS;
    Interval {
        start_ns,
        end_ns: start_ns + len_ns,
        class,
        name: name.into(),
        parts: vec![Part {
            class,
            name: name.into(),
            ns: len_ns,
        }],
    }
}

fn class(class: Class, names: &[(&str, u64, u64, u64)]) -> ClassStats {
    ClassStats {
        class,
        total_ns: names.iter().map(|n| n.1).sum(),
        count: names.iter().map(|n| n.2).sum(),
        longest_ns: names.iter().map(|n| n.3).max().unwrap_or(0),
        names: names
            .iter()
            .map(|&(name, total_ns, count, longest_ns)| NameStats {
                name: name.into(),
                total_ns,
                count,
                longest_ns,
            })
            .collect(),
    }
}

/// The trace of one run: the main loop's 3 ms under `share`, ticks everywhere.
fn trace(share: bool) -> RunTrace {
    let tick = iv(120, 12_000, Class::HardIrq, "local_timer");
    let (by_class, longest, event) = if share {
        let emu = iv(250, 3 * MS, Class::Emulator, "qemu-system-x86");
        (
            vec![
                class(Class::Emulator, &[("qemu-system-x86", 3 * MS, 1, 3 * MS)]),
                class(Class::HardIrq, &[("local_timer", 1_500_000, 125, 12_000)]),
            ],
            vec![emu.clone(), tick.clone()],
            (emu, 3_000_400),
        )
    } else {
        let kw = iv(300, 38_000, Class::KernelThread, "kworker/1:1");
        (
            vec![
                class(Class::HardIrq, &[("local_timer", 1_500_000, 125, 12_000)]),
                class(Class::KernelThread, &[("kworker/1:1", 38_000, 1, 38_000)]),
            ],
            vec![kw.clone(), tick.clone()],
            (kw, 40_000),
        )
    };
    let stolen: u64 = by_class.iter().map(|c| c.total_ns).sum();
    let (culprit, latency_ns) = event;
    let ev_end = culprit.end_ns + 20_000;
    let matched = GuestMatch {
        event: GuestEvent {
            end_ns: ev_end,
            length_ns: latency_ns,
            uncertainty_ns: 200_000,
        },
        tolerance_ns: 201_000,
        culprits: vec![Culprit {
            overlap_ns: culprit.len_ns(),
            start_delta_ns: culprit.start_ns as i64 - (ev_end - latency_ns) as i64,
            end_delta_ns: -20_000,
            matches: true,
            interval: culprit.clone(),
        }],
        covered_ns: culprit.len_ns(),
    };
    let strip = Strip {
        from_ns: culprit.start_ns - 20 * MS,
        to_ns: culprit.end_ns + 20 * MS,
        event_ns: (ev_end - latency_ns, ev_end),
        intervals: vec![culprit.clone()],
    };
    let attribution = CpuAttribution {
        cpu: 1,
        planned_tid: 4242,
        window: W,
        ran_ns: W.len_ns() - stolen,
        idle_ns: 0,
        stolen_ns: stolen,
        away_ns: 0,
        unknown_ns: 0,
        by_class,
        longest,
        intervals: strip.intervals.clone(),
        dropped_intervals: 0,
        throttle_episodes: 0,
        lost_markers: 0,
        inferred_switches: 0,
        unmatched_irqs: 0,
    };
    RunTrace {
        status: TraceStatus::Recorded,
        instance: Some(format!(
            "pinlat-1-{}",
            if share { "share" } else { "vcpu0" }
        )),
        cpus: pinlat::cpuset::CpuSet::parse("1").unwrap(),
        events: vec!["sched/sched_switch".into(), "irq/irq_handler_entry".into()],
        events_missing: vec!["kvm/kvm_exit".into()],
        stats: TraceStats {
            bytes: 1_000_000,
            bytes_dropped: 0,
            events: 9_000,
            malformed: if share { 1 } else { 0 },
            lost_markers: 0,
            lost_events: 0,
            overrun: 0,
            resolution_ns: 1_000,
        },
        guests: vec![GuestTrace {
            guest: "rt".into(),
            window: Some(W),
            mapping: Some(ClockMapping {
                method: "frames".into(),
                offset_ns: 7 * MS as i64,
                uncertainty_ns: 200_000,
                frames: 6,
                delay_min_ns: 9 * MS as i64,
                delay_median_ns: 25 * MS as i64,
                note: "TCG: fixture mapping, refined by one shift that lines 1 of 1 events up"
                    .into(),
                aligned: Some(Aligned {
                    shift_ns: 2 * MS as i64,
                    events: 1,
                    lined_up: 1,
                    frames_uncertainty_ns: 100 * MS,
                    residual_ns: None,
                    residual_events: 0,
                }),
            }),
            pcpus: vec![PcpuTrace {
                vcpu: 1,
                attribution,
                strip: Some(strip),
            }],
            matches: vec![EventMatch {
                vcpu: 1,
                pcpu: 1,
                offset_ns: 250 * MS + latency_ns,
                latency_ns,
                host: matched,
            }],
            notes: vec![],
        }],
        threshold_ns: Some(MS),
        captures: vec![],
        captures_dropped: 0,
        capture_file: None,
        dat_note: None,
        smi: vec![if share {
            SmiCount::Counted {
                cpu: 1,
                before: 10,
                after: 12,
            }
        } else {
            SmiCount::NotAvailable {
                cpu: 1,
                why: "/dev/cpu/1/msr does not exist (load the msr module: modprobe msr)".into(),
            }
        }],
    }
}

/// Writes the traced set.
pub fn write_traced(dir: &Path) {
    fixtures::write_dir(dir, "fixture-traced", &specs(), "")
        .unwrap_or_else(|e| panic!("writing {}: {e}", dir.display()));
    for s in specs() {
        let mut r = fixtures::record("fixture-traced", &s);
        r.host_trace = Some(trace(s.kind == LayoutKind::Share));
        let mut text = serde_json::to_string_pretty(&r).unwrap();
        text.push('\n');
        std::fs::write(dir.join("runs").join(r.file_name()), text).unwrap();
    }
}
