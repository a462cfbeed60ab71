//! `outpost logs MODULE [-f] [--tail N] [--since WHEN] [--timestamps]`: a module's output,
//! stdout lines on stdout and stderr lines on stderr (as `docker logs` does), or one JSON
//! object per line with `-o json`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use outpost_proto::agent::v1 as pb;

use crate::commands::modules::client;
use crate::output::Format;

/// Options of `outpost logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The module.
    pub module: String,
    /// Keep printing new lines as they are written.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<u32>,
    /// Only lines since a time: a duration ago (`30s`, `10m`, `2h`, `1d`), an RFC 3339 time
    /// or a Unix time.
    #[arg(long)]
    pub since: Option<String>,
    /// Prefix each line with the time it was written.
    #[arg(long, short = 't')]
    pub timestamps: bool,
}

/// `since` as a Unix time, relative to `now`.
pub fn parse_since(text: &str, now: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    let units = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];
    for (suffix, secs) in units {
        if let Some(n) = text.strip_suffix(suffix).and_then(|n| n.parse::<i64>().ok()) {
            return Ok(now - n * secs);
        }
    }
    if let Some(secs) = outpost_core::time::parse_rfc3339(text) {
        return Ok(secs);
    }
    bail!("--since {text:?}: give a duration ago (30s, 10m, 2h, 1d), an RFC 3339 time or a Unix time")
}

/// `outpost logs`.
pub async fn logs(args: LogsArgs, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let since_unix = args.since.as_deref().map(|s| parse_since(s, now as i64)).transpose()?.unwrap_or(0);
    let request = pb::StreamLogsRequest { module_id: args.module, tail: args.tail, since_unix, follow: args.follow };
    let mut stream = client(socket).await?.stream_logs(request).await?.into_inner();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    while let Some(line) = stream.message().await? {
        let written = match format {
            Format::Json => {
                writeln!(out, "{}", serde_json::json!({"time": line.time, "stream": line.stream, "text": line.text}))
            }
            Format::Table => {
                let sink: &mut dyn std::io::Write = if line.stream == "stderr" { &mut err } else { &mut out };
                if args.timestamps {
                    writeln!(sink, "{} {}", line.time, line.text)
                } else {
                    writeln!(sink, "{}", line.text)
                }
            }
        };
        // A closed pipe (`outpost logs m | head`) ends the command quietly.
        if written.is_err() {
            break;
        }
        if args.follow {
            let _ = out.flush();
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_times_and_unix_seconds() {
        let now = 1_795_467_989;
        assert_eq!(parse_since("30s", now).unwrap(), now - 30);
        assert_eq!(parse_since("10m", now).unwrap(), now - 600);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7200);
        assert_eq!(parse_since("1d", now).unwrap(), now - 86_400);
        assert_eq!(parse_since("2026-11-23T21:06:29Z", now).unwrap(), 1_795_467_989);
        assert_eq!(parse_since("2026-11-23T21:06:29.5Z", now).unwrap(), 1_795_467_989);
        assert_eq!(parse_since("1700000000", now).unwrap(), 1_700_000_000);
        let error = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("--since \"yesterday\""), "{error}");
    }
}
