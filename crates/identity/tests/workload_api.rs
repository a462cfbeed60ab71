//! Every workload API endpoint over a module's own Unix socket, and the official Azure IoT
//! Python SDK obtaining its token and trust bundle through it.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use outpost_proto::identity::v1 as pb;
use serde_json::json;
use support::{DEVICE, Daemon, HUB, workload, workspace_root};

const V: &str = "api-version=2022-08-03";

async fn with_module(module: &str) -> (Daemon, String) {
    let daemon = Daemon::start().await;
    let mut client = daemon.client().await;
    let identity = client
        .create_module(pb::CreateModuleRequest { module_id: module.into(), managed_by: "test".into() })
        .await
        .unwrap()
        .into_inner();
    (daemon, identity.generation_id)
}

#[tokio::test]
async fn sign_answers_a_body_without_content_type_with_a_verifiable_digest() {
    let (daemon, gen_id) = with_module("modA").await;
    let socket = daemon.workload_socket("modA");
    let data = B64.encode(format!("{HUB}%2Fdevices%2F{DEVICE}%2Fmodules%2FmodA\n1795467989"));
    let body = json!({"keyId": "primary", "algo": "HMACSHA256", "data": data}).to_string();
    let (status, answer) =
        workload(&socket, "POST", &format!("/modules/modA/genid/{gen_id}/sign?{V}"), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let digest = answer["digest"].as_str().unwrap();

    // The digest makes a token the daemon's own verifier accepts.
    let token = format!(
        "SharedAccessSignature sr={HUB}%2Fdevices%2F{DEVICE}%2Fmodules%2FmodA&sig={}&se=1795467989",
        outpost_core::sas::url_encode(digest)
    );
    let mut client = daemon.client().await;
    let err = client.verify_token(pb::VerifyTokenRequest { token }).await.unwrap_err();
    assert!(err.message().contains("expired"), "signature accepted, only the 2026 expiry fails: {}", err.message());
}

#[tokio::test]
async fn a_socket_serves_only_its_own_module() {
    let (daemon, gen_id) = with_module("modA").await;
    let mut client = daemon.client().await;
    let other = client
        .create_module(pb::CreateModuleRequest { module_id: "modB".into(), managed_by: "t".into() })
        .await
        .unwrap()
        .into_inner();
    let body = json!({"keyId": "primary", "algo": "HMACSHA256", "data": "AA=="}).to_string();
    let socket_a = daemon.workload_socket("modA");
    let (status, answer) =
        workload(&socket_a, "POST", &format!("/modules/modB/genid/{}/sign?{V}", other.generation_id), Some(&body))
            .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("serves module modA"));
    let (status, _) = workload(&socket_a, "POST", &format!("/modules/modA/genid/{gen_id}/sign?{V}"), Some(&body)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (daemon, gen_id) = with_module("modA").await;
    let socket = daemon.workload_socket("modA");
    let sign = format!("/modules/modA/genid/{gen_id}/sign");
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        ("POST", sign.clone(), Some("{}"), 400, "api-version"),
        ("POST", format!("{sign}?api-version=2001-01-01"), Some("{}"), 400, "not supported"),
        ("POST", format!("{sign}?{V}"), Some("{not json"), 400, "invalid request body"),
        ("POST", format!("{sign}?{V}"), Some(r#"{"keyId":"primary","algo":"HMACSHA256","data":"!!"}"#), 400, "base64"),
        ("POST", format!("{sign}?{V}"), Some(r#"{"keyId":"secondary","algo":"HMACSHA256","data":""}"#), 400, "keyId"),
        ("POST", format!("{sign}?{V}"), Some(r#"{"keyId":"primary","algo":"MD5","data":""}"#), 400, "algo"),
        ("POST", format!("/modules/modA/genid/stale/sign?{V}"), Some("{}"), 404, "generation"),
        ("GET", format!("{sign}?{V}"), None, 405, "POST"),
        ("GET", format!("/nothing/here?{V}"), None, 404, "no workload API route"),
    ];
    for (method, target, body, expected, words) in cases {
        let (status, answer) = workload(&socket, method, &target, body).await;
        assert_eq!(status, expected, "{method} {target}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{method} {target}: {message}");
    }
}

#[tokio::test]
async fn encrypt_and_decrypt_are_bound_to_module_generation_and_iv() {
    let (daemon, gen_id) = with_module("modA").await;
    let socket = daemon.workload_socket("modA");
    let iv = B64.encode("iv-1");
    let plaintext = B64.encode("secret configuration");
    let body = json!({"plaintext": plaintext, "initializationVector": iv}).to_string();
    let (status, answer) =
        workload(&socket, "POST", &format!("/modules/modA/genid/{gen_id}/encrypt?{V}"), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let ciphertext = answer["ciphertext"].as_str().unwrap().to_owned();

    let decrypt = |iv: String| json!({"ciphertext": ciphertext, "initializationVector": iv}).to_string();
    let target = format!("/modules/modA/genid/{gen_id}/decrypt?{V}");
    let (status, answer) = workload(&socket, "POST", &target, Some(&decrypt(iv.clone()))).await;
    assert_eq!((status, answer["plaintext"].as_str().unwrap()), (200, plaintext.as_str()));
    let (status, answer) = workload(&socket, "POST", &target, Some(&decrypt(B64.encode("iv-2")))).await;
    assert_eq!(status, 400, "another IV does not decrypt: {answer}");

    // A re-created identity (new generation) cannot read the old generation's data.
    let mut client = daemon.client().await;
    client.delete_module(pb::DeleteModuleRequest { module_id: "modA".into() }).await.unwrap();
    let reborn = client
        .create_module(pb::CreateModuleRequest { module_id: "modA".into(), managed_by: "t".into() })
        .await
        .unwrap()
        .into_inner();
    let target = format!("/modules/modA/genid/{}/decrypt?{V}", reborn.generation_id);
    let (status, _) = workload(&socket, "POST", &target, Some(&decrypt(iv))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn certificates_and_trust_bundle_have_azure_shapes() {
    let (daemon, gen_id) = with_module("$edgeHub").await;
    let socket = daemon.workload_socket("$edgeHub");
    let (status, bundle) = workload(&socket, "GET", "/trust-bundle?api-version=2019-01-30", None).await;
    assert_eq!(status, 200);
    let ca_pem = bundle["certificate"].as_str().unwrap();
    let ca = openssl::x509::X509::from_pem(ca_pem.as_bytes()).unwrap();

    let body = json!({"commonName": "outpost-gw.local"}).to_string();
    let target = format!("/modules/%24edgeHub/genid/{gen_id}/certificate/server?{V}");
    let (status, answer) = workload(&socket, "POST", &target, Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["privateKey"]["type"], "key");
    assert!(answer["privateKey"]["bytes"].as_str().unwrap().contains("PRIVATE KEY"));
    assert!(answer["expiration"].as_str().unwrap().ends_with('Z'));
    let leaf =
        openssl::x509::X509::stack_from_pem(answer["certificate"].as_str().unwrap().as_bytes()).unwrap().remove(0);
    assert!(leaf.verify(&ca.public_key().unwrap()).unwrap());
    let names: Vec<String> =
        leaf.subject_alt_names().unwrap().iter().filter_map(|n| n.dnsname().map(str::to_owned)).collect();
    assert_eq!(names, ["outpost-gw.local", "edgeHub"]);

    let (status, answer) =
        workload(&socket, "POST", &format!("/modules/%24edgeHub/certificate/identity?{V}"), Some("")).await;
    assert_eq!(status, 201, "{answer}");
    let leaf =
        openssl::x509::X509::stack_from_pem(answer["certificate"].as_str().unwrap().as_bytes()).unwrap().remove(0);
    #[allow(deprecated)]
    let cn = leaf.subject_name().entries().next().unwrap().data().as_utf8().unwrap().to_string();
    assert_eq!(cn, "$edgeHub");
}

#[tokio::test]
async fn the_official_azure_python_sdk_gets_a_valid_token_and_trust_bundle() {
    let (daemon, gen_id) = with_module("pymod").await;
    let socket = daemon.workload_socket("pymod");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(workspace_root().join("tests/python/sdk_module.py"))
            .env("IOTEDGE_IOTHUBHOSTNAME", HUB)
            .env("IOTEDGE_DEVICEID", DEVICE)
            .env("IOTEDGE_MODULEID", "pymod")
            .env("IOTEDGE_GATEWAYHOSTNAME", "localhost")
            .env("IOTEDGE_MODULEGENERATIONID", gen_id)
            .env("IOTEDGE_WORKLOADURI", format!("unix://{}", socket.display()))
            .env("IOTEDGE_APIVERSION", "2019-01-30")
            .env("IOTEDGE_AUTHSCHEME", "sasToken")
            .output()
            .expect("python3 must be installed")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the SDK failed (is azure-iot-device installed? cargo xtask ci installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut client = daemon.client().await;
    let verified = client
        .verify_token(pb::VerifyTokenRequest { token: seen["token"].as_str().unwrap().to_owned() })
        .await
        .expect("the SDK's token verifies")
        .into_inner();
    assert_eq!((verified.device_id.as_str(), verified.module_id.as_str()), (DEVICE, "pymod"));
    let bundle = client.get_trust_bundle(pb::GetTrustBundleRequest {}).await.unwrap().into_inner();
    assert_eq!(seen["trust_bundle"].as_str().unwrap(), bundle.certificate_pem);
}
