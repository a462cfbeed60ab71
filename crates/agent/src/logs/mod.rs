//! Module logs: what the per-task logger writes and what `StreamLogs` reads.
//!
//! Each module's output goes to `{dir}/{module}.log`, rotated at a size cap into
//! `{module}.log.1` … `{module}.log.{files-1}` (the oldest is dropped). Lines use the CRI
//! logging format that Kubernetes tools read: `<RFC 3339 time with nanoseconds> <stdout|stderr>
//! <F|P> <text>`, where `P` marks a piece of a line longer than [`MAX_LINE`] that continues in
//! the next record and `F` the end of a line.

pub mod reader;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest record text; longer lines are split into `P` records.
pub const MAX_LINE: usize = 16 * 1024;

/// Rotation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes per file before it is rotated.
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self { max_size: 10 * 1024 * 1024, max_files: 3 }
    }
}

/// Where modules' logs go and who writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLogs {
    /// The log directory.
    pub dir: PathBuf,
    /// The `outpost-logger` program the shim starts for each task.
    pub logger: PathBuf,
    /// Rotation limits.
    pub rotation: Rotation,
}

impl ModuleLogs {
    /// How containerd should hand `module`'s output over.
    pub fn output(&self) -> outpost_runtime::container::Output {
        outpost_runtime::container::Output::Binary {
            program: self.logger.clone(),
            args: vec![
                ("dir".into(), self.dir.display().to_string()),
                ("max-size".into(), self.rotation.max_size.to_string()),
                ("max-files".into(), self.rotation.max_files.to_string()),
            ],
        }
    }
}

/// The current log file of `module`.
pub fn current(dir: &Path, module: &str) -> PathBuf {
    dir.join(format!("{module}.log"))
}

/// Rotated file `n` (1 = the most recent) of `module`.
pub fn rotated(dir: &Path, module: &str, n: u32) -> PathBuf {
    dir.join(format!("{module}.log.{n}"))
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// RFC 3339 with nanoseconds, UTC.
    pub time: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// Whether the line continues in the next record.
    pub partial: bool,
    /// The text, without the newline.
    pub text: &'a str,
}

impl<'a> Record<'a> {
    /// Parses one line of a log file (without its newline); `None` for anything else.
    pub fn parse(line: &'a str) -> Option<Self> {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next()?;
        let stream = parts.next()?;
        let tag = parts.next()?;
        let text = parts.next().unwrap_or("");
        if time.len() < 20 || !matches!(stream, "stdout" | "stderr") {
            return None;
        }
        let partial = match tag {
            "F" => false,
            "P" => true,
            _ => return None,
        };
        Some(Self { time, stream, partial, text })
    }

    /// Seconds since the epoch of the record's time.
    pub fn unix_secs(&self) -> Option<i64> {
        outpost_core::time::parse_rfc3339(self.time)
    }
}

/// `now` as RFC 3339 with nanoseconds: `2026-11-26T07:33:29.123456789Z`.
pub fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = outpost_core::time::rfc3339(since.as_secs() as i64);
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), since.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let line = "2026-11-26T07:33:29.000000001Z stderr P half a line";
        let record = Record::parse(line).unwrap();
        assert_eq!((record.stream, record.partial, record.text), ("stderr", true, "half a line"));
        assert_eq!(Record::parse("2026-11-26T07:33:29.000000001Z stdout F").unwrap().text, "");
        for junk in ["", "garbage", "2026-11-26T07:33:29Z stdin F x", "2026-11-26T07:33:29Z stdout X x"] {
            assert!(Record::parse(junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn timestamps_parse_back_to_their_second() {
        let now = UNIX_EPOCH + std::time::Duration::new(1_795_467_989, 5);
        let text = timestamp(now);
        assert_eq!(text, "2026-11-23T21:06:29.000000005Z");
        let record = format!("{text} stdout F x");
        assert_eq!(Record::parse(&record).unwrap().unix_secs(), Some(1_795_467_989));
    }
}
