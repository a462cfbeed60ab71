//! The registry and twin operations against the in-memory store.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::DeviceId;
use outpost_core::sas::{SasToken, TokenScope};
use ring::hmac;
use serde_json::{Value, json};

use super::*;
use crate::store::MemoryStore;

fn cloud() -> Cloud {
    Cloud::new(Arc::new(MemoryStore::default()), "hub.test", 0)
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn sign(record: &DeviceRecord, expiry: u64) -> String {
    let Credentials::SymmetricKey { primary, .. } = &record.credentials else { panic!("not symmetric") };
    let scope = TokenScope::Device { hub: "hub.test".into(), device: DeviceId::new(&record.id).unwrap() };
    let mut token = SasToken::new(scope, expiry, vec![0]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &BASE64.decode(primary).unwrap());
    token.signature = hmac::sign(&key, token.string_to_sign().as_bytes()).as_ref().to_vec();
    token.to_string()
}

#[test]
fn a_created_device_has_keys_a_twin_and_refuses_a_duplicate() {
    let cloud = cloud();
    let device = cloud
        .create_device(NewDevice { id: "dev-1".into(), tags: obj(json!({"env": "prod"})), ..NewDevice::default() })
        .unwrap();
    assert!(matches!(device.credentials, Credentials::SymmetricKey { .. }));
    assert!(device.enabled);
    let twin = cloud.twin("dev-1", "").unwrap();
    assert_eq!(twin.tags["env"], "prod");
    let err = cloud.create_device(NewDevice { id: "dev-1".into(), ..NewDevice::default() }).unwrap_err();
    assert_eq!(err.to_string(), "device \"dev-1\" exists already");
    let err = cloud.create_device(NewDevice { id: "bad/id".into(), ..NewDevice::default() }).unwrap_err();
    assert!(matches!(err, CloudError::Id(_)), "{err}");
}

#[test]
fn bad_tags_at_creation_leave_nothing_behind() {
    let cloud = cloud();
    let err = cloud
        .create_device(NewDevice { id: "d".into(), tags: obj(json!({"a b": 1})), ..NewDevice::default() })
        .unwrap_err();
    assert!(err.to_string().contains("\"a b\""), "{err}");
    assert!(matches!(cloud.device("d"), Err(CloudError::NotFound { .. })));
}

#[test]
fn twin_updates_honour_etags_and_bump_versions() {
    let cloud = cloud();
    cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    let twin = cloud
        .update_twin("d", "", TwinUpdate { tags: Some(obj(json!({"ring": 1}))), ..TwinUpdate::default() })
        .unwrap();
    let etag = twin.etag();
    let twin = cloud
        .update_twin(
            "d",
            "",
            TwinUpdate { desired: Some(obj(json!({"x": 1}))), if_match: Some(etag.clone()), ..TwinUpdate::default() },
        )
        .unwrap();
    assert_eq!(twin.desired_version, 1);
    let err = cloud
        .update_twin(
            "d",
            "",
            TwinUpdate { desired: Some(obj(json!({"x": 2}))), if_match: Some(etag), ..TwinUpdate::default() },
        )
        .unwrap_err();
    assert!(matches!(err, CloudError::EtagMismatch { .. }), "{err}");
    assert_eq!(cloud.twin("d", "").unwrap().desired["x"], 1, "a refused update changes nothing");
}

#[test]
fn module_twins_appear_on_first_write_and_have_no_tags() {
    let cloud = cloud();
    cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    assert!(matches!(cloud.twin("d", "sensor"), Err(CloudError::NotFound { what: "twin", .. })));
    cloud
        .update_twin("d", "sensor", TwinUpdate { desired: Some(obj(json!({"rate": 5}))), ..TwinUpdate::default() })
        .unwrap();
    assert_eq!(cloud.twin("d", "sensor").unwrap().desired["rate"], 5);
    let err = cloud
        .update_twin("d", "sensor", TwinUpdate { tags: Some(obj(json!({"a": 1}))), ..TwinUpdate::default() })
        .unwrap_err();
    assert!(err.to_string().contains("module twins have no tags"), "{err}");
    assert!(matches!(
        cloud.update_twin("ghost", "sensor", TwinUpdate::default()),
        Err(CloudError::NotFound { what: "device", .. })
    ));
}

#[test]
fn reported_patches_merge() {
    let cloud = cloud();
    cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    cloud.report("d", "$edgeAgent", &obj(json!({"a": {"b": 1, "c": 2}})), None).unwrap();
    let twin = cloud.report("d", "$edgeAgent", &obj(json!({"a": {"c": null}})), None).unwrap();
    assert_eq!(twin.reported_with_version(), json!({"a": {"b": 1}, "$version": 2}));
}

#[test]
fn deleting_a_device_removes_its_twins_and_a_new_one_starts_afresh() {
    let cloud = cloud();
    let first = cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    cloud.update_twin("d", "m", TwinUpdate { desired: Some(obj(json!({"a": 1}))), ..TwinUpdate::default() }).unwrap();
    let err = cloud.delete_device("d", Some(&"\"99\"".to_owned())).unwrap_err();
    assert!(matches!(err, CloudError::EtagMismatch { .. }));
    cloud.delete_device("d", None).unwrap();
    let second = cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    assert_ne!(first.generation_id, second.generation_id);
    assert!(cloud.twin("d", "m").is_err());
}

#[test]
fn devices_sign_in_with_their_keys_until_disabled() {
    let cloud = cloud();
    let device = cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    let now = now_ms() / 1000;
    assert_eq!(cloud.authenticate_device("d", &sign(&device, now + 600)), Ok(()));
    assert!(cloud.authenticate_device("d", &sign(&device, now - 600)).unwrap_err().contains("expired"));
    assert!(cloud.authenticate_device("other", &sign(&device, now + 600)).unwrap_err().contains("not registered"));
    let disabled = cloud
        .update_device(
            "d",
            DeviceUpdate { enabled: Some(false), status_reason: Some("stolen".into()), ..DeviceUpdate::default() },
        )
        .unwrap();
    assert_eq!(disabled.version, 2);
    assert!(cloud.authenticate_device("d", &sign(&device, now + 600)).unwrap_err().contains("disabled"));
    // Rolled keys: tokens of the old key stop working.
    cloud
        .update_device(
            "d",
            DeviceUpdate {
                enabled: Some(true),
                credentials: Some(Credentials::generate().unwrap()),
                ..DeviceUpdate::default()
            },
        )
        .unwrap();
    assert!(cloud.authenticate_device("d", &sign(&device, now + 600)).unwrap_err().contains("neither"));
}

#[test]
fn activity_is_seen_at_once_and_written_in_batches() {
    let store = Arc::new(MemoryStore::default());
    let cloud = Cloud::new(store.clone(), "hub.test", 0);
    cloud.create_device(NewDevice { id: "d".into(), ..NewDevice::default() }).unwrap();
    cloud.touch("d", Some(true));
    cloud.touch("ghost", None);
    let seen = cloud.device("d").unwrap();
    assert!(seen.connected && seen.last_activity_ms > 0);
    assert!(!store.device("d").unwrap().unwrap().connected, "not written yet");
    assert_eq!(cloud.flush_activity().unwrap(), 1, "an unknown device is skipped");
    let stored = store.device("d").unwrap().unwrap();
    assert!(stored.connected && stored.last_activity_ms == seen.last_activity_ms);
    assert_eq!(cloud.flush_activity().unwrap(), 0);
    cloud.touch("d", Some(false));
    assert!(!cloud.devices("", 10).unwrap()[0].connected);
}
