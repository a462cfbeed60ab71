//! Reported properties on their way up, sans-IO: what the cloud has confirmed of each twin
//! and the sequence number the next patch goes under. A device sends only the merge patch
//! from the confirmed copy to its current properties; the cloud applies a patch only if its
//! number is above the last it applied, so a redelivery never reaches a twin twice.
//!
//! The number is reserved — and the state persisted by the caller — before the patch is
//! sent: a number is never used twice, even across a crash (gaps are harmless).

use std::collections::BTreeMap;

use outpost_core::merge_patch::diff;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the cloud has of each twin's reported properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportedState {
    /// The last sequence number reserved.
    #[serde(default)]
    pub sequence: u64,
    /// Reported properties the cloud confirmed, by twin (module id).
    #[serde(default)]
    pub confirmed: BTreeMap<String, Map<String, Value>>,
}

impl ReportedState {
    /// The patch that takes the cloud's copy of `twin` to `current`; `None` when they agree.
    pub fn patch(&self, twin: &str, current: &Map<String, Value>) -> Option<Map<String, Value>> {
        let empty = Map::new();
        let patch = diff(self.confirmed.get(twin).unwrap_or(&empty), current);
        (!patch.is_empty()).then_some(patch)
    }

    /// Reserves the next sequence number, at least `floor` (a clock reading, so numbers keep
    /// growing for a device that lost its state).
    pub fn next_sequence(&mut self, floor: u64) -> u64 {
        self.sequence = (self.sequence + 1).max(floor);
        self.sequence
    }

    /// Records that the cloud confirmed a patch that made its copy of `twin` `current`.
    pub fn confirmed(&mut self, twin: &str, current: Map<String, Value>) {
        self.confirmed.insert(twin.to_owned(), current);
    }
}

/// Milliseconds since the Unix epoch: the floor of sequence numbers.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn patches_carry_what_changed_since_the_last_confirmation() {
        let mut state = ReportedState::default();
        let first = obj(json!({"a": 1, "m": {"x": 1}}));
        assert_eq!(Value::Object(state.patch("sensor", &first).unwrap()), json!({"a": 1, "m": {"x": 1}}));
        assert_eq!(state.next_sequence(0), 1);
        state.confirmed("sensor", first.clone());
        assert!(state.patch("sensor", &first).is_none());
        let second = obj(json!({"a": 2}));
        assert_eq!(Value::Object(state.patch("sensor", &second).unwrap()), json!({"a": 2, "m": null}));
        assert!(state.patch("filter", &first).is_some(), "each twin has its own copy");
    }

    #[test]
    fn sequence_numbers_only_grow() {
        let mut state = ReportedState::default();
        assert_eq!(state.next_sequence(1_000), 1_000);
        assert_eq!(state.next_sequence(10), 1_001);
        assert_eq!(state.next_sequence(5_000), 5_000);
    }
}
