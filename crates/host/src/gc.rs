//! Image garbage collection (Azure's `[image_garbage_collection]`) of the modules' images:
//! the schedule (durations like `1d`, `12h`, `30m`, a daily start time `HH:MM` UTC), which
//! images are due ([`due`], pure: an image is in use while a container or the applied
//! deployment names it; unused ones are removed once unused for longer than the threshold,
//! counted from when outpostd first saw them unused), and one collection over containerd
//! ([`collect`]), remembering the times in `{state_dir}/host/gc.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use outpost_runtime::containerd::Containerd;

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

/// Updates `unused_since` (image → Unix seconds it was first seen unused) for `images` at
/// `now`; returns the images unused for longer than `threshold`.
pub fn due(
    images: &[String],
    in_use: &BTreeSet<String>,
    unused_since: &mut BTreeMap<String, u64>,
    now: u64,
    threshold: Duration,
) -> Vec<String> {
    unused_since.retain(|image, _| images.contains(image) && !in_use.contains(image));
    let mut due = Vec::new();
    for image in images.iter().filter(|i| !in_use.contains(*i)) {
        let since = *unused_since.entry(image.clone()).or_insert(now);
        if now.saturating_sub(since) > threshold.as_secs() {
            due.push(image.clone());
        }
    }
    due
}

/// The images the deployment in `deployment_file` names for its modules.
pub fn deployment_images(deployment_file: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(deployment_file) else { return BTreeSet::new() };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { return BTreeSet::new() };
    let desired = &value["modulesContent"]["$edgeAgent"]["properties.desired"];
    let mut images = BTreeSet::new();
    for section in ["modules", "systemModules"] {
        if let Some(modules) = desired[section].as_object() {
            images.extend(modules.values().filter_map(|m| m["settings"]["image"].as_str().map(str::to_owned)));
        }
    }
    images
}

/// One collection in the modules' namespace: removes the images that are due; returns them.
pub async fn collect(
    runtime: &Containerd,
    deployment_file: &Path,
    journal: &Path,
    threshold: Duration,
    now: u64,
) -> Result<Vec<String>, outpost_runtime::RuntimeError> {
    let images = runtime.list_images().await?;
    let mut in_use = deployment_images(deployment_file);
    for container in
        runtime.list(outpost_runtime::container::LABEL_OWNER, outpost_runtime::container::OWNER_AGENT).await?
    {
        in_use.insert(container.image);
    }
    let mut unused_since: BTreeMap<String, u64> =
        std::fs::read(journal).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let due = due(&images, &in_use, &mut unused_since, now, threshold);
    let mut removed = Vec::new();
    for image in due {
        match runtime.remove_image(&image).await {
            Ok(()) => {
                tracing::info!(%image, "removed an image no module has used for {} s", threshold.as_secs());
                unused_since.remove(&image);
                removed.push(image);
            }
            Err(e) => tracing::warn!(%image, error = %e, "cannot remove an unused image"),
        }
    }
    let bytes = serde_json::to_vec_pretty(&unused_since).unwrap_or_default();
    if let Err(e) = outpost_daemon::atomic::write_atomic(journal, &bytes, 0o644) {
        tracing::warn!(file = %journal.display(), error = %e, "cannot record images' last use");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_images_go_after_the_threshold_counted_from_when_first_seen_unused() {
        let images: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let in_use: BTreeSet<String> = ["a".to_owned()].into();
        let mut since = BTreeMap::new();
        let week = Duration::from_secs(7 * 86_400);
        assert!(due(&images, &in_use, &mut since, 1000, week).is_empty());
        assert_eq!(since.keys().collect::<Vec<_>>(), ["b", "c"]);
        // c comes back into use: its clock stops.
        let in_use_c: BTreeSet<String> = ["a".to_owned(), "c".to_owned()].into();
        assert!(due(&images, &in_use_c, &mut since, 2000, week).is_empty());
        assert!(!since.contains_key("c"));
        assert_eq!(due(&images, &in_use_c, &mut since, 1000 + week.as_secs() + 1, week), ["b"]);
        assert_eq!(
            due(&images, &in_use, &mut since, 1000 + week.as_secs() + 1, week),
            ["b"],
            "c is not due: its clock started again"
        );
    }

    #[test]
    fn the_deployment_names_its_images() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deployment.json");
        std::fs::write(
            &file,
            r#"{"modulesContent": {"$edgeAgent": {"properties.desired": {
            "systemModules": {"edgeHub": {"settings": {"image": "hub:1"}}},
            "modules": {"m": {"settings": {"image": "m:1"}}}}}}}"#,
        )
        .unwrap();
        assert_eq!(deployment_images(&file), ["hub:1".to_owned(), "m:1".to_owned()].into());
        assert!(deployment_images(&dir.path().join("none.json")).is_empty());
    }

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
