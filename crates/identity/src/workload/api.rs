//! The workload API without I/O: a request (method, path with query, body) for a socket that
//! serves one module becomes a status and a JSON body, in Azure IoT Edge's shapes.
//!
//! | request | answer |
//! |---|---|
//! | `GET /trust-bundle` | 200 `{certificate}` |
//! | `POST /modules/{m}/genid/{g}/sign` `{keyId, algo, data}` | 200 `{digest}` |
//! | `POST /modules/{m}/genid/{g}/encrypt` `{plaintext, initializationVector}` | 200 `{ciphertext}` |
//! | `POST /modules/{m}/genid/{g}/decrypt` `{ciphertext, initializationVector}` | 200 `{plaintext}` |
//! | `POST /modules/{m}/genid/{g}/certificate/server` `{commonName}` | 201 `{privateKey, certificate, expiration}` |
//! | `POST /modules/{m}/certificate/identity` | 201 `{privateKey, certificate, expiration}` |
//!
//! Every request needs a published `?api-version=`. Errors are `{"message": …}` with 400
//! (bad request), 403 (another module's path), 404 (unknown route or module), 405, 500.
//! The body is parsed as JSON whatever its Content-Type (the Python SDK sends none).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::ModuleId;
use outpost_core::api_version;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::certs::{IssuedCertificate, LeafRequest};
use crate::modules::ModuleIdentity;
use crate::service::{IdentityService, ServiceError, decode_base64};
use outpost_core::time::rfc3339;

/// Largest request body accepted, bytes.
pub const MAX_BODY: usize = 1 << 20;

/// A response: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Response {
    fn ok(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// An error response with `{"message": …}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }) }
    }
}

/// Which operation a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    TrustBundle,
    Sign(String, String),
    Encrypt(String, String),
    Decrypt(String, String),
    ServerCert(String, String),
    IdentityCert(String),
}

fn route(method: &str, path: &str) -> Result<Route, Response> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (expected, route) = match segs.as_slice() {
        ["trust-bundle"] => ("GET", Route::TrustBundle),
        ["modules", m, "genid", g, "sign"] => ("POST", Route::Sign((*m).into(), (*g).into())),
        ["modules", m, "genid", g, "encrypt"] => ("POST", Route::Encrypt((*m).into(), (*g).into())),
        ["modules", m, "genid", g, "decrypt"] => ("POST", Route::Decrypt((*m).into(), (*g).into())),
        ["modules", m, "genid", g, "certificate", "server"] => ("POST", Route::ServerCert((*m).into(), (*g).into())),
        ["modules", m, "certificate", "identity"] => ("POST", Route::IdentityCert((*m).into())),
        _ => return Err(Response::error(404, format!("no workload API route for {path}"))),
    };
    if method != expected {
        return Err(Response::error(405, format!("{path} accepts {expected}, not {method}")));
    }
    Ok(route)
}

