//! Putting a thread on CPUs and under a scheduling policy: `sched_setaffinity(2)` and
//! `sched_setscheduler(2)`, for the host runner (QEMU's threads, its own threads, the stall
//! injector) and the guest agent (its measuring threads) alike.
//!
//! One module so that both binaries make the same calls with the same checks and the same typed
//! errors, and so that the agent links it without the host-side modules. The calls act on one
//! thread id; `0` is the calling thread. [`pin_current_to`] and [`set_current_fifo`] also read
//! back what the kernel applied — a measuring thread must never measure on the wrong CPU or at
//! the wrong policy — while the host runner verifies QEMU's threads through `/proc` itself.

use std::fmt;

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet as NixCpuSet};
use nix::unistd::Pid;

/// Who a thread id names in a message: `0` is the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tid(pub i32);

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("the calling thread"),
            t => write!(f, "thread {t}"),
        }
    }
}

/// Errors applying or checking a thread's affinity or scheduling policy.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// The CPU list was empty: the kernel would reject it, and it is always a planning bug.
    #[error("Empty CPU list for {}", Tid(*tid))]
    EmptyCpuList {
        /// The thread.
        tid: i32,
    },
    /// A CPU number beyond what a `cpu_set_t` holds.
    #[error("CPU {cpu} is beyond the largest supported CPU number {max}")]
    CpuOutOfRange {
        /// The CPU asked for.
        cpu: u32,
        /// The largest usable CPU number.
        max: usize,
    },
    /// A realtime priority outside the policy's range.
    #[error("SCHED_FIFO priority {prio} is outside {min}..={max}")]
    BadPriority {
        /// The priority asked for.
        prio: u32,
        /// The minimum for SCHED_FIFO.
        min: i32,
        /// The maximum for SCHED_FIFO.
        max: i32,
    },
    /// The syscall failed (thread gone: ESRCH; not allowed: EPERM; offline CPUs: EINVAL).
    #[error("{call} on {} failed", Tid(*tid))]
    Syscall {
        /// The call, e.g. `sched_setaffinity`.
        call: &'static str,
        /// The thread.
        tid: i32,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The affinity was accepted but reads back different.
    #[error("Affinity of {} reads back as CPUs {got:?}, not {wanted:?}", Tid(*tid))]
    AffinityNotApplied {
        /// The thread.
        tid: i32,
        /// The CPUs asked for.
        wanted: Vec<u32>,
        /// The CPUs the kernel reports.
        got: Vec<u32>,
    },
    /// The calling thread, pinned to one CPU, runs on another.
    #[error("Thread pinned to CPU {cpu} is running on CPU {running_on}")]
    WrongCpu {
        /// The CPU it was pinned to.
        cpu: u32,
        /// The CPU `sched_getcpu` reports.
        running_on: u32,
    },
    /// SCHED_FIFO was accepted but the policy reads back different.
    #[error("SCHED_FIFO priority {prio} was accepted but the policy of {} reads back as {policy}", Tid(*tid))]
    PolicyNotApplied {
        /// The thread.
        tid: i32,
        /// The priority asked for.
        prio: u32,
        /// The `SCHED_*` number read back.
        policy: u32,
    },
}

fn syscall(call: &'static str, tid: i32) -> impl FnOnce(nix::Error) -> SchedError {
    move |source| SchedError::Syscall { call, tid, source }
}

/// Restricts thread `tid` to the given CPUs (`sched_setaffinity`).
pub fn set_affinity(tid: i32, cpus: &[u32]) -> Result<(), SchedError> {
    if cpus.is_empty() {
        return Err(SchedError::EmptyCpuList { tid });
    }
    let mut set = NixCpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize)
            .map_err(|_| SchedError::CpuOutOfRange {
                cpu,
                max: NixCpuSet::count() - 1,
            })?;
    }
    sched_setaffinity(Pid::from_raw(tid), &set).map_err(syscall("sched_setaffinity", tid))
}

