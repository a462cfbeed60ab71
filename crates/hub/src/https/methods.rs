//! Module-to-module direct methods over HTTPS, the part without I/O: IoT Hub's
//! `POST /twins/{device}[/modules/{module}]/methods` request read into a call, and the answers
//! and errors written as IoT Hub writes them.

use std::time::Duration;

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::Value;

/// Largest method payload, as IoT Hub's (128 KB).
pub const MAX_PAYLOAD: usize = 128 * 1024;
/// Largest request body accepted (the payload plus the envelope).
pub const MAX_BODY: usize = MAX_PAYLOAD + 4 * 1024;
/// IoT Hub's default response timeout.
const DEFAULT_TIMEOUT: u64 = 30;
/// IoT Hub's bounds on the response timeout.
const TIMEOUT_BOUNDS: std::ops::RangeInclusive<u64> = 5..=300;

/// A direct method call read from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodCall {
    /// The target's client id: `{device}/{module}` or `{device}`.
    pub target: String,
    /// The target's device.
    pub device: String,
    /// The method's name.
    pub name: String,
    /// The payload, as JSON text.
    pub payload: Bytes,
    /// How long to wait for the target's answer.
    pub timeout: Duration,
}

/// A request that cannot be served: the HTTP status, IoT Hub's error code and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status.
    pub status: u16,
    /// IoT Hub's six-digit error code.
    pub code: u32,
    /// What went wrong, for the caller.
    pub message: String,
}

impl HttpError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: 400, code: 400_004, message: message.into() }
    }

    /// The JSON body IoT Hub sends with an error.
    pub fn body(&self) -> Vec<u8> {
        serde_json::json!({"errorCode": self.code, "message": self.message}).to_string().into_bytes()
    }
}

fn segment(text: &str, what: &str) -> Result<String, HttpError> {
    let decoded = percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| HttpError::bad_request(format!("the {what} in the path is not UTF-8")))?;
    if decoded.is_empty() || decoded.contains('/') {
        return Err(HttpError::bad_request(format!("the {what} in the path is empty or contains '/'")));
    }
    Ok(decoded.into_owned())
}

/// The target of `path` (`/twins/{d}/methods` or `/twins/{d}/modules/{m}/methods`, ids
/// URL-encoded): `(device, client id)`; `None` when the path is not a method call.
pub fn target(path: &str) -> Option<Result<(String, String), HttpError>> {
    let rest = path.strip_prefix("/twins/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let result = match parts.as_slice() {
        [device, "methods"] => segment(device, "device id").map(|d| (d.clone(), d)),
        [device, "modules", module, "methods"] => segment(device, "device id")
            .and_then(|d| segment(module, "module id").map(|m| (d.clone(), format!("{d}/{m}")))),
        _ => return None,
    };
    Some(result)
}

/// Reads a call to `target` on `device` from the request `body`
/// (`{"methodName", "payload", "responseTimeoutInSeconds", "connectTimeoutInSeconds"}`).
pub fn parse(device: String, target: String, body: &[u8]) -> Result<MethodCall, HttpError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("the request body is not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(HttpError::bad_request("the request body must be a JSON object"));
    };
    let name = match fields.get("methodName") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(_) => return Err(HttpError::bad_request("methodName must be a non-empty string")),
        None => return Err(HttpError::bad_request("methodName is missing")),
    };
    if name.contains(['/', '?', '#', '+']) {
        return Err(HttpError::bad_request(format!("methodName {name:?} contains one of / ? # +")));
    }
    let seconds = |key: &str, default: u64, bounds: std::ops::RangeInclusive<u64>| match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if bounds.contains(&s) => Ok(s),
            _ => Err(HttpError::bad_request(format!(
                "{key} must be a whole number of seconds from {} to {}",
                bounds.start(),
                bounds.end()
            ))),
        },
        Some(_) => Err(HttpError::bad_request(format!("{key} must be a number"))),
    };
    let timeout = seconds("responseTimeoutInSeconds", DEFAULT_TIMEOUT, TIMEOUT_BOUNDS)?;
    seconds("connectTimeoutInSeconds", 0, 0..=300)?;
    let payload = fields.get("payload").cloned().unwrap_or(Value::Null).to_string();
    if payload.len() > MAX_PAYLOAD {
        return Err(HttpError {
            status: 413,
            code: 413_002,
            message: format!("the payload is {} bytes; direct methods take at most {MAX_PAYLOAD}", payload.len()),
        });
    }
    Ok(MethodCall { target, device, name, payload: payload.into(), timeout: Duration::from_secs(timeout) })
}

/// The body of a successful call: `{"status": …, "payload": …}`; a payload that is not JSON
/// is given as a string, an empty one as `null`.
pub fn answer(status: i32, payload: &[u8]) -> Vec<u8> {
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
    };
    serde_json::json!({"status": status, "payload": payload}).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn paths_name_their_target() {
        assert_eq!(
            target("/twins/dev1/modules/filter/methods").unwrap().unwrap(),
            ("dev1".into(), "dev1/filter".into())
        );
        assert_eq!(target("/twins/leaf%2D1/methods").unwrap().unwrap(), ("leaf-1".into(), "leaf-1".into()));
        assert_eq!(target("/twins/dev1/modules/a%2Fb/methods").unwrap().unwrap_err().status, 400);
        assert!(target("/twins/dev1/modules/filter").is_none());
        assert!(target("/devices/dev1/methods").is_none());
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let call = parse("d".into(), "d/m".into(), br#"{"methodName":"reboot","payload":{"delay":3}}"#).unwrap();
        assert_eq!((call.name.as_str(), call.timeout), ("reboot", Duration::from_secs(30)));
        assert_eq!(call.payload, Bytes::from_static(br#"{"delay":3}"#));
        let call = parse("d".into(), "d".into(), br#"{"methodName":"m","responseTimeoutInSeconds":5}"#).unwrap();
        assert_eq!((call.payload, call.timeout), (Bytes::from_static(b"null"), Duration::from_secs(5)));

        let refused = |body: &str| parse("d".into(), "d".into(), body.as_bytes()).unwrap_err();
        assert!(refused("{").message.contains("not JSON"));
        assert!(refused("[]").message.contains("JSON object"));
        assert!(refused("{}").message.contains("methodName is missing"));
        assert!(refused(r#"{"methodName":""}"#).message.contains("non-empty"));
        assert!(refused(r#"{"methodName":"a/b"}"#).message.contains("contains"));
        assert!(refused(r#"{"methodName":"m","responseTimeoutInSeconds":4}"#).message.contains("from 5 to 300"));
        assert!(refused(r#"{"methodName":"m","responseTimeoutInSeconds":"9"}"#).message.contains("a number"));
        let big = format!(r#"{{"methodName":"m","payload":"{}"}}"#, "x".repeat(MAX_PAYLOAD));
        assert_eq!(refused(&big).status, 413);
    }

    #[test]
    fn answers_carry_json_payloads() {
        let parsed = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        assert_eq!(parsed(answer(200, br#"{"ok":1}"#)), serde_json::json!({"status": 200, "payload": {"ok": 1}}));
        assert_eq!(parsed(answer(500, b"")), serde_json::json!({"status": 500, "payload": null}));
        assert_eq!(parsed(answer(200, b"plain")), serde_json::json!({"status": 200, "payload": "plain"}));
    }
}
