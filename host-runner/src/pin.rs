//! Applies a guest's planned placement to its QEMU process and reads back what the kernel
//! actually applied.
//!
//! Pinning follows libvirt's order (`qemuProcessSetupEmulator`, then vCPUs, then iothreads,
//! then scheduler settings): the whole process goes to the emulator set first, so every thread
//! QEMU has is somewhere planned; then each vCPU thread to its own set; then iothreads; then
//! SCHED_FIFO on realtime vCPU threads. Threads QEMU starts later (RCU, workers, iothreads made
//! over QMP) are kept off the RT pCPUs by a cpuset cgroup per guest where the host has one
//! ([`crate::cgroup`], as libvirt does), and [`Pinner::pin_new_threads`] places them by role
//! during the run either way (every 10 ms without a cgroup).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pinlat::config::Policy;
use pinlat::cpuset::CpuSet;
use pinlat::plan::{GuestPlacement, Sched};
use pinlat::result::{NewThread, ObservedThread, ThreadKind, ThreadRole, VcpuThreadStats};
use pinlat::sched::{self, SchedError};

use crate::cgroup::GuestCgroup;
use crate::procfs::{ProcError, Procfs, ThreadInfo};
use crate::qmp::{IoThread, VcpuThread};

/// Pinning or reading back failed.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// A syscall on a thread failed.
    #[error("Cannot apply placement to {what} (tid {tid})")]
    Apply {
        /// Which thread, e.g. `vCPU 1`.
        what: String,
        /// Thread id.
        tid: i32,
        /// The failing call.
        #[source]
        source: SchedError,
    },
    /// Reading `/proc` failed.
    #[error("Cannot read QEMU's threads")]
    Proc(#[source] ProcError),
    /// A thread could not be moved into its cpuset cgroup.
    #[error("Cannot move {what} (tid {tid}) into its cpuset cgroup")]
    Cgroup {
        /// Which thread.
        what: String,
        /// Thread id.
        tid: i32,
        /// The failing step.
        #[source]
        source: crate::cgroup::CgroupError,
    },
    /// QMP reported a vCPU the plan does not have, or the plan has one QMP did not report.
    #[error("QMP reported vCPUs {reported} but the plan has {planned}")]
    VcpuCount {
        /// vCPU indexes QMP reported.
        reported: String,
        /// vCPU indexes of the plan.
        planned: String,
    },
}

impl PlacementError {
    /// The thread exited before it could be placed: not an error for a thread QEMU started and
    /// ended on its own (a worker, a migration pass).
    fn thread_gone(&self) -> bool {
        matches!(
            self,
            PlacementError::Apply {
                source: SchedError::Syscall {
                    source: nix::Error::ESRCH,
                    ..
                },
                ..
            }
        )
    }
}

/// Applies one guest's placement and keeps what is needed to classify its threads.
#[derive(Debug)]
pub struct Pinner {
    pid: i32,
    plan: GuestPlacement,
    vcpu_tids: BTreeMap<i32, u32>,
    iothread_tids: BTreeMap<i32, String>,
    /// Threads already placed.
    placed: BTreeSet<i32>,
    procfs: Procfs,
    /// Refuse to run without the planned scheduling policy (`--strict`).
    strict: bool,
    /// Threads whose SCHED_FIFO the kernel refused (no root/CAP_SYS_NICE), when not strict.
    sched_refused: BTreeSet<i32>,
    /// The guest's cpuset cgroup, when threads are kept in one ([`crate::cgroup`]).
    cgroup: Option<Cgroups>,
    /// When the guest was released (`cont`); new threads are timed from here.
    released: Option<Instant>,
    /// Threads that appeared after [`Pinner::pin_all`], as they were first seen.
    new_threads: Vec<NewThread>,
    /// Someone else (libvirt) applies the placement: this pinner only reads it back.
    read_only: bool,
}

/// The guest's cgroup and the child group of each thread kind.
#[derive(Debug)]
struct Cgroups {
    group: GuestCgroup,
    emulator: PathBuf,
    vcpus: BTreeMap<u32, PathBuf>,
    iothreads: PathBuf,
}

fn cpus_vec(set: &CpuSet) -> Vec<u32> {
    set.iter().collect()
}

