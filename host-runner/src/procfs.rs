//! Observed placement of a process's threads, read from `/proc/<pid>/task/<tid>/`.
//!
//! pinlat never trusts that a pin it asked for took effect: after pinning and again at the end
//! of a run it reads every QEMU thread's `Cpus_allowed_list`, scheduling policy and priority
//! back from procfs (docs/architecture.md "Data flow"). The field layouts are the kernel's
//! (`Documentation/filesystems/proc.rst`, `man 5 proc`): `status` is `Key:\tvalue` lines and
//! `stat` is space-separated fields after the `(comm)` in parentheses, where fields 14 and 15
//! are the user and system CPU time in clock ticks, 39 the CPU last run on, 40 the RT priority
//! and 41 the policy. `schedstat` (`Documentation/scheduler/sched-stats.rst`) is three numbers:
//! time on a CPU (ns), time waiting on a runqueue (ns), timeslices run. The process's own
//! `/proc/<pid>/stat` sums the CPU time of all its threads, dead ones included; a task's
//! `schedstat` is that task's alone.
//!
//! Every parser takes `&str` so it can be tested on fixture text; the readers only add I/O.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pinlat::cpuset::CpuSet;
use serde::{Deserialize, Serialize};

/// Errors reading or parsing procfs files.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A procfs file could not be read (the thread may have exited).
    #[error("Cannot read {path}")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A field was missing or malformed.
    #[error("Malformed {file}: {what}")]
    Parse {
        /// Which file kind (`status`, `stat`, `sched`, a CPU list).
        file: &'static str,
        /// What was wrong.
        what: String,
    },
}

impl ProcError {
    /// True when the error means the thread (or process) no longer exists.
    pub fn is_gone(&self) -> bool {
        matches!(self, ProcError::Read { source, .. }
            if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH))
    }
}

/// A Linux scheduling policy as the kernel numbers it: the result schema's own type, so what
/// `/proc` says is recorded without translation.
pub use pinlat::result::HostPolicy as SchedPolicy;

/// The fields pinlat uses from `/proc/<pid>/task/<tid>/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFields {
    /// `Name:` — the thread's comm (at most 15 bytes, e.g. `CPU 0/TCG`).
    pub name: String,
    /// `Cpus_allowed_list:` exactly as the kernel printed it, e.g. `0-1`.
    pub cpus_allowed_list: String,
    /// `Cpus_allowed_list:` expanded, ascending.
    pub cpus_allowed: Vec<u32>,
    /// `voluntary_ctxt_switches:` — times the thread blocked, since it started.
    pub voluntary_ctxt_switches: u64,
    /// `nonvoluntary_ctxt_switches:` — times the thread was preempted, since it started.
    pub nonvoluntary_ctxt_switches: u64,
}

/// The fields pinlat uses from `/proc/<pid>/task/<tid>/stat` (and `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    /// Field 14: user CPU time, clock ticks ([`clock_ticks_per_s`]).
    pub utime_ticks: u64,
    /// Field 15: system CPU time, clock ticks.
    pub stime_ticks: u64,
    /// Field 39: the CPU the thread last ran on.
    pub last_cpu: u32,
    /// Field 40: realtime priority (1..=99 for FIFO/RR, 0 otherwise).
    pub rt_priority: u32,
    /// Field 41: scheduling policy.
    pub policy: SchedPolicy,
}

/// Everything pinlat records about one thread at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// Host thread id.
    pub tid: i32,
    /// The thread's comm, e.g. `CPU 1/TCG`, `IO io0`, `qemu-system-x86`, `call_rcu`, `worker`.
    pub comm: String,
    /// Allowed CPUs as the kernel prints them (`0-1,3`).
    pub cpus_allowed_list: String,
    /// Allowed CPUs, expanded and ascending.
    pub cpus_allowed: Vec<u32>,
    /// Voluntary context switches since the thread started.
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (preemptions) since the thread started.
    pub nonvoluntary_ctxt_switches: u64,
    /// Scheduling policy.
    pub policy: SchedPolicy,
    /// Realtime priority (0 for non-RT policies).
    pub rt_priority: u32,
    /// The CPU the thread last ran on.
    pub last_cpu: u32,
    /// `se.nr_migrations` from `sched` (CPU migrations since start), when the kernel has
    /// `CONFIG_SCHED_DEBUG`.
    pub nr_migrations: Option<u64>,
    /// User CPU time since the thread started, clock ticks.
    #[serde(default)]
    pub utime_ticks: u64,
    /// System CPU time since the thread started, clock ticks.
    #[serde(default)]
    pub stime_ticks: u64,
    /// `schedstat`, when the kernel has it (`CONFIG_SCHED_INFO`).
    #[serde(default)]
    pub schedstat: Option<SchedStat>,
}

