//! What every [`CloudStore`](super::CloudStore) must do, run against each implementation.

use super::{CloudStore, TwinKey, Write};
use crate::registry::{Credentials, DeviceRecord};
use crate::twin::TwinDoc;

fn device(id: &str) -> DeviceRecord {
    DeviceRecord {
        id: id.to_owned(),
        credentials: Credentials::SymmetricKey { primary: "a".into(), secondary: "b".into() },
        enabled: true,
        status_reason: String::new(),
        created_ms: 1,
        generation_id: format!("gen-{id}"),
        version: 1,
        connected: false,
        last_activity_ms: 0,
        assignment: Default::default(),
    }
}

fn twin(version: u64) -> TwinDoc {
    TwinDoc { version, ..TwinDoc::default() }
}

/// Writes devices and twins, reads them back, pages, deletes.
pub(crate) fn check(store: &dyn CloudStore) {
    let mut writes = Vec::new();
    for id in ["d1", "d2", "d3", "d1x"] {
        writes.push(Write::PutDevice(device(id)));
        writes.push(Write::PutTwin(TwinKey::device(id), twin(1)));
    }
    writes.push(Write::PutTwin(TwinKey::module("d1", "$edgeAgent"), twin(2)));
    writes.push(Write::PutTwin(TwinKey::module("d1", "sensor"), twin(3)));
    store.apply(writes).unwrap();

    assert_eq!(store.device("d1").unwrap().unwrap().generation_id, "gen-d1");
    assert!(store.device("nope").unwrap().is_none());
    let ids = |after: &str, limit| store.devices(after, limit).unwrap().into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(ids("", 10), ["d1", "d1x", "d2", "d3"]);
    assert_eq!(ids("", 2), ["d1", "d1x"]);
    assert_eq!(ids("d1x", 10), ["d2", "d3"]);
    assert_eq!(ids("d1", 1), ["d1x"]);

    let twins = store.twins_of("d1").unwrap();
    assert_eq!(twins.keys().collect::<Vec<_>>(), ["", "$edgeAgent", "sensor"]);
    assert_eq!(store.twin(&TwinKey::module("d1", "sensor")).unwrap().unwrap().version, 3);

    store.apply(vec![Write::DeleteDevice("d2".into()), Write::DeleteTwins("d2".into())]).unwrap();
    assert!(store.device("d2").unwrap().is_none());
    assert!(store.twins_of("d2").unwrap().is_empty());
    assert_eq!(store.twins_of("d1x").unwrap().len(), 1, "a device whose id extends another's keeps its twins");

    let deployment = |id: &str| crate::deployments::DeploymentRecord {
        id: id.into(),
        content: Default::default(),
        target_condition: "*".into(),
        priority: 1,
        layered: false,
        labels: Default::default(),
        created_ms: 1,
        sequence: 1,
        version: 1,
    };
    store.apply(vec![Write::PutDeployment(deployment("b")), Write::PutDeployment(deployment("a"))]).unwrap();
    store.apply(vec![Write::DeleteDeployment("b".into()), Write::PutDeployment(deployment("c"))]).unwrap();
    let ids: Vec<_> = store.deployments().unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["a", "c"]);

    let agent = TwinKey::module("d1", "$edgeAgent");
    store.apply(vec![Write::Outbox(agent.clone(), 1), Write::Outbox(TwinKey::module("d3", "m"), 4)]).unwrap();
    store.apply(vec![Write::Outbox(agent.clone(), 2)]).unwrap();
    assert!(!store.delivered(&agent, 1).unwrap(), "a newer change keeps the entry");
    assert_eq!(store.outbox().unwrap(), [(agent.clone(), 2), (TwinKey::module("d3", "m"), 4)]);
    assert!(store.delivered(&agent, 2).unwrap());
    store.apply(vec![Write::DeleteTwins("d3".into())]).unwrap();
    assert!(store.outbox().unwrap().is_empty(), "a deleted device's deliveries go with it");
    store.apply(vec![Write::Outbox(agent, 3)]).unwrap();
}

/// After [`check`] and a reopen, what was written is still there.
pub(crate) fn check_after_reopen(store: &dyn CloudStore) {
    assert_eq!(store.devices("", 10).unwrap().len(), 3);
    assert_eq!(store.twins_of("d1").unwrap().len(), 3);
    assert_eq!(store.deployments().unwrap().len(), 2);
    assert_eq!(store.outbox().unwrap(), [(TwinKey::module("d1", "$edgeAgent"), 3)]);
}

#[test]
fn twin_keys_round_trip() {
    let key = TwinKey::module("dev", "$edgeHub");
    assert_eq!(TwinKey::decode(&key.encode()), Some(key));
}
