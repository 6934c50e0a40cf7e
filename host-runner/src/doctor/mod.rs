//! `pinlat doctor`: is this host fit to produce realtime latency numbers?
//!
//! A latency figure is only as good as the host it was measured on. Each check reads the
//! procfs/sysfs files a realtime-virtualization engineer would look at (the list follows tuned's
//! `realtime-virtual-host` profile and the rt-tests/RHEL-RT tuning guides) and says pass, warn or
//! fail with the one-line fix. Every file is read through a [`SysRoot`], so tests run the same
//! checks on fixture snapshots of a PREEMPT_RT lab host, this machine and a misconfigured host.
//!
//! Checks that need more than files (the KVM boot probe, the QEMU version, the guest kernel
//! search) are done by the caller and handed in as [`ExternalFacts`], keeping [`run_checks`]
//! pure over its [`Env`].
//!
//! Exit status of `pinlat doctor`: 0 when no check fails (warnings allowed), 1 when one does.

mod cpus;
pub mod instrument;
mod irq;
mod kernel;
mod kvm;
mod libvirt;
mod mem;
pub mod probe;

use std::io;
use std::path::{Path, PathBuf};

use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::plan::Plan;
pub use probe::{command, live_external, DoctorOptions};
use serde::{Deserialize, Serialize};

pub use pinlat::schema::doctor::{Check, CheckStatus as Status, DoctorReport, DOCTOR_FILE};

/// Errors preparing the checks (not check failures: those are [`Status::Fail`]).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The online CPU list could not be read.
    #[error("Cannot read the online CPUs under {root}")]
    Online {
        /// The root directory.
        root: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The config cannot be placed on this host.
    #[error("The config cannot be placed on this host")]
    Plan(#[source] pinlat::plan::PlanError),
    /// The config given with `--config` is invalid.
    #[error("config {}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: pinlat::config::ConfigError,
    },
    /// `doctor.json` could not be written.
    #[error(transparent)]
    Write(#[from] pinlat::atomic_write::WriteError),
}

/// A directory standing for `/`: `/` on the live host, a fixture directory in tests. Paths
/// given to it are relative (`proc/cmdline`, `sys/devices/system/cpu/online`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    base: PathBuf,
}

impl SysRoot {
    /// The live host.
    pub fn live() -> Self {
        Self::at("/")
    }

    /// A snapshot rooted at `base`.
    pub fn at(base: impl Into<PathBuf>) -> Self {
        SysRoot { base: base.into() }
    }

    /// The root directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The full path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel.trim_start_matches('/'))
    }

    /// Reads a text file.
    pub fn read(&self, rel: &str) -> io::Result<String> {
        std::fs::read_to_string(self.path(rel))
    }

    /// Reads a text file, trimmed; `None` when it is missing or unreadable.
    pub fn read_trim(&self, rel: &str) -> Option<String> {
        self.read(rel).ok().map(|s| s.trim().to_string())
    }

    /// Reads raw bytes; `None` when missing.
    pub fn read_bytes(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    /// Reads a CPU-list file (`0-3,8`); an empty file is an empty set. `None` when missing or
    /// unparsable.
    pub fn read_cpus(&self, rel: &str) -> Option<CpuSet> {
        let t = self.read_trim(rel)?;
        if t.is_empty() {
            Some(CpuSet::new())
        } else {
            CpuSet::parse(&t).ok()
        }
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Names of the entries of directory `rel`, sorted; empty when it does not exist.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The KVM boot probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KvmProbe {
    /// A guest booted to the agent's hello under `-accel kvm`.
    Booted,
    /// KVM was tried and did not boot a guest.
    DoesNotBoot {
        /// What happened.
        reason: String,
    },
    /// The probe could not be made (no QEMU, guest kernel or agent to probe with): says
    /// nothing about KVM.
    CannotProbe {
        /// What is missing, with its fix.
        reason: String,
    },
}

/// Whether something a run needs was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Found {
    /// Found: what and where.
    Yes {
        /// E.g. QEMU's version line and path.
        what: String,
    },
    /// Not found.
    No {
        /// Why, with where it looked.
        reason: String,
    },
}

/// Results of probes that need more than reading files; `None` = not probed (the check is
/// reported as skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalFacts {
    /// The KVM boot probe.
    pub kvm_probe: Option<KvmProbe>,
    /// QEMU, by its version line.
    pub qemu: Option<Found>,
    /// The guest kernel search, by path and source.
    pub guest_kernel: Option<Found>,
    /// The last `pinlat calibrate` of this host.
    #[serde(default)]
    pub calibration: Option<instrument::CalibrationFact>,
    /// Whether libvirt answers, when the launcher is `libvirt` (`None`: not asked, and no
    /// libvirt check is made).
    #[serde(default)]
    pub libvirt: Option<Found>,
}