/// `/proc/<pid>/task/<tid>/schedstat`: the thread's time on and waiting for a CPU since it
/// started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedStat {
    /// Time spent on a CPU, ns.
    pub run_ns: u64,
    /// Time spent runnable on a runqueue, waiting for a CPU, ns.
    pub wait_ns: u64,
    /// Timeslices run (times scheduled onto a CPU).
    pub timeslices: u64,
}

/// The clock ticks per second of `utime`/`stime` (`sysconf(_SC_CLK_TCK)`, `USER_HZ`; 100
/// when it cannot be read, the value of every Linux architecture pinlat runs on).
pub fn clock_ticks_per_s() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 100,
    }
}

/// Clock ticks to ns at `hz` ticks per second.
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1))).min(u128::from(u64::MAX)) as u64
}

/// Parses a `schedstat` file: `run_ns wait_ns timeslices`.
pub fn parse_schedstat(text: &str) -> Result<SchedStat, ProcError> {
    let bad = |what: String| ProcError::Parse {
        file: "schedstat",
        what,
    };
    let mut it = text.split_ascii_whitespace();
    let mut next = |name: &str| -> Result<u64, ProcError> {
        let raw = it.next().ok_or_else(|| bad(format!("no {name}")))?;
        raw.parse()
            .map_err(|_| bad(format!("{name} \"{raw}\" is not a number")))
    };
    Ok(SchedStat {
        run_ns: next("run time")?,
        wait_ns: next("wait time")?,
        timeslices: next("timeslices")?,
    })
}

/// Parses a kernel CPU list (`0-3,8,10-11`; empty means no CPU), a subset of the libvirt
/// syntax [`CpuSet::parse`] reads; returns the CPUs ascending.
pub fn parse_kernel_cpu_list(text: &str) -> Result<Vec<u32>, ProcError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.contains('^') {
        return Err(ProcError::Parse {
            file: "CPU list",
            what: format!("\"{text}\": exclusions are not kernel syntax"),
        });
    }
    CpuSet::parse(text)
        .map(|set| set.iter().collect())
        .map_err(|e| ProcError::Parse {
            file: "CPU list",
            what: e.to_string(),
        })
}

/// Parses the text of a `/proc/<pid>/task/<tid>/status` file.
pub fn parse_status(text: &str) -> Result<StatusFields, ProcError> {
    let mut name = None;
    let mut list = None;
    let mut vol = None;
    let mut nonvol = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = Some(value.to_string()),
            "Cpus_allowed_list" => list = Some(value.to_string()),
            "voluntary_ctxt_switches" => vol = Some(parse_u64("status", key, value)?),
            "nonvoluntary_ctxt_switches" => nonvol = Some(parse_u64("status", key, value)?),
            _ => {}
        }
    }
    let missing = |key: &str| ProcError::Parse {
        file: "status",
        what: format!("no {key} line"),
    };
    let cpus_allowed_list = list.ok_or_else(|| missing("Cpus_allowed_list"))?;
    Ok(StatusFields {
        name: name.ok_or_else(|| missing("Name"))?,
        cpus_allowed: parse_kernel_cpu_list(&cpus_allowed_list)?,
        cpus_allowed_list,
        voluntary_ctxt_switches: vol.ok_or_else(|| missing("voluntary_ctxt_switches"))?,
        nonvoluntary_ctxt_switches: nonvol.ok_or_else(|| missing("nonvoluntary_ctxt_switches"))?,
    })
}

/// Parses the text of a `/proc/<pid>/task/<tid>/stat` file (fields 39–41).
///
/// The comm (field 2) may contain spaces and parentheses, so fields are counted from the last
/// `)`.
pub fn parse_stat(text: &str) -> Result<StatFields, ProcError> {
    let bad = |what: &str| ProcError::Parse {
        file: "stat",
        what: what.to_string(),
    };
    let close = text.rfind(')').ok_or_else(|| bad("no ')' after comm"))?;
    // Fields after ") " start at field 3, so field N is at index N - 3.
    let fields: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    let get64 = |n: usize| -> Result<u64, ProcError> {
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| bad(&format!("only {} fields, need {n}", fields.len() + 2)))?;
        raw.parse()
            .map_err(|_| bad(&format!("field {n} \"{raw}\" is not a number")))
    };
    let get = |n: usize| -> Result<u32, ProcError> {
        u32::try_from(get64(n)?).map_err(|_| bad(&format!("field {n} is out of range")))
    };
    Ok(StatFields {
        utime_ticks: get64(14)?,
        stime_ticks: get64(15)?,
        last_cpu: get(39)?,
        rt_priority: get(40)?,
        policy: SchedPolicy::from_raw(get(41)?),
    })
}

