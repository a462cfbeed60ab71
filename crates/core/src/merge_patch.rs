//! JSON merge patches (RFC 7396) as twins use them: [`merge`] applies one (objects merge
//! key by key, `null` removes, anything else replaces) and [`diff`] makes the patch that
//! takes one document to another.

use serde_json::{Map, Value};

/// Applies `patch` to `target`.
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(slot) = slot {
                    merge(slot, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// The patch that takes `old` to `new`: changed keys, `null` for removed ones (so a
/// document holding a `null` value cannot be reached exactly: merge patches cannot say it).
pub fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, value) in new {
        match (old.get(key), value) {
            (Some(Value::Object(before)), Value::Object(after)) => {
                let inner = diff(before, after);
                if !inner.is_empty() {
                    patch.insert(key.clone(), Value::Object(inner));
                }
            }
            (Some(before), after) if before == after => {}
            (_, after) => {
                patch.insert(key.clone(), after.clone());
            }
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_adds_replaces_and_removes() {
        let mut doc = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 5}));
        merge(&mut doc, &obj(json!({"a": null, "b": {"c": 4}, "e": {"f": 1}})));
        assert_eq!(Value::Object(doc), json!({"b": {"c": 4, "d": 3}, "e": {"f": 1}}));
    }

    #[test]
    fn diff_carries_changes_and_removals_only() {
        let old = obj(json!({"a": 1, "m": {"x": 1, "y": 2}}));
        let new = obj(json!({"a": 1, "m": {"x": 3}, "b": true}));
        assert_eq!(Value::Object(diff(&old, &new)), json!({"m": {"x": 3, "y": null}, "b": true}));
        assert!(diff(&new, &new).is_empty());
    }

    fn document() -> impl Strategy<Value = Map<String, Value>> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from),
            Just(Value::Bool(true))
        ];
        let value = leaf.prop_recursive(3, 16, 4, |inner| {
            proptest::collection::btree_map("[a-c]", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
        });
        proptest::collection::btree_map("[a-d]", value, 0..5).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn merging_the_diff_reaches_the_new_document(old in document(), new in document()) {
            let mut patched = old.clone();
            merge(&mut patched, &diff(&old, &new));
            prop_assert_eq!(patched, new);
        }
    }
}
