//! Caller authorisation by peer credentials.
//!
//! Every call on a Unix socket carries the uid, gid and pid of the process that connected.
//! The [`Policy`] admits root and the daemon's own uid for everything, and other callers
//! only as far as a `[[principal]]` entry for their uid allows. Health checks are open to
//! every local caller. Admitted calls carry a [`Caller`] extension for handlers.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use serde::Deserialize;
use tonic::transport::server::UdsConnectInfo;

/// The gRPC path prefix of the health service, always allowed.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// A configured caller: a uid and the methods it may call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// A name for logs and for handlers (e.g. `"agent"`).
    pub name: String,
    /// The uid the calling process must run as.
    pub uid: u32,
    /// Methods this principal may call: `"*"`, a service (`"outpost.identity.v1.Identity/*"`)
    /// or a method (`"outpost.identity.v1.Identity/IssueToken"`). Defaults to `["*"]`.
    #[serde(default = "allow_all")]
    pub allow: Vec<String>,
}

fn allow_all() -> Vec<String> {
    vec!["*".to_owned()]
}

impl Principal {
    fn allows(&self, path: &str) -> bool {
        let method = path.trim_start_matches('/');
        self.allow.iter().any(|rule| match rule.strip_suffix('*') {
            Some(prefix) => method.starts_with(prefix),
            None => method == rule,
        })
    }
}

/// Who called, as established from the socket's peer credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// The caller's pid, when the kernel reports it.
    pub pid: Option<i32>,
    /// `"root"`, `"self"`, or the matching principal's name.
    pub principal: String,
}

/// The authorisation rules of one socket.
#[derive(Debug, Clone)]
pub struct Policy {
    principals: Vec<Principal>,
    owner_uid: u32,
}

impl Policy {
    /// Rules admitting root, `owner_uid` (normally the daemon's own uid) and `principals`.
    pub fn new(principals: Vec<Principal>, owner_uid: u32) -> Self {
        Self { principals, owner_uid }
    }

    /// Rules for the current process's uid plus `principals`.
    pub fn for_current_user(principals: Vec<Principal>) -> Self {
        Self::new(principals, nix_uid())
    }

    /// Decides a call of gRPC `path` by a peer with `cred`.
    #[allow(clippy::result_large_err)]
    pub fn authorize(&self, cred: Option<tokio::net::unix::UCred>, path: &str) -> Result<Caller, tonic::Status> {
        let cred = cred.ok_or_else(|| tonic::Status::permission_denied("caller has no peer credentials"))?;
        let caller = |principal: &str| Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
            principal: principal.to_owned(),
        };
        if cred.uid() == 0 {
            return Ok(caller("root"));
        }
        if cred.uid() == self.owner_uid {
            return Ok(caller("self"));
        }
        if path.starts_with(HEALTH_PREFIX) {
            return Ok(caller("anyone"));
        }
        match self.principals.iter().find(|p| p.uid == cred.uid() && p.allows(path)) {
            Some(p) => Ok(caller(&p.name)),
            None => Err(tonic::Status::permission_denied(format!(
                "uid {} may not call {path}; add a [[principal]] entry to allow it",
                cred.uid()
            ))),
        }
    }
}

fn nix_uid() -> u32 {
    // The effective uid is what the kernel reports as the peer uid of our own connections.
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0)
}

/// A tower layer applying a [`Policy`] to every call.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    policy: Arc<Policy>,
}

impl AuthorizeLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: Policy) -> Self {
        Self { policy: Arc::new(policy) }
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize { inner, policy: self.policy.clone() }
    }
}

/// The service made by [`AuthorizeLayer`].
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S, B> tower::Service<http::Request<B>> for Authorize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let cred = req.extensions().get::<UdsConnectInfo>().and_then(|info| info.peer_cred);
        match self.policy.authorize(cred, req.uri().path()) {
            Ok(caller) => {
                tracing::debug!(uid = caller.uid, pid = caller.pid, principal = %caller.principal, path = req.uri().path(), "call admitted");
                req.extensions_mut().insert(caller);
                Either::Left(self.inner.call(req))
            }
            Err(status) => {
                tracing::warn!(path = req.uri().path(), reason = status.message(), "call denied");
                Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// The [`Caller`] of a request admitted by [`AuthorizeLayer`].
#[allow(clippy::result_large_err)]
pub fn caller<T>(req: &tonic::Request<T>) -> Result<&Caller, tonic::Status> {
    req.extensions()
        .get::<Caller>()
        .ok_or_else(|| tonic::Status::permission_denied("call did not pass the authorisation layer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(uid: u32, allow: &[&str]) -> Principal {
        Principal { name: format!("p{uid}"), uid, allow: allow.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn principals_match_methods_services_and_wildcards() {
        let p = principal(5, &["outpost.identity.v1.Identity/IssueToken", "outpost.agent.v1.Agent/*"]);
        assert!(p.allows("/outpost.identity.v1.Identity/IssueToken"));
        assert!(!p.allows("/outpost.identity.v1.Identity/CreateModule"));
        assert!(p.allows("/outpost.agent.v1.Agent/ListModules"));
        assert!(principal(6, &["*"]).allows("/anything/at.all"));
    }
}