fn check_api_version(query: Option<&str>) -> Result<(), Response> {
    let version = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "api-version")
        .map(|(_, v)| v);
    match version {
        None => Err(Response::error(400, "the api-version query parameter is required")),
        Some(v) if api_version::is_supported(v) => Ok(()),
        Some(v) => Err(Response::error(
            400,
            format!("api-version {v:?} is not supported; use one of {}", api_version::WORKLOAD_API_VERSIONS.join(", ")),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignRequest {
    key_id: String,
    algo: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptRequest {
    plaintext: String,
    initialization_vector: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecryptRequest {
    ciphertext: String,
    initialization_vector: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerCertRequest {
    common_name: String,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| Response::error(400, format!("invalid request body: {e}")))
}

fn service_error(e: ServiceError) -> Response {
    match &e {
        ServiceError::UnknownModule(_) => Response::error(404, e.to_string()),
        ServiceError::StaleGeneration { .. } => Response::error(404, e.to_string()),
        ServiceError::InvalidArgument(_) | ServiceError::DecryptFailed(_) => Response::error(400, e.to_string()),
        ServiceError::Cert(crate::certs::CertError::InvalidRequest(_)) => Response::error(400, e.to_string()),
        _ => {
            tracing::error!(error = ?e, "workload request failed");
            Response::error(500, "internal error")
        }
    }
}

fn cert_response(issued: IssuedCertificate) -> Response {
    Response::ok(
        201,
        json!({
            "privateKey": { "type": "key", "bytes": issued.key_pem },
            "certificate": issued.chain_pem,
            "expiration": rfc3339(issued.not_after),
        }),
    )
}

/// Answers one request on the socket of `socket_module`. `path_and_query` is the request
/// target as received.
pub fn handle(
    service: &IdentityService,
    socket_module: &ModuleId,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Response {
    match handle_inner(service, socket_module, method, path_and_query, body) {
        Ok(response) | Err(response) => response,
    }
}

fn handle_inner(
    service: &IdentityService,
    socket_module: &ModuleId,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let route = route(method, path)?;
    check_api_version(query)?;
    let own = |module: &str| -> Result<(), Response> {
        if module == socket_module.as_str() {
            Ok(())
        } else {
            Err(Response::error(403, format!("this workload socket serves module {socket_module}, not {module:?}")))
        }
    };
    let at = |module: &str, generation: &str| -> Result<ModuleIdentity, Response> {
        own(module)?;
        service.module_at(socket_module, generation).map_err(service_error)
    };
    match route {
        Route::TrustBundle => {
            let pem = service.trust_bundle();
            Ok(Response::ok(200, json!({ "certificate": pem })))
        }
        Route::Sign(m, g) => {
            let identity = at(&m, &g)?;
            let req: SignRequest = parse(body)?;
            if req.key_id != "primary" {
                return Err(Response::error(400, format!("keyId {:?} is not supported; use \"primary\"", req.key_id)));
            }
            if req.algo != "HMACSHA256" {
                return Err(Response::error(400, format!("algo {:?} is not supported; use \"HMACSHA256\"", req.algo)));
            }
            let data = decode_base64("data", &req.data).map_err(service_error)?;
            let digest = service.sign_for_module(&identity, &data).map_err(service_error)?;
            Ok(Response::ok(200, json!({ "digest": BASE64.encode(digest) })))
        }
        Route::Encrypt(m, g) => {
            let identity = at(&m, &g)?;
            let req: EncryptRequest = parse(body)?;
            let plaintext = decode_base64("plaintext", &req.plaintext).map_err(service_error)?;
            let iv = decode_base64("initializationVector", &req.initialization_vector).map_err(service_error)?;
            let blob = service.encrypt(&identity, &plaintext, &iv).map_err(service_error)?;
            Ok(Response::ok(200, json!({ "ciphertext": BASE64.encode(blob) })))
        }
        Route::Decrypt(m, g) => {
            let identity = at(&m, &g)?;
            let req: DecryptRequest = parse(body)?;
            let blob = decode_base64("ciphertext", &req.ciphertext).map_err(service_error)?;
            let iv = decode_base64("initializationVector", &req.initialization_vector).map_err(service_error)?;
            let plaintext = service.decrypt(&identity, &blob, &iv).map_err(service_error)?;
            Ok(Response::ok(200, json!({ "plaintext": BASE64.encode(plaintext) })))
        }
        Route::ServerCert(m, g) => {
            at(&m, &g)?;
            let req: ServerCertRequest = parse(body)?;
            let mut dns_names = Vec::new();
            let module_name = socket_module.as_str().trim_start_matches('$').to_owned();
            if module_name != req.common_name && crate::certs::is_dns_name(&module_name) {
                dns_names.push(module_name);
            }
            let request = LeafRequest::Server { common_name: req.common_name, dns_names, ip_addresses: Vec::new() };
            service.issue_server_certificate(&request, 0).map(cert_response).map_err(service_error)
        }
        Route::IdentityCert(m) => {
            own(&m)?;
            let identity = service.module(socket_module).map_err(service_error)?;
            service.issue_identity_certificate(&identity).map(cert_response).map_err(service_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_module_ids_and_check_methods() {
        assert_eq!(
            route("POST", "/modules/%24edgeHub/genid/42/sign").unwrap(),
            Route::Sign("$edgeHub".into(), "42".into())
        );
        assert_eq!(route("GET", "/trust-bundle").unwrap(), Route::TrustBundle);
        assert_eq!(route("GET", "/modules/a/genid/1/sign").unwrap_err().status, 405);
        assert_eq!(route("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(route("POST", "/modules/a/certificate/identity").unwrap(), Route::IdentityCert("a".into()));
    }

    fn service() -> (tempfile::TempDir, IdentityService, ModuleIdentity) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::under(dir.path(), outpost_core::DeviceId::new("d").unwrap(), "h");
        let service = crate::open(&config).unwrap();
        let (identity, _) = service.create_module(&ModuleId::new("m").unwrap(), "t").unwrap();
        (dir, service, identity)
    }

    #[test]
    fn arbitrary_requests_never_panic_and_get_a_known_status() {
        use proptest::prelude::*;
        let (_dir, service, identity) = service();
        let mut runner = proptest::test_runner::TestRunner::default();
        let any_request = (
            prop_oneof!["GET", "POST", "PUT", "DELETE"],
            "(/[a-zA-Z%0-9.$-]{0,12}){0,7}(\\?[a-z=&0-9-]{0,40})?",
            proptest::collection::vec(any::<u8>(), 0..300),
        );
        runner
            .run(&any_request, |(method, target, body)| {
                let r = handle(&service, &identity.module_id, &method, &target, &body);
                prop_assert!([200, 201, 400, 403, 404, 405].contains(&r.status), "{} {target}", r.status);
                Ok(())
            })
            .unwrap();

        // Well-routed requests with hostile bodies.
        let generation = identity.generation_id.to_string();
        let routed = (
            prop_oneof!["sign", "encrypt", "decrypt", "certificate/server"],
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                "\\{\"(keyId|algo|data|plaintext|ciphertext|initializationVector|commonName)\": ?\"[ -~]{0,40}\"\\}",
            ],
        );
        runner
            .run(&routed, |(op, body)| {
                let target = format!("/modules/m/genid/{generation}/{op}?api-version=2019-01-30");
                let r = handle(&service, &identity.module_id, "POST", &target, body.as_bytes());
                prop_assert!([200, 201, 400].contains(&r.status), "{} {op} {body}: {}", r.status, r.body);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn api_versions_are_required_and_checked() {
        assert!(check_api_version(Some("api-version=2018-06-28")).is_ok());
        assert!(check_api_version(Some("x=1&api-version=2022-08-03")).is_ok());
        assert_eq!(check_api_version(None).unwrap_err().status, 400);
        let err = check_api_version(Some("api-version=1999-01-01")).unwrap_err();
        assert!(err.body["message"].as_str().unwrap().contains("2019-01-30"));
    }
}
