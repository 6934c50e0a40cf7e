//! Steal time: how long the hypervisor ran something else while a host CPU of ours wanted to
//! run. pinlat hosts are often VMs themselves (cloud labs, this development machine); time the
//! hypervisor takes from an RT pCPU shows up as latency that no layout can fix, so every run
//! and every calibration trial records it.
//!
//! Source: the per-CPU `steal` column (the 8th value) of `/proc/stat`, in `USER_HZ` ticks. The
//! kernel accumulates it in ns and prints whole ticks, so a delta is exact to one tick (10 ms
//! at the usual `USER_HZ` of 100).

use std::collections::BTreeMap;

/// Steal time per CPU at one instant, ticks of `USER_HZ`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StealSnapshot {
    ticks: BTreeMap<u32, u64>,
}

impl StealSnapshot {
    /// Parses `/proc/stat` text; CPUs whose line is malformed are left out.
    pub fn parse(text: &str) -> Self {
        let ticks = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_ascii_whitespace();
                let cpu: u32 = f.next()?.strip_prefix("cpu")?.parse().ok()?;
                let steal: u64 = f.nth(7)?.parse().ok()?;
                Some((cpu, steal))
            })
            .collect();
        StealSnapshot { ticks }
    }

    /// Reads `/proc/stat` now; `None` when it cannot be read.
    pub fn now() -> Option<Self> {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .map(|t| Self::parse(&t))
    }

    /// Steal time of `cpu` between `earlier` and `self`, ns (`None` if either lacks the CPU).
    pub fn since(&self, earlier: &StealSnapshot, cpu: u32) -> Option<u64> {
        let b = self.ticks.get(&cpu)?;
        let a = earlier.ticks.get(&cpu)?;
        Some(b.saturating_sub(*a).saturating_mul(ns_per_tick()))
    }

    /// Steal time of every CPU present in both snapshots, ns.
    pub fn all_since(&self, earlier: &StealSnapshot) -> BTreeMap<u32, u64> {
        self.ticks
            .keys()
            .filter_map(|&c| Some((c, self.since(earlier, c)?)))
            .collect()
    }
}

/// Nanoseconds per `USER_HZ` tick.
pub fn ns_per_tick() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  40516 0 5381 53229 482 0 57 464 0 0\n\
        cpu0 24113 0 2920 22600 129 0 8 205 0 0\n\
        cpu1 16402 0 2461 30629 353 0 48 258 0 0\n\
        intr 1234 0\n";
    const STAT_B: &str = "cpu  40516 0 5381 53229 482 0 57 467 0 0\n\
        cpu0 24113 0 2920 22600 129 0 8 205 0 0\n\
        cpu1 16402 0 2461 30629 353 0 48 261 0 0\n\
        cpu2 broken\n";

    #[test]
    fn steal_is_the_eighth_value_per_cpu() {
        let a = StealSnapshot::parse(STAT_A);
        let b = StealSnapshot::parse(STAT_B);
        let tick = ns_per_tick();
        assert_eq!(b.since(&a, 1), Some(3 * tick));
        assert_eq!(b.since(&a, 0), Some(0));
        assert_eq!(b.since(&a, 2), None);
        assert_eq!(b.all_since(&a).len(), 2);
    }

    #[test]
    fn this_host_has_a_stat_file() {
        let s = StealSnapshot::now().expect("/proc/stat");
        assert!(s.since(&s, 0).is_some());
    }
}
