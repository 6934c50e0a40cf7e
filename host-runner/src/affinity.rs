//! Applies a placement to host threads: CPU affinity and scheduling policy.
//!
//! These are the real syscalls (`sched_setaffinity(2)`, `sched_setscheduler(2)`) that libvirt
//! issues for `<vcpupin>`, `<emulatorpin>`, `<iothreadpin>` and `<vcpusched>`. They act on one
//! thread id; the caller pins in libvirt's order (whole process to the emulator set, then each
//! vCPU thread, then iothreads, then scheduling) and verifies the result with
//! [`crate::procfs`], never assuming a call took effect.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet as NixCpuSet};
use nix::unistd::Pid;

use crate::procfs::SchedPolicy;

/// Errors applying affinity or scheduling to a thread.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    /// The CPU list was empty: the kernel would reject it, and it is always a planning bug.
    #[error("Empty CPU list for thread {tid}")]
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
    #[error("{call} on thread {tid} failed")]
    Syscall {
        /// The call, e.g. `sched_setaffinity`.
        call: &'static str,
        /// The thread.
        tid: i32,
        /// The errno.
        #[source]
        source: nix::Error,
    },
}

/// Restricts thread `tid` to the given host CPUs (`sched_setaffinity`).
pub fn set_affinity(tid: i32, cpus: &[u32]) -> Result<(), AffinityError> {
    if cpus.is_empty() {
        return Err(AffinityError::EmptyCpuList { tid });
    }
    let mut set = NixCpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize)
            .map_err(|_| AffinityError::CpuOutOfRange {
                cpu,
                max: NixCpuSet::count() - 1,
            })?;
    }
    sched_setaffinity(Pid::from_raw(tid), &set).map_err(|source| AffinityError::Syscall {
        call: "sched_setaffinity",
        tid,
        source,
    })
}

/// The host CPUs thread `tid` may run on (`sched_getaffinity`), ascending.
pub fn get_affinity(tid: i32) -> Result<Vec<u32>, AffinityError> {
    let set = sched_getaffinity(Pid::from_raw(tid)).map_err(|source| AffinityError::Syscall {
        call: "sched_getaffinity",
        tid,
        source,
    })?;
    Ok((0..NixCpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .map(|c| c as u32)
        .collect())
}

/// Puts thread `tid` under `SCHED_FIFO` at realtime priority `prio` (1..=99; nova's default
/// for RT vCPUs is 1).
pub fn set_fifo(tid: i32, prio: u32) -> Result<(), AffinityError> {
    // SAFETY: sched_get_priority_{min,max} take a plain integer and touch no memory.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_FIFO),
            libc::sched_get_priority_max(libc::SCHED_FIFO),
        )
    };
    let in_range = i32::try_from(prio).is_ok_and(|p| p >= min && p <= max);
    if !in_range {
        return Err(AffinityError::BadPriority { prio, min, max });
    }
    set_scheduler(tid, libc::SCHED_FIFO, prio as i32)
}

/// Puts thread `tid` back under `SCHED_OTHER` (priority 0).
pub fn set_other(tid: i32) -> Result<(), AffinityError> {
    set_scheduler(tid, libc::SCHED_OTHER, 0)
}

/// Reads thread `tid`'s policy and realtime priority (`sched_getscheduler`, `sched_getparam`).
pub fn get_scheduler(tid: i32) -> Result<(SchedPolicy, u32), AffinityError> {
    let fail = |call| move |source| AffinityError::Syscall { call, tid, source };
    // SAFETY: sched_getscheduler takes a pid by value and touches no memory.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(fail("sched_getscheduler")(nix::Error::last()));
    }
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param that outlives the call.
    let rc = unsafe { libc::sched_getparam(tid, &mut param) };
    if rc < 0 {
        return Err(fail("sched_getparam")(nix::Error::last()));
    }
    Ok((
        SchedPolicy::from_raw(policy as u32),
        param.sched_priority.max(0) as u32,
    ))
}

fn set_scheduler(tid: i32, policy: libc::c_int, prio: i32) -> Result<(), AffinityError> {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; the kernel only reads it.
    let rc = unsafe { libc::sched_setscheduler(tid, policy, &param) };
    if rc < 0 {
        return Err(AffinityError::Syscall {
            call: "sched_setscheduler",
            tid,
            source: nix::Error::last(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::Procfs;

    fn gettid() -> i32 {
        nix::unistd::gettid().as_raw()
    }

    #[test]
    fn affinity_roundtrip_on_own_thread() {
        std::thread::spawn(|| {
            let tid = gettid();
            let all = get_affinity(tid).unwrap();
            let one = vec![all[0]];
            set_affinity(tid, &one).unwrap();
            assert_eq!(get_affinity(tid).unwrap(), one);
            let pid = std::process::id() as i32;
            let seen = Procfs::default().read_thread(pid, tid).unwrap();
            assert_eq!(seen.cpus_allowed, one);
            assert_eq!(seen.last_cpu, one[0]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn bad_inputs_are_errors() {
        let tid = gettid();
        assert!(matches!(
            set_affinity(tid, &[]),
            Err(AffinityError::EmptyCpuList { .. })
        ));
        assert!(matches!(
            set_affinity(tid, &[100_000]),
            Err(AffinityError::CpuOutOfRange { .. })
        ));
        assert!(matches!(
            set_fifo(tid, 0),
            Err(AffinityError::BadPriority { .. })
        ));
        assert!(matches!(
            set_fifo(tid, 100),
            Err(AffinityError::BadPriority { .. })
        ));
        // A tid that cannot exist (above pid_max's hard limit of 2^22).
        let err = set_affinity(5_000_000, &[0]).unwrap_err();
        assert!(matches!(
            err,
            AffinityError::Syscall {
                source: nix::Error::ESRCH,
                ..
            }
        ));
    }

    #[test]
    fn fifo_roundtrip_when_permitted() {
        std::thread::spawn(|| {
            let tid = gettid();
            match set_fifo(tid, 1) {
                Ok(()) => {
                    assert_eq!(get_scheduler(tid).unwrap(), (SchedPolicy::Fifo, 1));
                    let pid = std::process::id() as i32;
                    let seen = Procfs::default().read_thread(pid, tid).unwrap();
                    assert_eq!((seen.policy, seen.rt_priority), (SchedPolicy::Fifo, 1));
                    set_other(tid).unwrap();
                    assert_eq!(get_scheduler(tid).unwrap(), (SchedPolicy::Other, 0));
                }
                // Unprivileged test runs cannot raise priority; that is still a clean error.
                Err(AffinityError::Syscall { source, .. }) => {
                    assert_eq!(source, nix::Error::EPERM)
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
    }
}