/// The CPUs thread `tid` may run on (`sched_getaffinity`), ascending.
pub fn get_affinity(tid: i32) -> Result<Vec<u32>, SchedError> {
    let set = sched_getaffinity(Pid::from_raw(tid)).map_err(syscall("sched_getaffinity", tid))?;
    Ok((0..NixCpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .map(|c| c as u32)
        .collect())
}

/// The CPU the calling thread is running on now (`sched_getcpu`).
pub fn current_cpu() -> Result<u32, SchedError> {
    let cpu = sched_getcpu().map_err(syscall("sched_getcpu", 0))?;
    Ok(cpu as u32)
}

/// Error unless the calling thread is running on `cpu` now.
pub fn check_on(cpu: u32) -> Result<(), SchedError> {
    match current_cpu()? {
        on if on == cpu => Ok(()),
        running_on => Err(SchedError::WrongCpu { cpu, running_on }),
    }
}

/// Pins the calling thread to exactly `cpu`, then checks that the affinity reads back as that
/// one CPU and that the thread is running there.
pub fn pin_current_to(cpu: u32) -> Result<(), SchedError> {
    set_affinity(0, &[cpu])?;
    let got = get_affinity(0)?;
    if got != [cpu] {
        return Err(SchedError::AffinityNotApplied {
            tid: 0,
            wanted: vec![cpu],
            got,
        });
    }
    check_on(cpu)
}

/// Error unless `prio` is a valid `SCHED_FIFO` priority on this kernel (1..=99).
fn check_fifo_prio(prio: u32) -> Result<i32, SchedError> {
    // SAFETY: sched_get_priority_{min,max} take a plain integer and touch no memory.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_FIFO),
            libc::sched_get_priority_max(libc::SCHED_FIFO),
        )
    };
    match i32::try_from(prio) {
        Ok(p) if p >= min && p <= max => Ok(p),
        _ => Err(SchedError::BadPriority { prio, min, max }),
    }
}

/// Puts thread `tid` under `SCHED_FIFO` at realtime priority `prio` (1..=99; nova's default
/// for RT vCPUs is 1).
pub fn set_fifo(tid: i32, prio: u32) -> Result<(), SchedError> {
    set_scheduler(tid, libc::SCHED_FIFO, check_fifo_prio(prio)?)
}

/// Puts thread `tid` under `SCHED_FIFO` at `prio` with `SCHED_RESET_ON_FORK`: the threads it
/// creates start `SCHED_OTHER` instead of inheriting its realtime policy.
pub fn set_fifo_reset_on_fork(tid: i32, prio: u32) -> Result<(), SchedError> {
    let prio = check_fifo_prio(prio)?;
    set_scheduler(tid, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, prio)
}

/// Puts the calling thread under `SCHED_FIFO` at `prio` and checks the policy reads back so.
pub fn set_current_fifo(prio: u32) -> Result<(), SchedError> {
    set_fifo(0, prio)?;
    match get_scheduler(0)? {
        (policy, _) if policy == libc::SCHED_FIFO as u32 => Ok(()),
        (policy, _) => Err(SchedError::PolicyNotApplied {
            tid: 0,
            prio,
            policy,
        }),
    }
}

/// Puts thread `tid` back under `SCHED_OTHER` (priority 0).
pub fn set_other(tid: i32) -> Result<(), SchedError> {
    set_scheduler(tid, libc::SCHED_OTHER, 0)
}

/// Thread `tid`'s policy as a `SCHED_*` number of `<sched.h>` (the `SCHED_RESET_ON_FORK` bit
/// cleared) and its realtime priority (0 for non-realtime policies), from
/// `sched_getscheduler` and `sched_getparam`.
pub fn get_scheduler(tid: i32) -> Result<(u32, u32), SchedError> {
    // SAFETY: sched_getscheduler takes a pid by value and touches no memory.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(syscall("sched_getscheduler", tid)(nix::Error::last()));
    }
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param that outlives the call.
    let rc = unsafe { libc::sched_getparam(tid, &mut param) };
    if rc < 0 {
        return Err(syscall("sched_getparam", tid)(nix::Error::last()));
    }
    Ok((
        policy as u32 & !(libc::SCHED_RESET_ON_FORK as u32),
        param.sched_priority.max(0) as u32,
    ))
}

