//! Finding the static guest agent and building each run's agent config from the experiment
//! config.

use std::path::{Path, PathBuf};

use pinlat::agentcfg::{AgentConfig, ClockChoice, Loads, Sysctl};
use pinlat::config::variant::Variant;
use pinlat::config::{Guest, HousekeepingLoad, Workload};

/// Environment variable naming the agent binary.
pub const AGENT_ENV: &str = "PINLAT_AGENT";

/// The agent binary was not found or is not usable as `/init`.
#[derive(Debug, thiserror::Error)]
#[error("No usable static pinlat-agent: {tried}. Build it with scripts/build-agent.sh, or set PINLAT_AGENT to a static x86-64 pinlat-agent")]
pub struct AgentNotFound {
    /// Every place looked at and why it did not do.
    pub tried: String,
}

/// Whether an ELF file has no program interpreter (`PT_INTERP`), i.e. runs without a dynamic
/// loader, as `/init` of an initramfs must.
pub fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    // ELF64, little endian, x86-64.
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) || u16_at(0x12) != Some(62) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let off = phoff as usize + i * phentsize as usize;
        u32_at(off).is_some_and(|t| t != 3)
    })
}

/// Finds the static agent: `$PINLAT_AGENT`, beside the `pinlat` executable, the cargo target
/// directory of this checkout.
pub fn find_agent() -> Result<(PathBuf, Vec<u8>), AgentNotFound> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(AGENT_ENV) {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("pinlat-agent"));
            // target/<profile>/pinlat -> target/x86_64-unknown-linux-gnu/release/pinlat-agent
            if let Some(target) = dir.parent() {
                candidates.push(target.join("x86_64-unknown-linux-gnu/release/pinlat-agent"));
            }
            // target/<profile>/deps/<test binary> in tests
            if let Some(target) = dir.parent().and_then(Path::parent) {
                candidates.push(target.join("x86_64-unknown-linux-gnu/release/pinlat-agent"));
            }
        }
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/pinlat-agent"),
    );
    let mut tried = Vec::new();
    for c in candidates {
        match std::fs::read(&c) {
            Ok(bytes) if is_static_elf(&bytes) => return Ok((c, bytes)),
            Ok(_) => tried.push(format!("{} (not a static x86-64 ELF)", c.display())),
            Err(e) => tried.push(format!("{} ({e})", c.display())),
        }
    }
    Err(AgentNotFound {
        tried: tried.join("; "),
    })
}

/// The agent config of one guest for one run.
pub fn agent_config(
    guest: &Guest,
    workload: &Workload,
    duration_ms: u64,
    interval_ms: u64,
) -> AgentConfig {
    let mut cfg = AgentConfig::new(workload.kind, guest.realtime.iter().collect(), duration_ms);
    cfg.housekeeping_cpus = guest.housekeeping().iter().collect();
    cfg.preheat_ms = workload.preheat_ms;
    cfg.report_interval_ms = interval_ms;
    cfg.timer_interval_us = workload.interval_us;
    cfg.priority = workload.priority;
    // The same rule under KVM and TCG: the TSC calibrated against CLOCK_MONOTONIC, as oslat
    // does, unless two calibrations disagree (the result records which clock was used).
    cfg.clock = ClockChoice::Auto;
    // The device loads (io, net) are the scenario's to switch on (`Disturbance::prepare_agent`).
    cfg.loads = Loads {
        syscall: workload.housekeeping.contains(&HousekeepingLoad::Syscall),
        memory: workload.housekeeping.contains(&HousekeepingLoad::Memory),
        ..Loads::default()
    };
    cfg
}

/// The sysctls the agent writes for a variant (`guest.sysctls`, in key order); none without
/// variants.
pub fn sysctls(variant: Option<&Variant>) -> Vec<Sysctl> {
    variant
        .map(|v| {
            v.guest
                .sysctls
                .iter()
                .map(|(key, value)| Sysctl {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_static_elf() {
        assert!(!is_static_elf(b"not an elf"));
        // This test binary is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
    }

    #[test]
    fn the_workload_sets_the_agents_cpus_and_loads() {
        let c = pinlat::config::Config::from_toml_str(
            "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n",
        )
        .unwrap();
        let a = agent_config(&c.guests[0], &c.workloads[0], 1000, 1000);
        assert!(a.loads.io.is_none() && a.loads.net.is_none());
        assert_eq!(a.rt_cpus, [1]);
        assert_eq!(a.housekeeping_cpus, [0]);
        a.validate().unwrap();
    }
}
