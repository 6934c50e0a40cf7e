//! Exit codes of `pinlat`, and the error that carries one (firecracker's `FcExitCode`: no call
//! site picks a number). README "Exit codes" documents the same table.

/// What a command's outcome means to a CI gate; [`Exit::code`] is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every budget held, the config is valid, nothing failed.
    Ok,
    /// 1: a latency budget was exceeded.
    BudgetExceeded,
    /// 1: `pinlat compare` found a regression.
    Regression,
    /// 1: a `pinlat doctor` check failed.
    CheckFailed,
    /// 1: `pinlat calibrate` found the instrument missing or mis-sizing stalls.
    CalibrationFailed,
    /// 2: bad usage or config.
    Usage,
    /// 3: infrastructure failure (QEMU missing, guest never booted, kernel not found, a run
    /// failed or was interrupted).
    Infrastructure,
    /// 4: `pinlat calibrate` could not judge the instrument: the host is too noisy.
    Inconclusive,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::BudgetExceeded
            | Exit::Regression
            | Exit::CheckFailed
            | Exit::CalibrationFailed => 1,
            Exit::Usage => 2,
            Exit::Infrastructure => 3,
            Exit::Inconclusive => 4,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub exit: Exit,
    /// The error chain.
    pub error: anyhow::Error,
}

impl Failure {
    /// A usage/config error (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit: Exit::Usage,
            error: error.into(),
        }
    }

    /// An infrastructure error (exit 3).
    pub fn infra(error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit: Exit::Infrastructure,
            error: error.into(),
        }
    }
}

impl Failure {
    /// The same failure with `context` added to its error chain.
    pub fn context(self, context: impl std::fmt::Display + Send + Sync + 'static) -> Self {
        Failure {
            exit: self.exit,
            error: self.error.context(context),
        }
    }
}

/// A command-line option that cannot be used as given (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{option}: {problem}")]
pub struct OptionError {
    /// The option, e.g. `--duration`.
    pub option: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// The host cannot be used for what was asked (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A host file pinlat needs could not be read.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("Cannot install the SIGINT/SIGTERM handlers")]
    Signals(#[source] nix::Error),
    /// Writing to standard output failed.
    #[error("Cannot write to standard output")]
    Stdout(#[source] std::io::Error),
}

/// Each error type decides its exit code, so no call site picks one.
macro_rules! exit_of {
    ($($t:ty => $exit:expr),* $(,)?) => {
        $(impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure { exit: $exit, error: e.into() }
            }
        })*
    };
}

exit_of! {
    pinlat::config::ConfigError => Exit::Usage,
    pinlat::cpuset::CpuListError => Exit::Usage,
    OptionError => Exit::Usage,
    crate::prereq::VariantError => Exit::Usage,
    pinlat::report::ci::CiError => Exit::Usage,
    pinlat::report::ci::kcidb::KcidbIdError => Exit::Usage,
    HostError => Exit::Infrastructure,
    pinlat::atomic_write::WriteError => Exit::Infrastructure,
    crate::store::StoreError => Exit::Infrastructure,
    crate::qemu::QemuError => Exit::Infrastructure,
    crate::libvirt::VirshError => Exit::Infrastructure,
    crate::kernel::KernelError => Exit::Infrastructure,
    crate::agent::AgentNotFound => Exit::Infrastructure,
    crate::tuning::Held => Exit::Usage,
}

/// A variant's host knob this host cannot set, or a journal left over, is the config's or the
/// user's to fix (2); failing to journal or restore is the host's (3).
impl From<crate::tuning::PreflightError> for Failure {
    fn from(e: crate::tuning::PreflightError) -> Self {
        use crate::tuning::PreflightError;
        let exit = match &e {
            PreflightError::Knob { .. } | PreflightError::Held(_) => Exit::Usage,
            PreflightError::Infra { .. } => Exit::Infrastructure,
        };
        Failure {
            exit,
            error: e.into(),
        }
    }
}

/// `pinlat doctor --restore`: a running owner or an unreadable journal is not a state to
/// restore from (2); a knob that cannot be written back is the host's (3).
impl From<crate::tuning::recover::RecoverError> for Failure {
    fn from(e: crate::tuning::recover::RecoverError) -> Self {
        use crate::tuning::{recover::RecoverError, Held};
        let exit = match &e {
            RecoverError::Held(Held::Running { .. }) => Exit::Usage,
            RecoverError::Held(_) | RecoverError::Restore(_) => Exit::Infrastructure,
        };
        Failure {
            exit,
            error: e.into(),
        }
    }
}

