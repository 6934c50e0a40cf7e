//! The probes behind [`super::ExternalFacts`] on the live host, and the `pinlat doctor`
//! command: QEMU's version, the guest kernel search (without downloading), and one short
//! guest boot under KVM with a deadline ([`crate::accel::probe_kvm`]).

use std::path::{Path, PathBuf};

use pinlat::atomic_write::WriteError;
use pinlat::config::Config;

use super::{
    run_checks, DoctorError, DoctorReport, Env, ExternalFacts, Found, KvmProbe, SysRoot,
    DOCTOR_FILE,
};

/// A minimal config for the KVM probe when the user gave none.
const PROBE_CONFIG: &str =
    "[[guests]]\nname = \"probe\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n";

/// Runs the probes that need more than files. `kvm_probe = false` skips the guest boot.
pub fn live_external(config: Option<&Config>, kvm_probe: bool) -> ExternalFacts {
    let qemu = crate::qemu::QemuBinary::detect();
    let explicit = config
        .and_then(|c| c.guests.first())
        .and_then(|g| g.kernel.clone());
    let mut search = crate::kernel::KernelSearch::from_env(explicit);
    // The doctor reports; it does not download.
    search.allow_download = false;
    let kernel = search.find();
    let cannot = |what: &str, e: &dyn std::fmt::Display| KvmProbe::CannotProbe {
        reason: format!("no {what} to probe with: {e}"),
    };
    let kvm = if kvm_probe {
        Some(match (&qemu, &kernel, crate::agent::find_agent()) {
            (Err(e), _, _) => cannot("QEMU", e),
            (_, Err(e), _) => cannot("guest kernel", e),
            (_, _, Err(e)) => cannot("agent", &e),
            (Ok(q), Ok(k), Ok((_, agent))) => {
                let owned;
                let cfg = match config {
                    Some(c) => c,
                    None => {
                        owned = Config::from_toml_str(PROBE_CONFIG).expect("built-in config");
                        &owned
                    }
                };
                kvm_probe_fact(crate::accel::probe_kvm(q, k, &agent, cfg))
            }
        })
    } else {
        None
    };
    ExternalFacts {
        kvm_probe: kvm,
        qemu: Some(match qemu {
            Ok(q) => Found::Yes {
                what: format!("{} ({})", q.version_line, q.path.display()),
            },
            Err(e) => Found::No {
                reason: e.to_string(),
            },
        }),
        guest_kernel: Some(match kernel {
            Ok(k) => Found::Yes {
                what: format!("{} ({})", k.path.display(), k.source),
            },
            Err(e) => Found::No {
                reason: e.to_string(),
            },
        }),
        calibration: Some(super::instrument::last_calibration()),
        libvirt: None,
    }
}

/// Whether libvirt answers on `virsh`'s connection, and its versions.
pub fn libvirt_fact(virsh: &crate::libvirt::Virsh) -> Found {
    match virsh.versions() {
        Ok(v) => Found::Yes {
            what: format!(
                "libvirt {} at {} ({})",
                v.libvirt,
                virsh.uri(),
                v.hypervisor
            ),
        },
        Err(e) => Found::No {
            reason: format!("{:#} at {}", anyhow::Error::new(e), virsh.uri()),
        },
    }
}

/// The doctor's view of a KVM probe result.
pub fn kvm_probe_fact(r: Result<(), crate::accel::KvmProbeError>) -> KvmProbe {
    match r {
        Ok(()) => KvmProbe::Booted,
        Err(e) if e.is_kvm_failure() => KvmProbe::DoesNotBoot {
            reason: format!("{:#}", anyhow::Error::new(e)),
        },
        Err(e) => KvmProbe::CannotProbe {
            reason: format!("{:#}", anyhow::Error::new(e)),
        },
    }
}

/// What `pinlat doctor` was asked.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// The experiment config whose RT pCPUs to check.
    pub config: Option<PathBuf>,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Skip the KVM boot probe.
    pub no_kvm_probe: bool,
    /// Read /proc and /sys under this directory instead of `/` (a snapshot); skips all probes.
    pub root: Option<PathBuf>,
    /// Also write `doctor.json` into this directory.
    pub out: Option<PathBuf>,
    /// The launcher to check for (default: the config's `run.launcher`).
    pub launcher: Option<pinlat::kinds::LauncherKind>,
}

/// `pinlat doctor`: runs the checks, writes `doctor.json` where asked, prints the report and
/// returns it (the CLI maps it to an exit code: 0 when nothing fails, 1 when a check fails; an
/// error is 2 for a bad config, 3 when the host cannot even be read).
pub fn command(opts: &DoctorOptions) -> Result<DoctorReport, DoctorError> {
    let config = match &opts.config {
        Some(p) => Some(Config::from_file(p).map_err(|source| DoctorError::Config {
            path: p.clone(),
            source,
        })?),
        None => None,
    };
    let root = opts
        .root
        .as_deref()
        .map(SysRoot::at)
        .unwrap_or_else(SysRoot::live);
    let mut env = Env::new(root, config.as_ref())?;
    let launcher = opts
        .launcher
        .or(config.as_ref().map(|c| c.run.launcher))
        .unwrap_or_default();
    if opts.root.is_none() {
        env.external = live_external(config.as_ref(), !opts.no_kvm_probe);
        if launcher == pinlat::kinds::LauncherKind::Libvirt {
            env.external.libvirt = Some(libvirt_fact(&crate::libvirt::Virsh::from_env()));
        }
    } else if launcher == pinlat::kinds::LauncherKind::Libvirt {
        // A snapshot has no daemon to ask: its files are still checked.
        env.external.libvirt = Some(Found::No {
            reason: "not probed (snapshot)".into(),
        });
    }
    let report = run_checks(&env);
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    if let Some(dir) = &opts.out {
        write_into(dir, DOCTOR_FILE, &json)?;
    }
    if opts.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(report)
}

/// Writes `name` into `dir` (created if needed) atomically.
pub fn write_into(dir: &Path, name: &str, text: &str) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.to_path_buf(),
        source,
    })?;
    pinlat::atomic_write::write_atomic(&dir.join(name), text.as_bytes())
}