/// What the checks look at.
#[derive(Debug, Clone)]
pub struct Env {
    /// Where `/proc` and `/sys` are.
    pub root: SysRoot,
    /// The host pCPUs that will run RT vCPU threads.
    pub rt_cpus: CpuSet,
    /// Where [`Env::rt_cpus`] came from, for the report.
    pub rt_cpus_source: String,
    /// Probe results supplied by the caller.
    pub external: ExternalFacts,
}

impl Env {
    /// An environment for `root`, with the RT pCPUs of `config`'s layouts (every pCPU of an RT
    /// vCPU in every pinned layout), or, without a config, every online CPU but the first
    /// (the usual housekeeping CPU).
    pub fn new(root: SysRoot, config: Option<&Config>) -> Result<Env, DoctorError> {
        let online = root
            .read("sys/devices/system/cpu/online")
            .and_then(|t| {
                CpuSet::parse(t.trim())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })
            .map_err(|source| DoctorError::Online {
                root: root.base().to_path_buf(),
                source,
            })?;
        let (rt_cpus, rt_cpus_source) = match config {
            Some(cfg) => {
                let plan = Plan::new(cfg, &online).map_err(DoctorError::Plan)?;
                (
                    plan.rt_pcpus(),
                    "pCPUs of RT vCPUs in the config's pinned layouts".to_string(),
                )
            }
            None => {
                let mut rest = online.clone();
                if let Some(first) = online.first() {
                    rest = rest.difference(&CpuSet::parse(&first.to_string()).unwrap_or_default());
                }
                (
                    rest,
                    "no config: every online CPU but the first".to_string(),
                )
            }
        };
        Ok(Env {
            root,
            rt_cpus,
            rt_cpus_source,
            external: ExternalFacts::default(),
        })
    }
}

/// Runs every check on `env`. Pure over the files under `env.root` and `env.external`.
pub fn run_checks(env: &Env) -> DoctorReport {
    let mut checks = Vec::new();
    checks.extend(kernel::checks(env));
    checks.extend(irq::checks(env));
    checks.extend(cpus::checks(env));
    checks.extend(mem::checks(env));
    checks.extend(kvm::checks(env));
    checks.extend(instrument::checks(env));
    checks.extend(libvirt::checks(env));
    checks.extend(crate::tuning::recover::doctor_check(&env.root));
    DoctorReport {
        schema_version: pinlat::schema::DOCTOR_SCHEMA_VERSION,
        rt_cpus: env.rt_cpus.clone(),
        rt_cpus_source: env.rt_cpus_source.clone(),
        checks,
    }
}

/// The kernel command line's parsing rules, shared with the report's guest readiness.
pub(crate) use pinlat::host::{cmdline_value, cpu_list_value};

/// `set` as a CPU list, or `none`.
pub(crate) fn show(set: &CpuSet) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        set.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_parsing_takes_the_last_value_and_strips_flags() {
        let c = "BOOT_IMAGE=/v root=/dev/sda isolcpus=1 quiet isolcpus=managed_irq,domain,2-5";
        assert_eq!(
            cmdline_value(c, "isolcpus").unwrap(),
            "managed_irq,domain,2-5"
        );
        let online = CpuSet::parse("0-7").unwrap();
        assert_eq!(
            cpu_list_value("managed_irq,domain,2-5", &online).to_string(),
            "2-5"
        );
        assert_eq!(cpu_list_value("all", &online), online);
        assert_eq!(cmdline_value(c, "quiet").unwrap(), "");
        assert!(cmdline_value(c, "nohz_full").is_none());
    }

    #[test]
    fn worst_status_orders_fail_above_warn_above_skip() {
        let r = DoctorReport {
            schema_version: pinlat::schema::DOCTOR_SCHEMA_VERSION,
            rt_cpus: CpuSet::new(),
            rt_cpus_source: String::new(),
            checks: vec![
                Check::pass("a", ""),
                Check::warn("b", "", "x"),
                Check::skip("c", ""),
            ],
        };
        assert_eq!(r.worst(), Status::Warn);
        assert!(!r.failed());
    }
}
