//! Every outpost.identity.v1 RPC against a real daemon on a temporary socket.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use outpost_proto::identity::v1 as pb;
use support::{DEVICE, DEVICE_KEY, Daemon, HUB, workspace_root};
use tonic::Code;

fn create(module: &str) -> pb::CreateModuleRequest {
    pb::CreateModuleRequest { module_id: module.into(), managed_by: "test".into() }
}

#[tokio::test]
async fn module_identities_are_created_listed_deleted_and_regenerated() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;

    let device = client.get_device(pb::GetDeviceRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (device.device_id.as_str(), device.hub_hostname.as_str(), device.key_store.as_str()),
        (DEVICE, HUB, "file")
    );

    let first = client.create_module(create("modA")).await.unwrap().into_inner();
    assert_eq!(first.managed_by, "test");
    assert!(std::path::Path::new(&first.workload_socket).exists(), "workload socket is served");
    let again = client.create_module(create("modA")).await.unwrap().into_inner();
    assert_eq!(again.generation_id, first.generation_id, "creating twice is idempotent");
    client.create_module(create("$edgeHub")).await.unwrap();

    let got = client.get_module(pb::GetModuleRequest { module_id: "modA".into() }).await.unwrap().into_inner();
    assert_eq!(got, first);
    let list = client.list_modules(pb::ListModulesRequest {}).await.unwrap().into_inner().modules;
    let ids: Vec<&str> = list.iter().map(|m| m.module_id.as_str()).collect();
    assert_eq!(ids, ["$edgeHub", "modA"]);

    client.delete_module(pb::DeleteModuleRequest { module_id: "modA".into() }).await.unwrap();
    assert!(!std::path::Path::new(&first.workload_socket).exists(), "workload socket removed");
    let missing = client.get_module(pb::GetModuleRequest { module_id: "modA".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let again = client.delete_module(pb::DeleteModuleRequest { module_id: "modA".into() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);

    let reborn = client.create_module(create("modA")).await.unwrap().into_inner();
    assert_ne!(reborn.generation_id, first.generation_id);
}

#[tokio::test]
async fn bad_module_ids_are_invalid_arguments_with_the_reason() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    for bad in ["", "a/b", "has space", ".."] {
        let err = client.create_module(create(bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().starts_with("module_id: module id"), "{}", err.message());
    }
}

#[tokio::test]
async fn issued_tokens_verify_and_say_whose_they_are() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let module = client.create_module(create("modA")).await.unwrap().into_inner();

    let token = client
        .issue_token(pb::IssueTokenRequest { module_id: "modA".into(), ttl_secs: 60 })
        .await
        .unwrap()
        .into_inner();
    assert!(
        token.token.starts_with(&format!("SharedAccessSignature sr={HUB}%2Fdevices%2F{DEVICE}%2Fmodules%2FmodA&sig="))
    );
    let verified =
        client.verify_token(pb::VerifyTokenRequest { token: token.token.clone() }).await.unwrap().into_inner();
    assert_eq!((verified.device_id.as_str(), verified.module_id.as_str()), (DEVICE, "modA"));
    assert_eq!(verified.generation_id, module.generation_id);
    assert_eq!(verified.expiry, token.expiry);

    let device =
        client.issue_token(pb::IssueTokenRequest { module_id: String::new(), ttl_secs: 0 }).await.unwrap().into_inner();
    let verified = client.verify_token(pb::VerifyTokenRequest { token: device.token }).await.unwrap().into_inner();
    assert_eq!((verified.device_id.as_str(), verified.module_id.as_str()), (DEVICE, ""));

    // A token of a deleted (or re-created) identity no longer verifies.
    client.delete_module(pb::DeleteModuleRequest { module_id: "modA".into() }).await.unwrap();
    let err = client.verify_token(pb::VerifyTokenRequest { token: token.token.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("no identity"), "{}", err.message());
    client.create_module(create("modA")).await.unwrap();
    let err = client.verify_token(pb::VerifyTokenRequest { token: token.token }).await.unwrap_err();
    assert!(err.message().contains("signature does not match"), "{}", err.message());

    let err = client.issue_token(pb::IssueTokenRequest { module_id: "nope".into(), ttl_secs: 0 }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err =
        client.issue_token(pb::IssueTokenRequest { module_id: "modA".into(), ttl_secs: 10_000_000 }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// Builds a device token signed with the known device key, expiring at `expiry`.
fn device_token(hub: &str, expiry: u64, key_b64: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sr = outpost_core::sas::url_encode(&format!("{hub}/devices/{DEVICE}"));
    let key = openssl::pkey::PKey::hmac(&b64.decode(key_b64).unwrap()).unwrap();
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(format!("{sr}\n{expiry}").as_bytes()).unwrap();
    let sig = outpost_core::sas::url_encode(&b64.encode(signer.sign_to_vec().unwrap()));
    format!("SharedAccessSignature sr={sr}&sig={sig}&se={expiry}")
}

#[tokio::test]
async fn verification_explains_expired_forged_foreign_and_malformed_tokens() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let verify = |token: String| {
        let mut client = client.clone();
        async move { client.verify_token(pb::VerifyTokenRequest { token }).await }
    };

    // Within the 300 s skew tolerance: accepted. Beyond it: expired.
    assert!(verify(device_token(HUB, now - 100, DEVICE_KEY)).await.is_ok());
    let err = verify(device_token(HUB, now - 1000, DEVICE_KEY)).await.unwrap_err();
    assert!(err.message().contains("expired"), "{}", err.message());

    let forged = device_token(HUB, now + 100, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let err = verify(forged).await.unwrap_err();
    assert!(err.message().contains("signature does not match"), "{}", err.message());

    let err = verify(device_token("other-hub.example", now + 100, DEVICE_KEY)).await.unwrap_err();
    assert!(err.message().contains("other-hub.example"), "{}", err.message());

    let err = verify("SharedAccessSignature sr=x".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("malformed"), "{}", err.message());

    // Case of the hub name does not matter, as in IoT Hub.
    assert!(verify(device_token(&HUB.to_uppercase(), now + 100, DEVICE_KEY)).await.is_ok());
    let _ = client.get_device(pb::GetDeviceRequest {}).await.unwrap();
}

#[tokio::test]
async fn device_tokens_pass_an_independent_python_check() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let token =
        client.issue_token(pb::IssueTokenRequest { module_id: String::new(), ttl_secs: 0 }).await.unwrap().into_inner();
    let out = Command::new("python3")
        .arg(workspace_root().join("tests/python/verify_sas.py"))
        .args([&token.token, DEVICE_KEY, &format!("{HUB}/devices/{DEVICE}")])
        .output()
        .expect("python3 must be installed (cargo xtask ci installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid", "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn server_certificates_and_the_trust_bundle_come_from_the_device_ca() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let bundle = client.get_trust_bundle(pb::GetTrustBundleRequest {}).await.unwrap().into_inner().certificate_pem;
    let cert = client
        .issue_server_certificate(pb::IssueServerCertificateRequest {
            common_name: "edgehub".into(),
            dns_names: vec!["outpost-hub.local".into()],
            ip_addresses: vec!["127.0.0.1".into()],
            validity_days: 7,
        })
        .await
        .unwrap()
        .into_inner();
    let chain = openssl::x509::X509::stack_from_pem(cert.certificate_chain_pem.as_bytes()).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].to_pem().unwrap(), bundle.as_bytes(), "chain ends with the CA of the trust bundle");
    let key = openssl::pkey::PKey::private_key_from_pem(cert.private_key_pem.as_bytes()).unwrap();
    assert!(chain[0].public_key().unwrap().public_eq(&key));
    assert!(chain[0].verify(&chain[1].public_key().unwrap()).unwrap());

    let err = client
        .issue_server_certificate(pb::IssueServerCertificateRequest {
            common_name: "hub".into(),
            ip_addresses: vec!["not-an-ip".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("not-an-ip"));
}

#[tokio::test]
async fn identities_and_workload_sockets_survive_a_restart() {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let module = client.create_module(create("modA")).await.unwrap().into_inner();
    let bundle = client.get_trust_bundle(pb::GetTrustBundleRequest {}).await.unwrap().into_inner();
    drop(client);
    let (dir, config) = daemon.stop().await;
    assert!(!config.paths.socket.exists(), "the management socket is removed at shutdown");

    let daemon = Daemon::start_with(dir, config).await;
    let mut client = daemon.client().await;
    let again = client.get_module(pb::GetModuleRequest { module_id: "modA".into() }).await.unwrap().into_inner();
    assert_eq!(again.generation_id, module.generation_id);
    assert_eq!(client.get_trust_bundle(pb::GetTrustBundleRequest {}).await.unwrap().into_inner(), bundle);
    let (status, _) =
        support::workload(&daemon.workload_socket("modA"), "GET", "/trust-bundle?api-version=2019-01-30", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    let daemon = Daemon::start().await;
    let channel = outpost_rpc::connect(&daemon.config.paths.socket).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "outpost.identity.v1.Identity".into() })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving);
}
