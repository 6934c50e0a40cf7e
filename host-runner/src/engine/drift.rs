//! Placement proven for the whole run: every periodic read-back of a guest's threads is judged,
//! and each stretch in which a thread's CPUs or policy differed from the plan becomes a
//! [`DriftEvent`] (who, what was seen against what was planned, when, for how long). Any drift
//! fails the run; the check at the end alone would pass a thread that drifted for seconds in
//! the middle and came back, or drifted and exited.
//!
//! The read-backs run on the runner's (housekeeping) CPUs, so a realtime thread moved onto them
//! starves the runner and is not seen while it is there. Two things cover that blind spot: the
//! longest gap between read-backs is kept (and warned about), and a thread pinned to one CPU
//! that migrated during the measurement ([`migrated_while_pinned`]) must have had its affinity
//! changed, whether or not a read-back caught it.

use std::collections::BTreeMap;

use pinlat::plan::GuestPlacement;
use pinlat::result::{DriftEvent, ObservedThread, VcpuThreadStats};

/// Open drift episodes of one guest and the closed ones.
#[derive(Debug, Default)]
pub struct DriftTracker {
    open: BTreeMap<i32, DriftEvent>,
    closed: Vec<DriftEvent>,
    last_at_ms: Option<u64>,
    /// The longest time between two read-backs and when it began, ms after release.
    longest_gap: Option<(u64, u64)>,
}

impl DriftTracker {
    /// Judges one read-back taken `at_ms` after the guest was released. `excused(t)` says a
    /// difference is a recorded degradation rather than drift (SCHED_FIFO refused without
    /// privileges).
    pub fn observe(
        &mut self,
        at_ms: u64,
        threads: &[ObservedThread],
        excused: impl Fn(&ObservedThread) -> bool,
    ) {
        if let Some(last) = self.last_at_ms {
            let gap = at_ms.saturating_sub(last);
            if self.longest_gap.map_or(true, |(g, _)| gap > g) {
                self.longest_gap = Some((gap, last));
            }
        }
        self.last_at_ms = Some(at_ms);
        let mut still: BTreeMap<i32, DriftEvent> = BTreeMap::new();
        for t in threads {
            if t.matches() || excused(t) {
                continue;
            }
            let mut e = self.open.remove(&t.tid).unwrap_or_else(|| DriftEvent {
                tid: t.tid,
                comm: t.comm.clone(),
                role: t.role.clone(),
                observed_cpus: t.cpus.clone(),
                observed_policy: t.policy,
                observed_priority: t.priority,
                planned_cpus: t.planned_cpus.clone(),
                planned_sched: t.planned_sched,
                from_ms: at_ms,
                duration_ms: 0,
                unresolved: false,
            });
            e.duration_ms = at_ms.saturating_sub(e.from_ms);
            still.insert(t.tid, e);
        }
        // Episodes not seen again ended: the thread is back in place, or gone (then it never
        // came back in place: unresolved).
        for (tid, mut e) in std::mem::take(&mut self.open) {
            e.unresolved = !threads.iter().any(|t| t.tid == tid);
            e.duration_ms = at_ms.saturating_sub(e.from_ms);
            self.closed.push(e);
        }
        self.open = still;
    }

    /// Ends the run: open episodes are closed as unresolved. Every event, in start order.
    pub fn finish(mut self) -> Vec<DriftEvent> {
        for (_, mut e) in std::mem::take(&mut self.open) {
            e.unresolved = true;
            self.closed.push(e);
        }
        self.closed.sort_by_key(|e| (e.from_ms, e.tid));
        self.closed
    }

    /// The longest time between two read-backs, ms, and when it began (ms after release).
    pub fn longest_gap(&self) -> Option<(u64, u64)> {
        self.longest_gap
    }

    /// Whether any drift was seen so far.
    pub fn any(&self) -> bool {
        !self.open.is_empty() || !self.closed.is_empty()
    }
}

/// One line naming a drift, for the run's failure.
pub fn describe(e: &DriftEvent) -> String {
    format!(
        "thread {} ({}, {}) on CPUs {} {}:{} instead of {} {} from {:.1} s for {} ms{}",
        e.tid,
        e.comm,
        match &e.role {
            pinlat::result::ThreadRole::Vcpu { vcpu } => format!("vCPU {vcpu}"),
            pinlat::result::ThreadRole::Iothread { id } => format!("iothread {id}"),
            pinlat::result::ThreadRole::Emulator => "emulator".into(),
        },
        e.observed_cpus,
        e.observed_policy,
        e.observed_priority,
        e.planned_cpus,
        e.planned_sched,
        e.from_ms as f64 / 1000.0,
        e.duration_ms,
        if e.unresolved {
            " (not back in place when last seen)"
        } else {
            ""
        }
    )
}