impl Pinner {
    /// A pinner for QEMU process `pid` whose vCPU and iothread ids came from QMP.
    pub fn new(
        pid: i32,
        plan: GuestPlacement,
        vcpus: &[VcpuThread],
        iothreads: &[IoThread],
    ) -> Result<Self, PlacementError> {
        let reported: CpuSet = vcpus.iter().map(|v| v.cpu_index).collect();
        let planned: CpuSet = plan.vcpus.iter().map(|v| v.vcpu).collect();
        if reported != planned {
            return Err(PlacementError::VcpuCount {
                reported: reported.to_string(),
                planned: planned.to_string(),
            });
        }
        Ok(Pinner {
            pid,
            plan,
            vcpu_tids: vcpus.iter().map(|v| (v.thread_id, v.cpu_index)).collect(),
            iothread_tids: iothreads
                .iter()
                .map(|t| (t.thread_id, t.id.clone()))
                .collect(),
            placed: BTreeSet::new(),
            procfs: Procfs::default(),
            strict: false,
            sched_refused: BTreeSet::new(),
            cgroup: None,
            released: None,
            new_threads: Vec::new(),
            read_only: false,
        })
    }

    /// A pinner that never changes a thread: another manager (libvirt) applied the placement,
    /// and [`Pinner::observe`] compares what it did with the plan. Threads QEMU starts later
    /// are recorded as seen, never moved ([`Pinner::pin_new_threads`]), so a thread libvirt
    /// leaves elsewhere than planned is a placement drift of the run.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Makes a refused SCHED_FIFO an error instead of a recorded degradation.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Threads that run without their planned SCHED_FIFO because the kernel refused it
    /// (`EPERM`: neither root nor CAP_SYS_NICE). Empty when strict.
    pub fn sched_refused(&self) -> &BTreeSet<i32> {
        &self.sched_refused
    }

    /// Whether an observed thread differs from the plan only by a refused SCHED_FIFO.
    pub fn is_degraded_only(&self, t: &ObservedThread) -> bool {
        self.sched_refused.contains(&t.tid) && t.cpus == t.planned_cpus
    }

    /// Host thread ids of the vCPUs, by vCPU index.
    pub fn vcpu_tids(&self) -> BTreeMap<u32, i32> {
        self.vcpu_tids.iter().map(|(&t, &v)| (v, t)).collect()
    }

    /// QEMU's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// What a thread of this QEMU is, for the account of its CPU time
    /// ([`crate::thread_cpu::classify`]).
    pub fn kind_of(&self, t: &ThreadInfo) -> ThreadKind {
        crate::thread_cpu::classify(self.pid, t.tid, &t.comm, &self.role(t.tid))
    }

    /// The whole process's CPU time so far, clock ticks (dead threads included).
    pub fn process_cpu_ticks(&self) -> Result<u64, PlacementError> {
        self.procfs
            .process_cpu_ticks(self.pid)
            .map_err(PlacementError::Proc)
    }

    fn role(&self, tid: i32) -> ThreadRole {
        if let Some(&vcpu) = self.vcpu_tids.get(&tid) {
            ThreadRole::Vcpu { vcpu }
        } else if let Some(id) = self.iothread_tids.get(&tid) {
            ThreadRole::Iothread { id: id.clone() }
        } else {
            ThreadRole::Emulator
        }
    }

    /// What the plan wants for a thread of `role`.
    fn planned(&self, role: &ThreadRole) -> (CpuSet, Sched) {
        match role {
            ThreadRole::Vcpu { vcpu } => {
                let v = self
                    .plan
                    .vcpus
                    .iter()
                    .find(|p| p.vcpu == *vcpu)
                    .expect("vCPU indexes were checked against the plan");
                (v.cpus.clone(), v.sched)
            }
            ThreadRole::Iothread { .. } => (self.plan.iothread_cpus.clone(), Sched::OTHER),
            ThreadRole::Emulator => (self.plan.emulator_cpus.clone(), Sched::OTHER),
        }
    }

