//! Where QEMU's CPU time went during a measurement, per thread kind: the evidence that a
//! disturbance loaded the threads a layout places (issue 12, "Emulator CPU time").
//!
//! Every QEMU thread is sampled with the vCPU statistics ([`crate::pin::VcpuSampler`]), from
//! the agent's first interval report to its first final result, so boot and preheat are not
//! counted. Per thread: user + system time from `stat` (clock ticks), time on and waiting for
//! a CPU from `schedstat` (ns), context switches from `status`, and the CPU it last ran on.
//! A thread that starts inside the window counts from zero. A thread that exits inside it
//! counts, in its own kind, up to its last sample; what it used after that, and every thread
//! that lived and died between two samples, is the rest of the process's total
//! (`/proc/<pid>/stat` keeps dead threads' time), reported as [`ThreadKind::Exited`]. The
//! migration thread is such a thread: QEMU starts a new one for every pass.
//!
//! Thread kinds come from QMP's thread ids (vCPUs, iothreads), the process id (the main loop)
//! and the names QEMU 7.2 gives its threads with `-name …,debug-threads=on`: `worker`
//! (`util/thread-pool.c`), `call_rcu` (`util/rcu.c`), `IO mon_iothread` (the monitor's I/O
//! thread, `monitor/monitor.c`), `live_migration` (`migration/migration.c`; `mig/src/main` and
//! `mig/src/send_N` from QEMU 9.0), `return path` and `multifdsend_N`.

use std::collections::BTreeMap;

use pinlat::cpuset::CpuSet;
use pinlat::result::{ThreadCpu, ThreadKind, ThreadKindCpu, ThreadRole};

use crate::procfs::{ticks_to_ns, SchedStat, ThreadInfo};

/// The kind of an emulator thread (neither a vCPU nor a user iothread) of process `pid`.
pub fn classify_emulator(pid: i32, tid: i32, comm: &str) -> ThreadKind {
    if tid == pid {
        ThreadKind::MainLoop
    } else if comm == "worker" {
        ThreadKind::Worker
    } else if comm == "call_rcu" {
        ThreadKind::Rcu
    } else if comm == "IO mon_iothread" {
        ThreadKind::Monitor
    } else if comm == "live_migration"
        || comm == "return path"
        || comm.starts_with("mig/")
        || comm.starts_with("multifdsend_")
    {
        ThreadKind::Migration
    } else {
        ThreadKind::Other
    }
}

/// The kind of thread `tid` (named `comm`) of process `pid`, whose role QMP's thread ids gave.
pub fn classify(pid: i32, tid: i32, comm: &str, role: &ThreadRole) -> ThreadKind {
    match role {
        ThreadRole::Vcpu { vcpu } => ThreadKind::Vcpu { vcpu: *vcpu },
        ThreadRole::Iothread { .. } => ThreadKind::Iothread,
        ThreadRole::Emulator => classify_emulator(pid, tid, comm),
    }
}

/// One thread's counters at one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Snap {
    cpu_ticks: u64,
    sched: SchedStat,
    voluntary: u64,
    nonvoluntary: u64,
}