/// vCPU threads the plan pins to exactly one CPU that nevertheless migrated during the
/// measurement (`/proc/<tid>/sched` `se.nr_migrations`): impossible unless their affinity was
/// changed, if only while the runner could not look. One line per thread.
pub fn migrated_while_pinned(plan: &GuestPlacement, stats: &[VcpuThreadStats]) -> Vec<String> {
    stats
        .iter()
        .filter_map(|s| {
            let planned = plan.vcpus.iter().find(|v| v.vcpu == s.vcpu)?;
            let m = s.migrations.filter(|&m| m > 0)?;
            (planned.cpus.len() == 1).then(|| {
                format!(
                    "vCPU {} thread {} migrated {m} time(s) during the measurement though pinned to CPU {} alone (its affinity was changed; seen running on CPUs {})",
                    s.vcpu, s.tid, planned.cpus, s.cpus_seen
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::cpuset::CpuSet;
    use pinlat::plan::Sched;
    use pinlat::result::{HostPolicy, ThreadRole};

    fn vcpu1(cpus: &str) -> ObservedThread {
        ObservedThread {
            tid: 11,
            comm: "CPU 1/TCG".into(),
            role: ThreadRole::Vcpu { vcpu: 1 },
            cpus: CpuSet::parse(cpus).unwrap(),
            policy: HostPolicy::Fifo,
            priority: 1,
            planned_cpus: CpuSet::parse("1").unwrap(),
            planned_sched: Sched::fifo(1),
        }
    }

    #[test]
    fn a_drift_in_the_middle_is_one_event_with_its_length() {
        let mut d = DriftTracker::default();
        d.observe(1000, &[vcpu1("1")], |_| false);
        d.observe(1100, &[vcpu1("0")], |_| false);
        d.observe(1200, &[vcpu1("0")], |_| false);
        d.observe(1300, &[vcpu1("0")], |_| false);
        d.observe(1400, &[vcpu1("1")], |_| false);
        assert!(d.any());
        let ev = d.finish();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].from_ms, ev[0].duration_ms, ev[0].unresolved),
            (1100, 300, false)
        );
        assert_eq!(ev[0].observed_cpus.to_string(), "0");
        assert!(describe(&ev[0]).contains("thread 11 (CPU 1/TCG, vCPU 1) on CPUs 0 fifo:1 instead of 1 fifo:1 from 1.1 s for 300 ms"));
    }

    #[test]
    fn a_thread_that_drifts_and_exits_or_stays_drifted_is_unresolved() {
        let mut d = DriftTracker::default();
        d.observe(100, &[vcpu1("0")], |_| false);
        d.observe(200, &[], |_| false);
        let mut e = DriftTracker::default();
        e.observe(100, &[vcpu1("0-1")], |_| false);
        let (a, b) = (d.finish(), e.finish());
        assert!(a[0].unresolved && b[0].unresolved);
    }

    #[test]
    fn the_longest_gap_between_read_backs_is_kept() {
        let mut d = DriftTracker::default();
        for at in [100, 200, 824, 924] {
            d.observe(at, &[vcpu1("1")], |_| false);
        }
        assert_eq!(d.longest_gap(), Some((624, 200)));
    }

    #[test]
    fn a_single_cpu_vcpu_that_migrated_was_moved() {
        use pinlat::plan::VcpuPlacement;
        let plan = GuestPlacement {
            vcpus: vec![
                VcpuPlacement {
                    vcpu: 0,
                    realtime: false,
                    cpus: CpuSet::parse("0-1").unwrap(),
                    sched: Sched::OTHER,
                },
                VcpuPlacement {
                    vcpu: 1,
                    realtime: true,
                    cpus: CpuSet::parse("1").unwrap(),
                    sched: Sched::fifo(1),
                },
            ],
            guest: "rt".into(),
            pinned: true,
            emulator_cpus: CpuSet::parse("0").unwrap(),
            iothread_cpus: CpuSet::parse("0").unwrap(),
        };
        let stats = |vcpu, migrations| VcpuThreadStats {
            vcpu,
            tid: 10 + vcpu as i32,
            realtime: vcpu == 1,
            voluntary_ctxt_switches: 0,
            nonvoluntary_ctxt_switches: 0,
            migrations,
            cpus_seen: CpuSet::parse("1").unwrap(),
            samples: 3,
        };
        // vCPU 0 may move between its two CPUs; vCPU 1 may not move at all.
        assert!(migrated_while_pinned(&plan, &[stats(0, Some(5)), stats(1, Some(0))]).is_empty());
        assert!(migrated_while_pinned(&plan, &[stats(1, None)]).is_empty());
        let why = migrated_while_pinned(&plan, &[stats(1, Some(2))]);
        assert_eq!(why.len(), 1);
        assert!(
            why[0].contains("vCPU 1 thread 11 migrated 2 time(s)"),
            "{}",
            why[0]
        );
    }

    #[test]
    fn excused_differences_and_matching_threads_are_no_drift() {
        let mut d = DriftTracker::default();
        d.observe(100, &[vcpu1("1")], |_| false);
        let mut other = vcpu1("1");
        other.policy = HostPolicy::Other;
        d.observe(200, &[other], |_| true);
        assert!(!d.any());
        assert!(d.finish().is_empty());
    }
}