/// Parses `se.nr_migrations` from a `/proc/<pid>/task/<tid>/sched` file; `None` when absent.
pub fn parse_sched_migrations(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "se.nr_migrations")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn parse_u64(file: &'static str, key: &str, value: &str) -> Result<u64, ProcError> {
    value.parse().map_err(|_| ProcError::Parse {
        file,
        what: format!("{key} \"{value}\" is not a number"),
    })
}

fn read(path: PathBuf) -> Result<String, ProcError> {
    fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

/// The procfs root, normally `/proc`; a different root lets tests use a fixture tree.
#[derive(Debug, Clone)]
pub struct Procfs {
    root: PathBuf,
}

impl Default for Procfs {
    fn default() -> Self {
        Procfs {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Procfs {
    /// A procfs rooted at `root` (e.g. a fixture directory with `PID/task/TID/...`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Procfs { root: root.into() }
    }

    fn task_dir(&self, pid: i32) -> PathBuf {
        self.root.join(pid.to_string()).join("task")
    }

    /// Thread ids of `pid`, ascending.
    pub fn list_tids(&self, pid: i32) -> Result<Vec<i32>, ProcError> {
        let dir = self.task_dir(pid);
        let entries = fs::read_dir(&dir).map_err(|source| ProcError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut tids: Vec<i32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_unstable();
        Ok(tids)
    }

    /// Reads one thread's comm, affinity, context switches, policy, priority and last CPU.
    pub fn read_thread(&self, pid: i32, tid: i32) -> Result<ThreadInfo, ProcError> {
        let dir = self.task_dir(pid).join(tid.to_string());
        let status = parse_status(&read(dir.join("status"))?)?;
        let stat = parse_stat(&read(dir.join("stat"))?)?;
        let nr_migrations = fs::read_to_string(dir.join("sched"))
            .ok()
            .and_then(|t| parse_sched_migrations(&t));
        let comm = match fs::read_to_string(dir.join("comm")) {
            Ok(c) => c.trim_end_matches('\n').to_string(),
            Err(_) => status.name.clone(),
        };
        let schedstat = fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|t| parse_schedstat(&t).ok());
        Ok(ThreadInfo {
            tid,
            comm,
            cpus_allowed_list: status.cpus_allowed_list,
            cpus_allowed: status.cpus_allowed,
            voluntary_ctxt_switches: status.voluntary_ctxt_switches,
            nonvoluntary_ctxt_switches: status.nonvoluntary_ctxt_switches,
            policy: stat.policy,
            rt_priority: stat.rt_priority,
            last_cpu: stat.last_cpu,
            nr_migrations,
            utime_ticks: stat.utime_ticks,
            stime_ticks: stat.stime_ticks,
            schedstat,
        })
    }

    /// The whole process's user + system CPU time, clock ticks (`/proc/<pid>/stat` fields 14
    /// and 15: every thread's, including threads that have exited).
    pub fn process_cpu_ticks(&self, pid: i32) -> Result<u64, ProcError> {
        let stat = parse_stat(&read(self.root.join(pid.to_string()).join("stat"))?)?;
        Ok(stat.utime_ticks + stat.stime_ticks)
    }

    /// Reads every thread of `pid`, ascending by tid. Threads that exit between listing and
    /// reading are skipped; any other error is returned.
    pub fn read_threads(&self, pid: i32) -> Result<Vec<ThreadInfo>, ProcError> {
        let mut out = Vec::new();
        for tid in self.list_tids(pid)? {
            match self.read_thread(pid, tid) {
                Ok(info) => out.push(info),
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The root this reader uses.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tCPU 1/TCG\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5909\n\
Pid:\t5914\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed_list:\t0\n\
voluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n";

    // Field 39 = 1 (last CPU), 40 = 1 (rt prio), 41 = 1 (FIFO); comm with spaces and ')'.
    const STAT: &str = "5914 (CPU 1/TCG) x)) S 1 5909 4902 0 -1 4194560 103 0 0 0 12 3 0 0 \
-2 0 6 0 26541 3133440 383 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 -1 1 1 1 0 0 0 \
0 0 0 0 0 0 0 0\n";

    #[test]
    fn status_fields() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.name, "CPU 1/TCG");
        assert_eq!(s.cpus_allowed_list, "0-1");
        assert_eq!(s.cpus_allowed, vec![0, 1]);
        assert_eq!(s.voluntary_ctxt_switches, 1234);
        assert_eq!(s.nonvoluntary_ctxt_switches, 56);
    }

    #[test]
    fn status_missing_field_is_error() {
        let text = STATUS.replace("Cpus_allowed_list:\t0-1\n", "");
        let err = parse_status(&text).unwrap_err().to_string();
        assert!(err.contains("Cpus_allowed_list"), "{err}");
        assert!(parse_status(&STATUS.replace("\t1234", "\tx")).is_err());
    }

    #[test]
    fn stat_fields_count_from_last_paren() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.last_cpu, 1);
        assert_eq!(s.rt_priority, 1);
        assert_eq!(s.policy, SchedPolicy::Fifo);
    }

    #[test]
    fn stat_cpu_times_are_fields_14_and_15() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!((s.utime_ticks, s.stime_ticks), (12, 3));
        // A CPU time beyond u32 (a long-lived busy process) still parses.
        let big = STAT.replace(" 12 3 ", " 5000000000 3 ");
        assert_eq!(parse_stat(&big).unwrap().utime_ticks, 5_000_000_000);
        assert!(parse_stat(&STAT.replace(" 12 3 ", " x 3 ")).is_err());
    }

    #[test]
    fn schedstat_fields() {
        let s = parse_schedstat("5427907283 3605894211 1635\n").unwrap();
        assert_eq!(
            s,
            SchedStat {
                run_ns: 5_427_907_283,
                wait_ns: 3_605_894_211,
                timeslices: 1635
            }
        );
        let err = parse_schedstat("12 34").unwrap_err().to_string();
        assert!(err.contains("timeslices"), "{err}");
        assert!(parse_schedstat("12 x 3").is_err());
        assert!(parse_schedstat("").is_err());
    }

    #[test]
    fn ticks_convert_to_ns() {
        assert_eq!(ticks_to_ns(3, 100), 30_000_000);
        assert_eq!(ticks_to_ns(1, 250), 4_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
        assert!(clock_ticks_per_s() >= 100);
    }

    #[test]
    fn stat_real_self() {
        let text = fs::read_to_string("/proc/thread-self/stat").unwrap();
        let s = parse_stat(&text).unwrap();
        assert_eq!(s.policy, SchedPolicy::Other);
        assert_eq!(s.rt_priority, 0);
    }

    #[test]
    fn stat_truncated_is_error() {
        assert!(parse_stat("12 (x) S 1 2 3").is_err());
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("").is_err());
    }

    #[test]
    fn cpu_lists() {
        let list = parse_kernel_cpu_list;
        assert_eq!(list("0-3,8,10-11\n").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(list("").unwrap(), Vec::<u32>::new());
        assert_eq!(list("5").unwrap(), vec![5]);
        assert!(list("3-1").unwrap_err().to_string().contains("3-1"));
        assert!(list("a").is_err());
        assert!(list("0-3,^2").is_err());
        assert!(list("0-4294967295").is_err());
    }

    #[test]
    fn policies() {
        assert_eq!(SchedPolicy::from_raw(0), SchedPolicy::Other);
        assert_eq!(SchedPolicy::from_raw(0x4000_0001), SchedPolicy::Fifo);
        assert_eq!(SchedPolicy::from_raw(9), SchedPolicy::Unknown(9));
        assert!(SchedPolicy::Rr.is_realtime());
        assert!(!SchedPolicy::Batch.is_realtime());
    }

    #[test]
    fn migrations() {
        let text = "x (1, #threads: 1)\n---\nse.exec_start  :   1.0\nse.nr_migrations    :   17\n";
        assert_eq!(parse_sched_migrations(text), Some(17));
        assert_eq!(parse_sched_migrations("nothing"), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,300}") {
            let _ = parse_status(&text);
            let _ = parse_stat(&text);
            let _ = parse_kernel_cpu_list(&text);
            let _ = parse_sched_migrations(&text);
            let _ = parse_schedstat(&text);
        }

        /// A stat line with any comm (spaces, parentheses) still yields fields 39–41.
        #[test]
        fn stat_any_comm(comm in "[ -~]{0,15}", cpu in 0u32..4096, prio in 0u32..100, pol in 0u32..7) {
            let mut fields: Vec<String> = (3..=52).map(|_| "0".to_string()).collect();
            fields[39 - 3] = cpu.to_string();
            fields[40 - 3] = prio.to_string();
            fields[41 - 3] = pol.to_string();
            let line = format!("42 ({comm}) {}\n", fields.join(" "));
            let s = parse_stat(&line).unwrap();
            proptest::prop_assert_eq!((s.last_cpu, s.rt_priority, s.policy), (cpu, prio, SchedPolicy::from_raw(pol)));
        }
    }

    #[test]
    fn fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("42/task/43");
        fs::create_dir_all(&t).unwrap();
        fs::create_dir_all(dir.path().join("42/task/notanumber")).unwrap();
        fs::write(t.join("status"), STATUS).unwrap();
        fs::write(t.join("stat"), STAT).unwrap();
        fs::write(t.join("comm"), "CPU 1/TCG\n").unwrap();
        fs::write(t.join("schedstat"), "900 80 7\n").unwrap();
        // The process's stat: every thread's CPU time, dead ones included.
        fs::write(dir.path().join("42/stat"), STAT.replace(" 12 3 ", " 40 9 ")).unwrap();
        let p = Procfs::at(dir.path());
        assert_eq!(p.list_tids(42).unwrap(), vec![43]);
        let threads = p.read_threads(42).unwrap();
        assert_eq!(threads.len(), 1);
        assert_eq!(threads[0].comm, "CPU 1/TCG");
        assert_eq!(threads[0].policy, SchedPolicy::Fifo);
        assert_eq!(threads[0].nr_migrations, None);
        assert_eq!((threads[0].utime_ticks, threads[0].stime_ticks), (12, 3));
        assert_eq!(threads[0].schedstat.map(|s| s.run_ns), Some(900));
        assert_eq!(p.process_cpu_ticks(42).unwrap(), 49);
        assert!(p.list_tids(7).unwrap_err().is_gone());
        assert!(p.process_cpu_ticks(7).unwrap_err().is_gone());
    }

    #[test]
    fn live_self() {
        let pid = std::process::id() as i32;
        let threads = Procfs::default().read_threads(pid).unwrap();
        assert!(threads.iter().any(|t| t.tid == pid));
        let me = threads.iter().find(|t| t.tid == pid).unwrap();
        assert!(!me.cpus_allowed.is_empty());
        // This kernel keeps schedstat; a thread that has run has run for some ns.
        assert!(me.schedstat.is_some_and(|s| s.run_ns > 0), "{me:?}");
    }

    fn gettid() -> i32 {
        nix::unistd::gettid().as_raw()
    }

    /// What `pinlat::sched` sets, `/proc` reads back.
    #[test]
    fn reads_back_the_affinity_sched_set() {
        std::thread::spawn(|| {
            let tid = gettid();
            let one = vec![pinlat::sched::get_affinity(tid).unwrap()[0]];
            pinlat::sched::set_affinity(tid, &one).unwrap();
            let pid = std::process::id() as i32;
            let seen = Procfs::default().read_thread(pid, tid).unwrap();
            assert_eq!(seen.cpus_allowed, one);
            assert_eq!(seen.last_cpu, one[0]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn reads_back_the_policy_sched_set_when_permitted() {
        std::thread::spawn(|| {
            let tid = gettid();
            match pinlat::sched::set_fifo(tid, 1) {
                Ok(()) => {
                    let raw = pinlat::sched::get_scheduler(tid).unwrap();
                    assert_eq!(
                        (SchedPolicy::from_raw(raw.0), raw.1),
                        (SchedPolicy::Fifo, 1)
                    );
                    let pid = std::process::id() as i32;
                    let seen = Procfs::default().read_thread(pid, tid).unwrap();
                    assert_eq!((seen.policy, seen.rt_priority), (SchedPolicy::Fifo, 1));
                    pinlat::sched::set_other(tid).unwrap();
                    let raw = pinlat::sched::get_scheduler(tid).unwrap();
                    assert_eq!(
                        (SchedPolicy::from_raw(raw.0), raw.1),
                        (SchedPolicy::Other, 0)
                    );
                }
                // Unprivileged test runs cannot raise priority; that is still a clean error.
                Err(pinlat::sched::SchedError::Syscall { source, .. }) => {
                    assert_eq!(source, nix::Error::EPERM)
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
    }
}