    fn apply(&mut self, tid: i32, role: &ThreadRole) -> Result<(), PlacementError> {
        if self.read_only {
            return Ok(());
        }
        let (cpus, sched) = self.planned(role);
        let what = match role {
            ThreadRole::Vcpu { vcpu } => format!("vCPU {vcpu}"),
            ThreadRole::Iothread { id } => format!("iothread {id}"),
            ThreadRole::Emulator => "emulator thread".to_string(),
        };
        let wrap = |source| PlacementError::Apply {
            what: what.clone(),
            tid,
            source,
        };
        if let Some(c) = &self.cgroup {
            let child = match role {
                ThreadRole::Vcpu { vcpu } => c.vcpus.get(vcpu).unwrap_or(&c.emulator),
                ThreadRole::Iothread { .. } => &c.iothreads,
                ThreadRole::Emulator => &c.emulator,
            };
            match c.group.attach(child, tid) {
                Ok(()) => {}
                // The thread exited in between.
                Err(crate::cgroup::CgroupError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    return Err(PlacementError::Cgroup {
                        what: what.clone(),
                        tid,
                        source: e,
                    })
                }
            }
        }
        sched::set_affinity(tid, &cpus_vec(&cpus)).map_err(wrap)?;
        match sched.policy {
            // SCHED_RESET_ON_FORK: a thread a realtime vCPU thread creates starts SCHED_OTHER,
            // never with the vCPU's realtime policy.
            Policy::Fifo => match sched::set_fifo_reset_on_fork(tid, u32::from(sched.priority)) {
                Err(SchedError::Syscall {
                    source: nix::Error::EPERM,
                    ..
                }) if !self.strict => {
                    self.sched_refused.insert(tid);
                }
                r => r.map_err(wrap)?,
            },
            Policy::Other => sched::set_other(tid).map_err(wrap)?,
        }
        Ok(())
    }

