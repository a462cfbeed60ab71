//! The HTTP endpoint RabbitMQ's auth backend (`rabbitmq_auth_backend_http`) asks:
//! `/auth/user`, `/auth/vhost`, `/auth/resource`, `/auth/topic`, with form parameters (POST
//! body or GET query), answered `allow [tags]` or `deny` by [`policy::Policy`]. Refusals are
//! logged with their reason; the broker only hears "deny".

pub mod policy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::Cloud;
use policy::{Decision, Permission, Policy, Resource};

/// Largest request body read (the broker's are a few hundred bytes; a token fits easily).
const MAX_BODY: usize = 16 * 1024;
/// How long the broker may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `application/x-www-form-urlencoded` text.
pub fn form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// Answers one question given its path and parameters.
pub fn answer(
    policy: &Policy,
    cloud: &Cloud,
    path: &str,
    params: &HashMap<String, String>,
) -> Result<Decision, String> {
    let get = |name: &str| params.get(name).map(String::as_str).ok_or_else(|| format!("missing parameter {name:?}"));
    let username = get("username")?;
    match path {
        "/auth/user" => {
            let decision =
                policy.user(username, get("password")?, |device, token| cloud.authenticate_device(device, token));
            if matches!(decision, Decision::Allow(_)) && !policy.is_service(username) {
                // Sign-ins are activity.
                cloud.touch(username, None);
            }
            Ok(decision)
        }
        "/auth/vhost" => Ok(policy.vhost(username, get("vhost")?)),
        "/auth/resource" => {
            let resource = Resource::parse(get("resource")?).ok_or("unknown resource kind")?;
            let permission = Permission::parse(get("permission")?).ok_or("unknown permission")?;
            Ok(policy.resource(username, get("vhost")?, resource, get("name")?, permission))
        }
        "/auth/topic" => {
            let permission = Permission::parse(get("permission")?).ok_or("unknown permission")?;
            Ok(policy.topic(username, get("vhost")?, get("name")?, permission, get("routing_key")?))
        }
        other => Err(format!("no such endpoint {other:?}")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn respond(request: Request<Incoming>, policy: &Policy, cloud: &Arc<Cloud>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let params = match *request.method() {
        Method::GET => form(request.uri().query().unwrap_or("")),
        Method::POST => match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => form(&String::from_utf8_lossy(&body.to_bytes())),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("unreadable body: {e}")),
        },
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST".into()),
    };
    let (policy, cloud, path_for_task) = (policy.clone(), cloud.clone(), path.clone());
    // The user check reads (and may write) the store: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || answer(&policy, &cloud, &path_for_task, &params)).await;
    match result {
        Ok(Ok(decision)) => {
            if let Decision::Deny(reason) = &decision {
                tracing::info!(%path, %reason, "broker access denied");
            }
            text(StatusCode::OK, decision.body())
        }
        Ok(Err(problem)) => text(StatusCode::BAD_REQUEST, problem),
        Err(e) => {
            tracing::error!(error = %e, "broker auth check failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

/// Serves the endpoint on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, policy: Policy, cloud: Arc<Cloud>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "broker auth accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (policy, cloud, stop) = (policy.clone(), cloud.clone(), shutdown.clone());
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (policy, cloud) = (policy.clone(), cloud.clone());
                async move { Ok::<_, std::convert::Infallible>(respond(request, &policy, &cloud).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        let params = form("username=d%2E1&password=SharedAccessSignature+sr%3Dx&empty=&flag");
        assert_eq!(params["username"], "d.1");
        assert_eq!(params["password"], "SharedAccessSignature sr=x");
        assert_eq!(params["empty"], "");
        assert_eq!(params["flag"], "");
    }
}