impl Snap {
    fn of(t: &ThreadInfo) -> Snap {
        Snap {
            cpu_ticks: t.utime_ticks + t.stime_ticks,
            sched: t.schedstat.unwrap_or_default(),
            voluntary: t.voluntary_ctxt_switches,
            nonvoluntary: t.nonvoluntary_ctxt_switches,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    kind: ThreadKind,
    /// At the first sample, or zero for a thread that started inside the window.
    first: Snap,
    last: Snap,
    /// Seen in the last sample.
    alive: bool,
    cpus_seen: CpuSet,
}

/// Samples every thread of one QEMU process over the measurement window and sums what each
/// kind used (see the module documentation).
#[derive(Debug, Default)]
pub struct ThreadCpuSampler {
    tracks: BTreeMap<i32, Track>,
    first_process_ticks: Option<u64>,
    last_process_ticks: Option<u64>,
    first_ns: Option<u64>,
    last_ns: u64,
    samples: u64,
}

impl ThreadCpuSampler {
    /// Takes one sample: `threads` read at host time `at_ns`, with the process's total CPU
    /// ticks when they could be read, each thread's kind from `kind_of`.
    pub fn sample(
        &mut self,
        threads: &[ThreadInfo],
        process_ticks: Option<u64>,
        at_ns: u64,
        kind_of: impl Fn(&ThreadInfo) -> ThreadKind,
    ) {
        let first = self.samples == 0;
        self.samples += 1;
        self.first_ns.get_or_insert(at_ns);
        self.last_ns = at_ns;
        if let Some(p) = process_ticks {
            self.first_process_ticks.get_or_insert(p);
            self.last_process_ticks = Some(p);
        }
        for track in self.tracks.values_mut() {
            track.alive = false;
        }
        for t in threads {
            let now = Snap::of(t);
            match self.tracks.get_mut(&t.tid) {
                Some(track) => {
                    // A CPU counts as seen when the thread ran since the previous sample.
                    let ran = if t.schedstat.is_some() {
                        now.sched.run_ns > track.last.sched.run_ns
                    } else {
                        now.cpu_ticks > track.last.cpu_ticks
                    };
                    if ran {
                        track.cpus_seen.insert(t.last_cpu);
                    }
                    track.last = now;
                    track.alive = true;
                }
                None => {
                    let mut cpus_seen = CpuSet::new();
                    if !first && (now.sched.run_ns > 0 || now.cpu_ticks > 0) {
                        cpus_seen.insert(t.last_cpu);
                    }
                    self.tracks.insert(
                        t.tid,
                        Track {
                            kind: kind_of(t),
                            first: if first { now } else { Snap::default() },
                            last: now,
                            alive: true,
                            cpus_seen,
                        },
                    );
                }
            }
        }
    }

    /// Whether any sample was taken.
    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// What each kind used between the first and the last sample, with `hz` clock ticks per
    /// second ([`crate::procfs::clock_ticks_per_s`]); `None` before two samples.
    pub fn finish(&self, hz: u64) -> Option<ThreadCpu> {
        if self.samples < 2 {
            return None;
        }
        let mut kinds: BTreeMap<ThreadKind, ThreadKindCpu> = BTreeMap::new();
        let mut tracked_ticks = 0u64;
        let mut exited_threads = 0u32;
        for track in self.tracks.values() {
            let (a, b) = (track.first, track.last);
            let ticks = b.cpu_ticks.saturating_sub(a.cpu_ticks);
            tracked_ticks += ticks;
            if !track.alive {
                exited_threads += 1;
            }
            let k = kinds
                .entry(track.kind.clone())
                .or_insert_with(|| ThreadKindCpu {
                    kind: track.kind.clone(),
                    ..Default::default()
                });
            k.threads += 1;
            k.cpu_ns += ticks_to_ns(ticks, hz);
            k.run_ns += b.sched.run_ns.saturating_sub(a.sched.run_ns);
            k.wait_ns += b.sched.wait_ns.saturating_sub(a.sched.wait_ns);
            k.timeslices += b.sched.timeslices.saturating_sub(a.sched.timeslices);
            k.voluntary_ctxt_switches += b.voluntary.saturating_sub(a.voluntary);
            k.nonvoluntary_ctxt_switches += b.nonvoluntary.saturating_sub(a.nonvoluntary);
            k.cpus_seen = k.cpus_seen.union(&track.cpus_seen);
        }
        let process_ticks = match (self.first_process_ticks, self.last_process_ticks) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => tracked_ticks,
        };
        // Each thread's ticks are truncated on their own, so the threads' sum may fall short
        // of the process's by up to a tick per thread without any thread having exited.
        let rest = process_ticks.saturating_sub(tracked_ticks);
        let rounding = self.tracks.len() as u64;
        if exited_threads > 0 || rest > rounding {
            kinds.insert(
                ThreadKind::Exited,
                ThreadKindCpu {
                    kind: ThreadKind::Exited,
                    threads: exited_threads,
                    cpu_ns: ticks_to_ns(rest, hz),
                    ..Default::default()
                },
            );
        }
        Some(ThreadCpu {
            window_ns: self
                .last_ns
                .saturating_sub(self.first_ns.unwrap_or(self.last_ns)),
            samples: self.samples,
            process_cpu_ns: ticks_to_ns(process_ticks, hz),
            kinds: kinds.into_values().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::SchedPolicy;

    const PID: i32 = 100;

    fn thread(tid: i32, comm: &str, ticks: u64, run_ns: u64, cpu: u32) -> ThreadInfo {
        ThreadInfo {
            tid,
            comm: comm.into(),
            cpus_allowed_list: "0-1".into(),
            cpus_allowed: vec![0, 1],
            voluntary_ctxt_switches: ticks * 2,
            nonvoluntary_ctxt_switches: ticks,
            policy: SchedPolicy::Other,
            rt_priority: 0,
            last_cpu: cpu,
            nr_migrations: None,
            utime_ticks: ticks,
            stime_ticks: 0,
            schedstat: Some(SchedStat {
                run_ns,
                wait_ns: run_ns / 10,
                timeslices: ticks,
            }),
        }
    }

    fn kind_of(t: &ThreadInfo) -> ThreadKind {
        let role = match t.comm.as_str() {
            "CPU 0/TCG" => ThreadRole::Vcpu { vcpu: 0 },
            "CPU 1/TCG" => ThreadRole::Vcpu { vcpu: 1 },
            "IO iothread1" => ThreadRole::Iothread {
                id: "iothread1".into(),
            },
            _ => ThreadRole::Emulator,
        };
        classify(PID, t.tid, &t.comm, &role)
    }

    #[test]
    fn kinds_from_roles_pid_and_qemu_7_2_names() {
        let e = |tid, comm| classify_emulator(PID, tid, comm);
        assert_eq!(e(PID, "qemu-system-x86"), ThreadKind::MainLoop);
        // The main loop is the process's first thread whatever it is called.
        assert_eq!(e(PID, "worker"), ThreadKind::MainLoop);
        assert_eq!(e(101, "worker"), ThreadKind::Worker);
        assert_eq!(e(102, "call_rcu"), ThreadKind::Rcu);
        assert_eq!(e(103, "IO mon_iothread"), ThreadKind::Monitor);
        for m in [
            "live_migration",
            "mig/src/main",
            "mig/src/send_1",
            "return path",
            "multifdsend_0",
        ] {
            assert_eq!(e(104, m), ThreadKind::Migration, "{m}");
        }
        assert_eq!(e(105, "qemu-system-x86"), ThreadKind::Other);
        assert_eq!(e(106, "workers"), ThreadKind::Other);
        assert_eq!(
            classify(
                PID,
                107,
                "IO iothread1",
                &ThreadRole::Iothread { id: "x".into() }
            ),
            ThreadKind::Iothread
        );
        // A role from QMP wins over a name.
        assert_eq!(
            classify(PID, 108, "worker", &ThreadRole::Vcpu { vcpu: 3 }),
            ThreadKind::Vcpu { vcpu: 3 }
        );
    }

    #[test]
    fn deltas_per_kind_over_the_window() {
        // The same four threads sampled twice: (ticks, run ns, last CPU) each.
        let threads = [
            (PID, "qemu-system-x86"),
            (101, "CPU 0/TCG"),
            (102, "CPU 1/TCG"),
            (103, "call_rcu"),
        ];
        let mut s = ThreadCpuSampler::default();
        for (figures, process_ticks, at_ns) in [
            (
                [
                    (10, 100_000_000, 0),
                    (50, 500_000_000, 0),
                    (80, 800_000_000, 1),
                    (1, 1_000_000, 0),
                ],
                141,
                1_000_000_000,
            ),
            (
                [
                    (30, 300_000_000, 1),
                    (150, 1_500_000_000, 0),
                    (280, 2_800_000_000, 1),
                    (1, 1_000_000, 1),
                ],
                461,
                3_000_000_000,
            ),
        ] {
            let sampled: Vec<ThreadInfo> = threads
                .iter()
                .zip(figures)
                .map(|(&(tid, comm), (ticks, run_ns, cpu))| thread(tid, comm, ticks, run_ns, cpu))
                .collect();
            s.sample(&sampled, Some(process_ticks), at_ns, kind_of);
        }
        let r = s.finish(100).unwrap();
        assert_eq!(r.window_ns, 2_000_000_000);
        assert_eq!(r.samples, 2);
        assert_eq!(r.process_cpu_ns, 3_200_000_000);
        let labels: Vec<String> = r.kinds.iter().map(|k| k.kind.label()).collect();
        assert_eq!(labels, ["vCPU 0", "vCPU 1", "main loop", "rcu"]);
        let main = r.kind(&ThreadKind::MainLoop).unwrap();
        assert_eq!((main.cpu_ns, main.run_ns), (200_000_000, 200_000_000));
        assert_eq!(main.wait_ns, 20_000_000);
        assert_eq!(main.voluntary_ctxt_switches, 40);
        assert_eq!(main.cpus_seen.to_string(), "1");
        // A thread that did not run is not seen anywhere, wherever it last ran.
        let rcu = r.kind(&ThreadKind::Rcu).unwrap();
        assert_eq!((rcu.run_ns, rcu.cpus_seen.len()), (0, 0));
        assert_eq!(
            r.kind(&ThreadKind::Vcpu { vcpu: 1 }).unwrap().run_ns,
            2_000_000_000
        );
        // Nothing exited and the threads account for the whole process: no exited entry.
        assert!(r.kind(&ThreadKind::Exited).is_none());
    }

    #[test]
    fn threads_born_inside_count_from_zero_and_exited_ones_keep_their_kind() {
        let mut s = ThreadCpuSampler::default();
        let main = |ticks| thread(PID, "qemu-system-x86", ticks, ticks * 10_000_000, 0);
        s.sample(&[main(10)], Some(10), 0, kind_of);
        // The first migration pass's thread appears...
        s.sample(
            &[main(12), thread(200, "live_migration", 30, 300_000_000, 0)],
            Some(42),
            100,
            kind_of,
        );
        // ...exits (after 5 more ticks nobody saw), and the next pass's thread appears; a
        // worker lived and died between samples (7 ticks).
        s.sample(
            &[main(14), thread(201, "live_migration", 20, 200_000_000, 1)],
            Some(42 + 2 + 5 + 20 + 7),
            200,
            kind_of,
        );
        let r = s.finish(100).unwrap();
        let mig = r.kind(&ThreadKind::Migration).unwrap();
        assert_eq!(mig.threads, 2);
        assert_eq!(mig.cpu_ns, 500_000_000, "both passes' threads, from zero");
        assert_eq!(mig.run_ns, 500_000_000);
        assert_eq!(mig.cpus_seen.to_string(), "0-1");
        let exited = r.kind(&ThreadKind::Exited).unwrap();
        assert_eq!(exited.threads, 1);
        assert_eq!(exited.cpu_ns, 120_000_000, "5 unseen + 7 unseen ticks");
        assert_eq!(exited.run_ns, 0);
        assert_eq!(r.process_cpu_ns, 660_000_000, "4 + 30 + 20 + 12 ticks");
    }

    #[test]
    fn rounding_is_not_an_exited_thread() {
        let mut s = ThreadCpuSampler::default();
        let ts = |t| {
            [
                thread(PID, "qemu-system-x86", t, 0, 0),
                thread(101, "worker", t, 0, 0),
            ]
        };
        s.sample(&ts(10), Some(20), 0, kind_of);
        // The process's total is 2 ticks above the threads' sum: truncation, not an exit.
        s.sample(&ts(20), Some(42), 1, kind_of);
        let r = s.finish(100).unwrap();
        assert!(r.kind(&ThreadKind::Exited).is_none(), "{r:?}");
        // Without schedstat, ticks decide whether a thread ran.
        let mut s = ThreadCpuSampler::default();
        let mut a = thread(101, "worker", 1, 0, 0);
        a.schedstat = None;
        let mut b = a.clone();
        b.utime_ticks = 2;
        b.last_cpu = 1;
        s.sample(&[a], None, 0, kind_of);
        s.sample(&[b], None, 5, kind_of);
        let r = s.finish(100).unwrap();
        let w = r.kind(&ThreadKind::Worker).unwrap();
        assert_eq!(
            (w.cpu_ns, w.run_ns, w.time_ns()),
            (10_000_000, 0, 10_000_000)
        );
        assert_eq!(w.cpus_seen.to_string(), "1");
        assert_eq!(
            r.process_cpu_ns, 10_000_000,
            "the threads' sum without a total"
        );
    }

    #[test]
    fn one_sample_is_no_window() {
        let mut s = ThreadCpuSampler::default();
        assert!(s.is_empty() && s.finish(100).is_none());
        s.sample(&[thread(PID, "q", 1, 1, 0)], Some(1), 0, kind_of);
        assert!(s.finish(100).is_none());
    }
}
