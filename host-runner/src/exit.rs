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
