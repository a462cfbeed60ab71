//! outpost-identityd with its keys in a TPM 2.0 (swtpm started by the test): tokens, workload
//! signing and persistence across restarts.

#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use outpost_identity::config::KeyStoreKind;
use outpost_proto::identity::v1 as pb;
use outpost_testkit::Swtpm;
use serde_json::json;
use support::{DEVICE_KEY, Daemon, workload};

#[tokio::test]
async fn tpm_backed_identities_sign_verify_and_survive_restarts() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.key_store.kind = KeyStoreKind::Tpm;
    config.key_store.tcti = tpm.tcti();
    let daemon = Daemon::start_with(dir, config).await;
    let mut client = daemon.client().await;
    assert_eq!(client.get_device(pb::GetDeviceRequest {}).await.unwrap().into_inner().key_store, "tpm");
    assert!(daemon.config.paths.state_dir.join("tpm/master.tpm").exists());
    assert!(!daemon.config.paths.state_dir.join("keys").exists(), "no key files in TPM mode");

    let module = client
        .create_module(pb::CreateModuleRequest { module_id: "modT".into(), managed_by: "t".into() })
        .await
        .unwrap()
        .into_inner();
    let token =
        client.issue_token(pb::IssueTokenRequest { module_id: "modT".into(), ttl_secs: 0 }).await.unwrap().into_inner();
    client.verify_token(pb::VerifyTokenRequest { token: token.token.clone() }).await.unwrap();

    // The imported device key signs inside the TPM exactly as in software.
    let device =
        client.issue_token(pb::IssueTokenRequest { module_id: String::new(), ttl_secs: 0 }).await.unwrap().into_inner();
    let out = std::process::Command::new("python3")
        .arg(support::workspace_root().join("tests/python/verify_sas.py"))
        .args([&device.token, DEVICE_KEY, &format!("{}/devices/{}", support::HUB, support::DEVICE)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");

    let data = base64::engine::general_purpose::STANDARD.encode("to sign");
    let body = json!({"keyId": "primary", "algo": "HMACSHA256", "data": data}).to_string();
    let target = format!("/modules/modT/genid/{}/sign?api-version=2019-01-30", module.generation_id);
    let (status, first) = workload(&daemon.workload_socket("modT"), "POST", &target, Some(&body)).await;
    assert_eq!(status, 200, "{first}");

    drop(client);
    let (dir, config) = daemon.stop().await;
    let daemon = Daemon::start_with(dir, config).await;
    let mut client = daemon.client().await;
    client.verify_token(pb::VerifyTokenRequest { token: token.token }).await.expect("same TPM keys after restart");
    let (_, second) = workload(&daemon.workload_socket("modT"), "POST", &target, Some(&body)).await;
    assert_eq!(first, second);
}