/// `pinlat calibrate`'s verdict: 0 trusted, 1 failed, 4 inconclusive.
impl From<&pinlat::calibration::Verdict> for Exit {
    fn from(v: &pinlat::calibration::Verdict) -> Self {
        use pinlat::calibration::Verdict;
        match v {
            Verdict::Trusted => Exit::Ok,
            Verdict::Failed => Exit::CalibrationFailed,
            Verdict::Inconclusive { .. } => Exit::Inconclusive,
        }
    }
}

/// `pinlat doctor`'s report: 1 when a check failed, else 0 (warnings allowed).
impl From<&pinlat::schema::DoctorReport> for Exit {
    fn from(report: &pinlat::schema::DoctorReport) -> Self {
        if report.failed() {
            Exit::CheckFailed
        } else {
            Exit::Ok
        }
    }
}

/// Calibration could not run (exit 3); its machinery's errors say they happened calibrating.
impl From<crate::calibrate::CalibrateError> for Failure {
    fn from(e: crate::calibrate::CalibrateError) -> Self {
        use crate::calibrate::CalibrateError;
        let plain = matches!(
            e,
            CalibrateError::AgentNotFound(_) | CalibrateError::Write(_)
        );
        let failure = Failure {
            exit: Exit::Infrastructure,
            error: e.into(),
        };
        if plain {
            failure
        } else {
            failure.context("calibrating")
        }
    }
}

impl From<pinlat::report::ReportError> for Failure {
    fn from(e: pinlat::report::ReportError) -> Self {
        use pinlat::report::ReportError;
        let exit = match &e {
            // Not a results directory at all: a bad argument.
            ReportError::NotAResultDir(..) | ReportError::NoRuns(_, 0) => Exit::Usage,
            // Run files that are there but unreadable: the results are damaged.
            _ => Exit::Infrastructure,
        };
        Failure {
            exit,
            error: e.into(),
        }
    }
}

impl From<crate::doctor::DoctorError> for Failure {
    fn from(e: crate::doctor::DoctorError) -> Self {
        let exit = match &e {
            crate::doctor::DoctorError::Plan(_) | crate::doctor::DoctorError::Config { .. } => {
                Exit::Usage
            }
            crate::doctor::DoctorError::Online { .. } | crate::doctor::DoctorError::Write(_) => {
                Exit::Infrastructure
            }
        };
        Failure {
            exit,
            error: e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_decides_the_exit_code() {
        let usage: Failure = OptionError {
            option: "--duration",
            problem: "must be at least 1 s".into(),
        }
        .into();
        assert_eq!(usage.exit.code(), 2);
        let infra: Failure = crate::agent::AgentNotFound { tried: "x".into() }.into();
        assert_eq!(infra.exit.code(), 3);
        let unreadable: Failure = pinlat::report::ReportError::NoRuns("/r".into(), 3).into();
        assert_eq!(unreadable.exit, Exit::Infrastructure);
        let empty: Failure = pinlat::report::ReportError::NoRuns("/r".into(), 0).into();
        assert_eq!(empty.exit, Exit::Usage);
        assert_eq!(Exit::Regression.code(), Exit::CalibrationFailed.code());
        assert_eq!(Exit::Inconclusive.code(), 4);
    }

    #[test]
    fn a_commands_outcome_decides_its_exit_code() {
        use pinlat::calibration::Verdict;
        assert_eq!(Exit::from(&Verdict::Trusted).code(), 0);
        assert_eq!(Exit::from(&Verdict::Failed).code(), 1);
        let noisy = Verdict::Inconclusive { reasons: vec![] };
        assert_eq!(Exit::from(&noisy).code(), 4);
        let bad_config: Failure = crate::doctor::DoctorError::Config {
            path: "c.toml".into(),
            source: pinlat::config::Config::from_toml_str("nonsense = 1").unwrap_err(),
        }
        .into();
        assert_eq!(bad_config.exit, Exit::Usage);
        assert!(format!("{:#}", bad_config.error).starts_with("config c.toml: "));
        let calibrating: Failure = crate::calibrate::CalibrateError::InjectorPanicked.into();
        assert_eq!(calibrating.exit, Exit::Infrastructure);
        assert_eq!(
            format!("{:#}", calibrating.error),
            "calibrating: Injector thread panicked"
        );
    }
}
