//! Image garbage collection's schedule (Azure's `[image_garbage_collection]`): durations
//! like `1d`, `12h`, `30m`, a daily start time `HH:MM` (UTC), and when the next run is due.

use std::time::Duration;

use crate::config::ImageGcConfig;

/// A parsed `[image_garbage_collection]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Whether collection runs at all.
    pub enabled: bool,
    /// Time between runs.
    pub recurrence: Duration,
    /// Images unused for longer than this are removed.
    pub threshold: Duration,
    /// Seconds after midnight UTC of the first run of a day.
    pub start_secs: u64,
}

/// Parses `30s`, `15m`, `12h`, `7d` (a number and one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a duration like \"7d\", \"12h\" or \"30m\""))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has no unit: use s, m, h or d (\"7d\")")),
    };
    match n.checked_mul(secs) {
        Some(0) => Err(format!("{text:?} must be more than zero")),
        Some(total) => Ok(Duration::from_secs(total)),
        None => Err(format!("{text:?} is too long")),
    }
}

impl Schedule {
    /// Parses the configuration; errors carry the key at fault.
    pub fn parse(config: &ImageGcConfig) -> Result<Self, (&'static str, String)> {
        let recurrence = parse_duration(&config.cleanup_recurrence)
            .map_err(|e| ("image_garbage_collection.cleanup_recurrence", e))?;
        if recurrence < Duration::from_secs(60) {
            return Err(("image_garbage_collection.cleanup_recurrence", "must be at least 1m".into()));
        }
        let threshold = parse_duration(&config.image_age_cleanup_threshold)
            .map_err(|e| ("image_garbage_collection.image_age_cleanup_threshold", e))?;
        let bad_time = || {
            ("image_garbage_collection.cleanup_time", format!("{:?} is not a time HH:MM (UTC)", config.cleanup_time))
        };
        let (h, m) = config.cleanup_time.split_once(':').ok_or_else(bad_time)?;
        let (h, m): (u64, u64) = (h.parse().map_err(|_| bad_time())?, m.parse().map_err(|_| bad_time())?);
        if h > 23 || m > 59 {
            return Err(bad_time());
        }
        Ok(Self { enabled: config.enabled, recurrence, threshold, start_secs: h * 3600 + m * 60 })
    }

    /// Seconds from `now` (Unix seconds) to the next run: the runs are the start time of each
    /// day, then every `recurrence` after it until the next day's start time.
    pub fn next_run_in(&self, now: u64) -> u64 {
        let day_start = now - now % 86_400 + self.start_secs;
        let anchor = if day_start > now { day_start - 86_400 } else { day_start };
        let step = self.recurrence.as_secs().max(60);
        let since = now - anchor;
        let next = anchor + (since / step + 1) * step;
        next.min(anchor + 86_400) - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "d", "7", "7 days", "-1d", "0h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_next_run_is_the_daily_start_time_then_every_recurrence() {
        let config = |rec: &str, time: &str| ImageGcConfig {
            enabled: true,
            cleanup_recurrence: rec.into(),
            image_age_cleanup_threshold: "7d".into(),
            cleanup_time: time.into(),
        };
        let daily = Schedule::parse(&config("1d", "02:30")).unwrap();
        let midnight = 20_000 * 86_400;
        assert_eq!(daily.next_run_in(midnight), 9000);
        assert_eq!(daily.next_run_in(midnight + 9000), 86_400);
        assert_eq!(daily.next_run_in(midnight + 9001), 86_399);
        let hourly = Schedule::parse(&config("6h", "00:00")).unwrap();
        assert_eq!(hourly.next_run_in(midnight + 3600), 5 * 3600);
        assert!(Schedule::parse(&config("1d", "24:00")).is_err());
        assert!(Schedule::parse(&config("10s", "00:00")).is_err());
    }
}
