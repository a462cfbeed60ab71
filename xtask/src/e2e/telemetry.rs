//! What reaches the cloud: `outpost cloud monitor-events` running for the whole test, its
//! events kept with the sensor's `runId` and `sequenceNumber`, so that a gap — a message lost
//! anywhere between a module and the cloud — shows.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use super::fleet::Fleet;

/// One telemetry message as the cloud saw it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The device.
    pub device: String,
    /// The sensor's run.
    pub run: String,
    /// Its number in the run.
    pub seq: u64,
}

/// The monitor and what it has seen.
pub struct Telemetry {
    child: Child,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Telemetry {
    /// Starts monitoring every device.
    pub fn start(fleet: &Fleet) -> anyhow::Result<Self> {
        let mut child = fleet
            .cloud_command(&["monitor-events", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run outpost cloud monitor-events")?;
        let stdout = child.stdout.take().context("no stdout")?;
        // The CLI says "Monitoring events" once the cloud has subscribed it: from then on
        // nothing is missed, so the scenarios start only after it.
        let stderr = child.stderr.take().context("no stderr")?;
        let (subscribed, on_subscribed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("Monitoring events") {
                    let _ = subscribed.send(());
                }
            }
        });
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                let event = &value["event"];
                let properties = &event["properties"]["application"];
                let (Some(run), Some(seq)) =
                    (properties["runId"].as_str(), properties["sequenceNumber"].as_str().and_then(|s| s.parse().ok()))
                else {
                    continue;
                };
                let device = event["origin"].as_str().unwrap_or_default().to_owned();
                sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Event {
                    device,
                    run: run.to_owned(),
                    seq,
                });
            }
        });
        if on_subscribed.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            anyhow::bail!("outpost cloud monitor-events did not subscribe within 60 s");
        }
        Ok(Self { child, events })
    }

    fn of(&self, device: &str) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|e| e.device == device)
            .cloned()
            .collect()
    }

    /// Messages seen from `device`.
    pub fn count(&self, device: &str) -> usize {
        self.of(device).len()
    }

    /// The runs seen from `device`, oldest first by first appearance.
    pub fn runs(&self, device: &str) -> Vec<String> {
        let mut runs: Vec<String> = Vec::new();
        for e in self.of(device) {
            if !runs.contains(&e.run) {
                runs.push(e.run);
            }
        }
        runs
    }

    /// For each run of `device`: `(highest number, numbers missing below it, duplicates)`.
    pub fn check(&self, device: &str) -> BTreeMap<String, (u64, Vec<u64>, usize)> {
        let mut by_run: BTreeMap<String, (BTreeSet<u64>, usize)> = BTreeMap::new();
        for e in self.of(device) {
            let entry = by_run.entry(e.run).or_default();
            if !entry.0.insert(e.seq) {
                entry.1 += 1;
            }
        }
        by_run
            .into_iter()
            .map(|(run, (seqs, duplicates))| {
                let max = seqs.iter().max().copied().unwrap_or(0);
                let missing = (1..=max).filter(|n| !seqs.contains(n)).collect();
                (run, (max, missing, duplicates))
            })
            .collect()
    }

    /// Fails naming the gaps if any run of `device` misses a message.
    pub fn no_gaps(&self, device: &str) -> anyhow::Result<()> {
        for (run, (max, missing, _)) in self.check(device) {
            if !missing.is_empty() {
                anyhow::bail!("{device}: run {run} misses {} of its {max} messages: {missing:?}", missing.len());
            }
        }
        Ok(())
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
