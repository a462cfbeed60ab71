//! The hub's HTTPS endpoint (443 by default, the port Azure's SDKs dial): module-to-module
//! direct methods (`POST /twins/{d}/modules/{m}/methods`, the SDK's `invoke_method`),
//! authenticated by the caller's SAS token in `Authorization`, and MQTT over WebSockets
//! (`GET /$iothub/websocket`, subprotocol `mqtt`), authenticated by its CONNECT as on 8883.
//!
//! - [`methods`]: requests and answers without I/O;
//! - [`websocket`]: the WebSocket handshake and frames.

pub mod methods;
pub mod websocket;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::broker::methods::CallRefused;
use crate::mqtt::reason;
use crate::server::{CallError, Handle, now};
use methods::HttpError;

/// What every HTTPS connection needs.
#[derive(Debug)]
pub struct Context {
    /// Verifies callers' tokens.
    pub authenticator: Arc<Authenticator>,
    /// The broker.
    pub handle: Handle,
    /// This device: only its modules may call.
    pub device: String,
    /// Largest MQTT packet accepted (WebSocket frames may be twice that).
    pub max_packet_size: usize,
}

/// How long a client may take to send its request head.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves HTTP/1.1 on `stream` until the client closes it or `shutdown`.
pub async fn serve_connection<S>(stream: S, context: Arc<Context>, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stop = shutdown.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (context, stop) = (context.clone(), stop.clone());
        async move {
            let response = if request.uri().path() == websocket::PATH {
                upgrade(request, &context, stop)
            } else {
                respond(request, &context).await
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

fn json(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// Answers a WebSocket upgrade to MQTT and hands the upgraded connection to the broker.
fn upgrade(mut request: Request<Incoming>, context: &Context, shutdown: CancellationToken) -> Response<Full<Bytes>> {
    let header = |name: &str| header_text(&request, name).map(str::to_owned);
    let refuse = |status: u16, message: &str| {
        tracing::info!(status, reason = message, "WebSocket upgrade refused");
        json(status, HttpError { status, code: u32::from(status) * 1000 + 1, message: message.into() }.body())
    };
    let upgrade_asked = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = header("sec-websocket-key").filter(|_| upgrade_asked && request.method() == Method::GET) else {
        return refuse(400, "MQTT over WebSockets needs GET with Upgrade: websocket and Sec-WebSocket-Key");
    };
    if header("sec-websocket-version").as_deref() != Some("13") {
        let mut response = refuse(426, "only WebSocket version 13 is spoken");
        response.headers_mut().insert("sec-websocket-version", header::HeaderValue::from_static("13"));
        return response;
    }
    let offered = header("sec-websocket-protocol").unwrap_or_default();
    if !offered.split(',').any(|p| p.trim().eq_ignore_ascii_case("mqtt")) {
        return refuse(400, "the WebSocket subprotocol must be mqtt");
    }
    let upgraded = hyper::upgrade::on(&mut request);
    let handle = context.handle.clone();
    let max = context.max_packet_size.saturating_mul(2);
    tokio::spawn(async move {
        match upgraded.await {
            Ok(io) => {
                let stream = websocket::WsStream::new(hyper_util::rt::TokioIo::new(io), max);
                handle.serve_mqtt(stream, shutdown).await;
            }
            Err(e) => tracing::info!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    headers.insert("sec-websocket-protocol", header::HeaderValue::from_static("mqtt"));
    if let Ok(accept) = header::HeaderValue::from_str(&websocket::accept_key(&key)) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

async fn respond(request: Request<Incoming>, context: &Context) -> Response<Full<Bytes>> {
    match method_call(request, context).await {
        Ok(body) => json(200, body),
        Err(error) => {
            tracing::info!(status = error.status, reason = error.message, "direct method refused");
            json(error.status, error.body())
        }
    }
}

fn header_text<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Serves `POST /twins/{d}[/modules/{m}]/methods`: the answer's body, or why not.
async fn method_call(request: Request<Incoming>, context: &Context) -> Result<Vec<u8>, HttpError> {
    let path = request.uri().path();
    let Some(target) = methods::target(path) else {
        return Err(HttpError { status: 404, code: 404_001, message: format!("no resource at {path}") });
    };
    if request.method() != Method::POST {
        return Err(HttpError { status: 405, code: 405_001, message: "direct methods are called with POST".into() });
    }
    let (device, target) = target?;

    // The caller: a module of this device, by its SAS token.
    let unauthorized = |message: String| HttpError { status: 401, code: 401_002, message };
    let forbidden = |message: String| HttpError { status: 403, code: 403_004, message };
    let Some(token) = header_text(&request, "authorization") else {
        return Err(unauthorized("the Authorization header with a SAS token is missing".into()));
    };
    let caller = context.authenticator.verify_token(token, now()).await.map_err(|refusal| {
        if refusal.v5 == reason::SERVER_UNAVAILABLE {
            HttpError { status: 503, code: 503_001, message: refusal.reason }
        } else {
            unauthorized(refusal.reason)
        }
    })?;
    let Some(module) = caller.module.as_deref().filter(|_| caller.device == context.device) else {
        return Err(forbidden(format!("only modules of device {} may call direct methods here", context.device)));
    };
    let caller_id = format!("{}/{module}", caller.device);
    if let Some(claimed) = header_text(&request, "x-ms-edge-moduleid")
        && claimed != caller_id
    {
        return Err(forbidden(format!("x-ms-edge-moduleId says {claimed}, the token is {caller_id}'s")));
    }

    let body = Limited::new(request.into_body(), methods::MAX_BODY).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            HttpError {
                status: 413,
                code: 413_002,
                message: format!("the request is over {} bytes", methods::MAX_BODY),
            }
        } else {
            HttpError::bad_request(format!("cannot read the request body: {e}"))
        }
    })?;
    let call = methods::parse(device, target, &body.to_bytes())?;
    tracing::debug!(caller = caller_id, target = call.target, method = call.name, "direct method");
    match context.handle.call(&call.target, &call.name, call.payload, call.timeout).await {
        Ok((status, payload)) => Ok(methods::answer(status, &payload)),
        Err(CallError::Refused(refused @ (CallRefused::NotConnected(_) | CallRefused::NotListening(_)))) => {
            Err(HttpError { status: 404, code: 404_103, message: refused.to_string() })
        }
        Err(timeout @ CallError::TimedOut(_)) => {
            Err(HttpError { status: 504, code: 504_101, message: format!("{}: {timeout}", call.target) })
        }
        Err(CallError::Stopped) => Err(HttpError { status: 503, code: 503_001, message: "the hub is stopping".into() }),
    }
}
