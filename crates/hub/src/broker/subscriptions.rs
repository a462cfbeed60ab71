//! Who is subscribed to what: filters with their subscribers, matched against topic names.
//! A plain map scanned per publish; shared subscriptions pick one member per message, in
//! turn.

use std::collections::{BTreeMap, HashMap};

use crate::mqtt::SubscriptionOptions;
use crate::mqtt::topic::{Filter, matches};

/// One subscriber of one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Its client id.
    pub client_id: String,
    /// Its options.
    pub options: SubscriptionOptions,
}

#[derive(Debug, Default)]
struct Entry {
    /// Plain subscribers by client id.
    direct: BTreeMap<String, SubscriptionOptions>,
    /// Shared groups: group → (members, next member's turn).
    shared: BTreeMap<String, (Vec<Subscriber>, usize)>,
}

/// The subscription table.
#[derive(Debug, Default)]
pub struct Subscriptions {
    filters: HashMap<String, Entry>,
}

impl Subscriptions {
    /// Adds or replaces `client_id`'s subscription to `filter`.
    pub fn add(&mut self, filter: &Filter, client_id: &str, options: SubscriptionOptions) {
        let entry = self.filters.entry(filter.filter.clone()).or_default();
        match &filter.share_group {
            None => {
                entry.direct.insert(client_id.to_owned(), options);
            }
            Some(group) => {
                let (members, _) = entry.shared.entry(group.clone()).or_default();
                members.retain(|m| m.client_id != client_id);
                members.push(Subscriber { client_id: client_id.to_owned(), options });
            }
        }
    }

    /// Removes `client_id`'s subscription to `filter`; whether it existed.
    pub fn remove(&mut self, filter: &Filter, client_id: &str) -> bool {
        let Some(entry) = self.filters.get_mut(&filter.filter) else { return false };
        let existed = match &filter.share_group {
            None => entry.direct.remove(client_id).is_some(),
            Some(group) => {
                let (existed, empty) = match entry.shared.get_mut(group) {
                    Some((members, _)) => {
                        let before = members.len();
                        members.retain(|m| m.client_id != client_id);
                        (before != members.len(), members.is_empty())
                    }
                    None => (false, false),
                };
                if empty {
                    entry.shared.remove(group);
                }
                existed
            }
        };
        if entry.direct.is_empty() && entry.shared.is_empty() {
            self.filters.remove(&filter.filter);
        }
        existed
    }

    /// Whether some subscription to `topic` satisfies `test` (client id, options), without
    /// taking shared groups' turns.
    pub fn any(&self, topic: &str, test: impl Fn(&str, &SubscriptionOptions) -> bool) -> bool {
        self.filters.iter().filter(|(filter, _)| matches(filter, topic)).any(|(_, entry)| {
            entry.direct.iter().any(|(client, options)| test(client, options))
                || entry.shared.values().flat_map(|(members, _)| members).any(|m| test(&m.client_id, &m.options))
        })
    }

    /// Every subscriber of `topic` with the options of each matching subscription; a client
    /// subscribed through several filters gets the highest QoS once, and each shared group
    /// contributes one member in turn.
    pub fn matching(&mut self, topic: &str) -> Vec<Subscriber> {
        let mut found: BTreeMap<String, SubscriptionOptions> = BTreeMap::new();
        let mut add = |s: Subscriber| {
            found
                .entry(s.client_id)
                .and_modify(|o| {
                    if s.options.qos > o.qos {
                        *o = s.options;
                    }
                })
                .or_insert(s.options);
        };
        for (filter, entry) in self.filters.iter_mut() {
            if !matches(filter, topic) {
                continue;
            }
            for (client_id, options) in &entry.direct {
                add(Subscriber { client_id: client_id.clone(), options: *options });
            }
            for (members, turn) in entry.shared.values_mut() {
                if !members.is_empty() {
                    let member = members[*turn % members.len()].clone();
                    *turn = (*turn + 1) % members.len();
                    add(member);
                }
            }
        }
        found.into_iter().map(|(client_id, options)| Subscriber { client_id, options }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::QoS;
    use crate::mqtt::topic::parse_filter;

    #[test]
    fn overlapping_subscriptions_deliver_once_at_the_highest_qos_and_groups_take_turns() {
        let mut table = Subscriptions::default();
        table.add(&parse_filter("a/#").unwrap(), "c1", SubscriptionOptions::qos(QoS::AtMostOnce));
        table.add(&parse_filter("a/+").unwrap(), "c1", SubscriptionOptions::qos(QoS::AtLeastOnce));
        table.add(&parse_filter("$share/g/a/b").unwrap(), "s1", SubscriptionOptions::qos(QoS::AtLeastOnce));
        table.add(&parse_filter("$share/g/a/b").unwrap(), "s2", SubscriptionOptions::qos(QoS::AtLeastOnce));
        let first = table.matching("a/b");
        assert_eq!(first.iter().filter(|s| s.client_id == "c1").count(), 1);
        assert_eq!(first.iter().find(|s| s.client_id == "c1").unwrap().options.qos, QoS::AtLeastOnce);
        let second = table.matching("a/b");
        let shared = |v: &[Subscriber]| {
            v.iter().filter(|s| s.client_id.starts_with('s')).map(|s| s.client_id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(shared(&first).len(), 1);
        assert_ne!(shared(&first), shared(&second), "members take turns");
        assert!(table.remove(&parse_filter("a/+").unwrap(), "c1"));
        assert!(!table.remove(&parse_filter("a/+").unwrap(), "c1"));
        assert_eq!(table.matching("x"), vec![]);
    }
}
