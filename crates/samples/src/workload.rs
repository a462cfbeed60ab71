//! The workload API over the module's Unix socket: SAS tokens signed with the module's key
//! (the key never leaves identityd) and the trust bundle for the hub's TLS certificate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use outpost_core::sas::{SasToken, TokenScope, string_to_sign};
use outpost_core::{DeviceId, ModuleId};

use crate::ClientError;
use crate::env::ModuleEnv;

/// How long the tokens asked for are valid.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

async fn call(
    env: &ModuleEnv,
    what: &'static str,
    method: hyper::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, ClientError> {
    let failed = |reason: String| ClientError::Workload { what, reason };
    let stream = tokio::net::UnixStream::connect(&env.workload_socket)
        .await
        .map_err(|e| failed(format!("cannot connect to {}: {e}", env.workload_socket)))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| failed(e.to_string()))?;
    tokio::spawn(connection);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{path}?api-version={}", env.api_version))
        .header("host", "workload")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|e| failed(e.to_string()))?.to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| failed(format!("answered {status} with {}", String::from_utf8_lossy(&bytes))))?;
    if !status.is_success() {
        let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("no message").to_owned();
        return Err(failed(format!("answered {status}: {message}")));
    }
    Ok(value)
}

/// A SAS token for the module, valid until `now + TOKEN_LIFETIME_SECS`.
pub async fn module_token(env: &ModuleEnv, now: u64) -> Result<String, ClientError> {
    let invalid =
        |name: &'static str| move |e: outpost_core::IdError| ClientError::Environment { name, reason: e.to_string() };
    let scope = TokenScope::Module {
        hub: env.hub.clone(),
        device: DeviceId::new(env.device.clone()).map_err(invalid("IOTEDGE_DEVICEID"))?,
        module: ModuleId::new(env.module.clone()).map_err(invalid("IOTEDGE_MODULEID"))?,
    };
    let expiry = now + TOKEN_LIFETIME_SECS;
    let data = string_to_sign(&scope.encoded_resource(), expiry);
    let path = format!(
        "/modules/{}/genid/{}/sign",
        outpost_core::sas::url_encode(&env.module),
        outpost_core::sas::url_encode(&env.generation)
    );
    let body = serde_json::json!({"keyId": "primary", "algo": "HMACSHA256", "data": BASE64.encode(data)});
    let answer = call(env, "sign", hyper::Method::POST, &path, Some(body)).await?;
    let digest = answer
        .get("digest")
        .and_then(|d| d.as_str())
        .and_then(|d| BASE64.decode(d).ok())
        .ok_or(ClientError::Workload { what: "sign", reason: "the answer has no base64 digest".into() })?;
    Ok(SasToken::new(scope, expiry, digest).to_string())
}

/// The PEM certificates modules trust for the hub.
pub async fn trust_bundle(env: &ModuleEnv) -> Result<String, ClientError> {
    let answer = call(env, "trust-bundle", hyper::Method::GET, "/trust-bundle", None).await?;
    answer
        .get("certificate")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
        .ok_or(ClientError::Workload { what: "trust-bundle", reason: "the answer has no certificate".into() })
}