fn set_scheduler(tid: i32, policy: libc::c_int, prio: i32) -> Result<(), SchedError> {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; the kernel only reads it.
    let rc = unsafe { libc::sched_setscheduler(tid, policy, &param) };
    if rc < 0 {
        return Err(syscall("sched_setscheduler", tid)(nix::Error::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gettid() -> i32 {
        nix::unistd::gettid().as_raw()
    }

    #[test]
    fn affinity_round_trip_and_pinning_are_verified() {
        std::thread::spawn(|| {
            let tid = gettid();
            let all = get_affinity(tid).unwrap();
            let last = *all.last().unwrap();
            set_affinity(tid, &[all[0]]).unwrap();
            assert_eq!(get_affinity(0).unwrap(), [all[0]]);
            pin_current_to(last).unwrap();
            assert_eq!(current_cpu().unwrap(), last);
            assert!(check_on(last).is_ok());
            assert!(matches!(
                pin_current_to(100_000),
                Err(SchedError::CpuOutOfRange { cpu: 100_000, .. })
            ));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn bad_inputs_are_errors() {
        let tid = gettid();
        assert!(matches!(
            set_affinity(tid, &[]),
            Err(SchedError::EmptyCpuList { .. })
        ));
        assert!(matches!(
            set_affinity(tid, &[100_000]),
            Err(SchedError::CpuOutOfRange { .. })
        ));
        assert!(matches!(
            set_fifo(tid, 0),
            Err(SchedError::BadPriority { .. })
        ));
        assert!(matches!(
            set_fifo(tid, 100),
            Err(SchedError::BadPriority { .. })
        ));
        // A tid that cannot exist (above pid_max's hard limit of 2^22).
        let err = set_affinity(5_000_000, &[0]).unwrap_err();
        assert!(matches!(
            err,
            SchedError::Syscall {
                source: nix::Error::ESRCH,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "sched_setaffinity on thread 5000000 failed"
        );
        assert_eq!(
            SchedError::EmptyCpuList { tid: 0 }.to_string(),
            "Empty CPU list for the calling thread"
        );
    }

    #[test]
    fn fifo_round_trip_when_permitted() {
        std::thread::spawn(|| {
            let tid = gettid();
            let fifo = libc::SCHED_FIFO as u32;
            match set_current_fifo(1) {
                Ok(()) => {
                    assert_eq!(get_scheduler(tid).unwrap(), (fifo, 1));
                    set_other(0).unwrap();
                    assert_eq!(get_scheduler(tid).unwrap(), (libc::SCHED_OTHER as u32, 0));
                }
                // Unprivileged test runs cannot raise priority; that is still a clean error.
                Err(SchedError::Syscall { source, .. }) => {
                    assert_eq!(source, nix::Error::EPERM)
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
    }

    /// A thread that a SCHED_FIFO thread creates must not inherit its policy (issue 11: a
    /// thread a realtime vCPU spawned ran SCHED_FIFO on the RT pCPU until the next placement
    /// tick). The same thread spawned under plain SCHED_FIFO does inherit it: what the flag
    /// changes.
    #[test]
    fn threads_created_under_reset_on_fork_start_sched_other() {
        let child_policy = || {
            std::thread::spawn(|| get_scheduler(0).unwrap().0)
                .join()
                .unwrap()
        };
        std::thread::spawn(move || {
            let fifo = libc::SCHED_FIFO as u32;
            match set_fifo(0, 1) {
                Ok(()) => {
                    assert_eq!(child_policy(), fifo, "plain SCHED_FIFO is inherited");
                    set_fifo_reset_on_fork(0, 1).unwrap();
                    assert_eq!(get_scheduler(0).unwrap(), (fifo, 1));
                    assert_eq!(child_policy(), libc::SCHED_OTHER as u32);
                    set_other(0).unwrap();
                }
                Err(SchedError::Syscall { source, .. }) => {
                    assert_eq!(
                        source,
                        nix::Error::EPERM,
                        "only an unprivileged run may skip"
                    )
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
    }
}