    /// Pins every thread as planned, in libvirt's order. Returns the number of threads placed.
    pub fn pin_all(&mut self) -> Result<usize, PlacementError> {
        let tids = self
            .procfs
            .list_tids(self.pid)
            .map_err(PlacementError::Proc)?;
        // 1. The whole process to the emulator set.
        let emulator = cpus_vec(&self.plan.emulator_cpus);
        for &tid in &tids {
            match sched::set_affinity(tid, &emulator) {
                Ok(()) => {}
                // A thread that exited in between is not an error.
                Err(SchedError::Syscall {
                    source: nix::Error::ESRCH,
                    ..
                }) => {}
                Err(source) => {
                    return Err(PlacementError::Apply {
                        what: "QEMU process".into(),
                        tid,
                        source,
                    })
                }
            }
        }
        // 2. vCPUs, 3. iothreads, 4. the rest, with scheduling.
        let mut order: Vec<(i32, ThreadRole)> = tids.iter().map(|&t| (t, self.role(t))).collect();
        order.sort_by_key(|(_, r)| match r {
            ThreadRole::Vcpu { .. } => 0,
            ThreadRole::Iothread { .. } => 1,
            ThreadRole::Emulator => 2,
        });
        for (tid, role) in order {
            match self.apply(tid, &role) {
                Ok(()) => {
                    self.placed.insert(tid);
                }
                Err(e) if e.thread_gone() && role == ThreadRole::Emulator => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.placed.len())
    }

    /// Places threads QEMU started since the last call (they belong to the emulator set).
    /// Returns how many were new.
    pub fn pin_new_threads(&mut self) -> Result<usize, PlacementError> {
        let tids = match self.procfs.list_tids(self.pid) {
            Ok(t) => t,
            // QEMU has exited: nothing left to place.
            Err(e) if e.is_gone() => return Ok(0),
            Err(e) => return Err(PlacementError::Proc(e)),
        };
        let mut new = 0;
        for tid in tids {
            if self.placed.contains(&tid) {
                continue;
            }
            let role = self.role(tid);
            let seen = Instant::now();
            let before = self.procfs.read_thread(self.pid, tid).ok();
            match self.apply(tid, &role) {
                Ok(()) => {
                    self.placed.insert(tid);
                    new += 1;
                    if let Some(info) = before {
                        let cpus_when_seen: CpuSet = info.cpus_allowed.iter().copied().collect();
                        let in_place = cpus_when_seen == self.planned(&role).0;
                        self.new_threads.push(NewThread {
                            tid,
                            comm: info.comm,
                            seen_ms: self.released.map_or(0, |r| {
                                seen.saturating_duration_since(r).as_millis() as u64
                            }),
                            cpus_when_seen,
                            placed_after_us: if in_place {
                                0
                            } else {
                                seen.elapsed().as_micros() as u64
                            },
                        });
                    }
                }
                Err(e) if e.thread_gone() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(new)
    }

    /// Keeps the guest's threads in `group` from now on: creates a child group per thread kind
    /// with the plan's CPUs and moves every thread already placed into its kind's.
    pub fn use_cgroup(&mut self, mut group: GuestCgroup) -> Result<(), PlacementError> {
        let err = |e| PlacementError::Cgroup {
            what: "the guest's cpuset cgroup".into(),
            tid: self.pid,
            source: e,
        };
        let emulator = group
            .child("emulator", &self.plan.emulator_cpus)
            .map_err(err)?;
        let iothreads = group
            .child("iothreads", &self.plan.iothread_cpus)
            .map_err(err)?;
        let mut vcpus = BTreeMap::new();
        for v in &self.plan.vcpus {
            vcpus.insert(
                v.vcpu,
                group
                    .child(&format!("vcpu{}", v.vcpu), &v.cpus)
                    .map_err(err)?,
            );
        }
        group.adopt_process(self.pid).map_err(err)?;
        self.cgroup = Some(Cgroups {
            group,
            emulator,
            vcpus,
            iothreads,
        });
        let placed: Vec<i32> = self.placed.iter().copied().collect();
        for tid in placed {
            let role = self.role(tid);
            match self.apply(tid, &role) {
                Err(e) if !e.thread_gone() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Every host CPU the plan puts one of the guest's threads on.
    pub fn planned_cpus(&self) -> CpuSet {
        self.plan.all_cpus()
    }

    /// The guest's cgroup directory, when it has one.
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(|c| c.group.dir())
    }

    /// Marks the moment the guest was released: new threads are timed from it.
    pub fn released(&mut self) {
        self.released = Some(Instant::now());
    }

    /// Threads that appeared after pinning, as first seen.
    pub fn new_threads(&self) -> &[NewThread] {
        &self.new_threads
    }

    /// Reads every thread back from `/proc`.
    pub fn threads(&self) -> Result<Vec<ThreadInfo>, PlacementError> {
        self.procfs
            .read_threads(self.pid)
            .map_err(PlacementError::Proc)
    }

    /// Every thread's observed placement next to its planned one.
    pub fn observe(&self) -> Result<Vec<ObservedThread>, PlacementError> {
        Ok(self
            .threads()?
            .into_iter()
            .map(|t| {
                let role = self.role(t.tid);
                let (planned_cpus, planned_sched) = self.planned(&role);
                ObservedThread {
                    tid: t.tid,
                    comm: t.comm,
                    role,
                    cpus: t.cpus_allowed.iter().copied().collect(),
                    policy: t.policy,
                    priority: u8::try_from(t.rt_priority).unwrap_or(u8::MAX),
                    planned_cpus,
                    planned_sched,
                }
            })
            .collect())
    }
}

/// Samples vCPU threads during a measurement: context switches from start to end and the CPUs
/// each was seen running on.
#[derive(Debug, Default)]
pub struct VcpuSampler {
    start: BTreeMap<i32, ThreadInfo>,
    last: BTreeMap<i32, ThreadInfo>,
    seen: BTreeMap<i32, (CpuSet, u64)>,
}

impl VcpuSampler {
    /// Takes one sample of the vCPU threads among `threads`.
    pub fn sample(&mut self, threads: &[ThreadInfo], vcpu_tids: &BTreeMap<u32, i32>) {
        for t in threads {
            if !vcpu_tids.values().any(|&v| v == t.tid) {
                continue;
            }
            self.start.entry(t.tid).or_insert_with(|| t.clone());
            let e = self.seen.entry(t.tid).or_default();
            e.0.insert(t.last_cpu);
            e.1 += 1;
            self.last.insert(t.tid, t.clone());
        }
    }

    /// Deltas between the first and last sample.
    pub fn finish(
        &self,
        vcpu_tids: &BTreeMap<u32, i32>,
        plan: &GuestPlacement,
    ) -> Vec<VcpuThreadStats> {
        vcpu_tids
            .iter()
            .filter_map(|(&vcpu, &tid)| {
                let a = self.start.get(&tid)?;
                let b = self.last.get(&tid)?;
                let (cpus_seen, samples) = self.seen.get(&tid).cloned().unwrap_or_default();
                Some(VcpuThreadStats {
                    vcpu,
                    tid,
                    realtime: plan.vcpus.iter().any(|v| v.vcpu == vcpu && v.realtime),
                    voluntary_ctxt_switches: b
                        .voluntary_ctxt_switches
                        .saturating_sub(a.voluntary_ctxt_switches),
                    nonvoluntary_ctxt_switches: b
                        .nonvoluntary_ctxt_switches
                        .saturating_sub(a.nonvoluntary_ctxt_switches),
                    migrations: match (a.nr_migrations, b.nr_migrations) {
                        (Some(x), Some(y)) => Some(y.saturating_sub(x)),
                        _ => None,
                    },
                    cpus_seen,
                    samples,
                })
            })
            .collect()
    }
}
