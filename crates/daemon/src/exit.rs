//! Exit codes of every Outpost daemon, documented in each daemon's `--help`.

/// How a daemon process ends. The numbers follow `sysexits.h` where one fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: stopped cleanly after SIGTERM/SIGINT, or printed what was asked.
    Ok,
    /// 1: failed while running (a listener or the store broke).
    Failure,
    /// 2: the command line is wrong (reported by clap).
    Usage,
    /// 74: an I/O error at start-up (socket, state directory, key files).
    IoError,
    /// 75: shutdown did not finish within the grace period; some tasks were abandoned.
    ShutdownTimeout,
    /// 78: the configuration is invalid.
    Config,
}

impl ExitCode {
    /// The numeric exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::IoError => 74,
            Self::ShutdownTimeout => 75,
            Self::Config => 78,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Text for a daemon's `--help` listing the exit codes.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 clean stop, 1 failure while running, 2 bad command line, \
74 I/O error at start-up, 75 shutdown exceeded its grace period, 78 invalid configuration.";
