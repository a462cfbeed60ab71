//! Who a client is and what it may do.
//!
//! - [`identity`]: IoT Hub-style CONNECTs (client id `{device}/{module}` or `{device}`, user
//!   name `{hub}/{device}[/{module}]/?api-version=…`, a SAS token as password), checked for
//!   consistency without I/O;
//! - [`access`]: what an identity may publish and subscribe to: a module only its own IoT Hub
//!   topics, a leaf device its own, configured users their ACLs;
//! - [`verify`]: token verification through outpost-identityd, cached until expiry;
//! - [`Authenticator`]: puts them together for a CONNECT.

pub mod access;
pub mod identity;
pub mod verify;

use std::sync::Arc;

use serde::Deserialize;

use crate::mqtt::{Connect, reason};
pub use access::Access;
use identity::{Claim, claim};
use verify::TokenVerifier;

/// A configured user/password client for plain pub/sub, with its ACL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// User name.
    pub name: String,
    /// Password, compared in constant time.
    pub password: String,
    /// Topic filters it may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topic filters it may subscribe to.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Clients without IoT Hub credentials or a configured user are accepted, with the
    /// anonymous ACL below.
    pub allow_anonymous: bool,
    /// Topic filters anonymous clients may publish to.
    pub anonymous_publish: Vec<String>,
    /// Topic filters anonymous clients may subscribe to.
    pub anonymous_subscribe: Vec<String>,
    /// Configured users.
    pub user: Vec<User>,
}

/// A refused CONNECT: the return code for each version and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 3.1.1 return code.
    pub v311: u8,
    /// 5.0 reason code.
    pub v5: u8,
    /// Why, for logs and the 5.0 reason string.
    pub reason: String,
}

impl Refusal {
    fn bad_credentials(reason: impl Into<String>) -> Self {
        Self { v311: reason::V311_BAD_CREDENTIALS, v5: reason::BAD_USER_NAME_OR_PASSWORD, reason: reason.into() }
    }

    fn not_authorized(reason: impl Into<String>) -> Self {
        Self { v311: reason::V311_NOT_AUTHORIZED, v5: reason::NOT_AUTHORIZED, reason: reason.into() }
    }

    fn identifier(reason: impl Into<String>) -> Self {
        Self { v311: reason::V311_IDENTIFIER_REJECTED, v5: reason::CLIENT_IDENTIFIER_NOT_VALID, reason: reason.into() }
    }

    fn unavailable(reason: impl Into<String>) -> Self {
        Self { v311: reason::V311_SERVER_UNAVAILABLE, v5: reason::SERVER_UNAVAILABLE, reason: reason.into() }
    }
}

/// An accepted client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// What it may do.
    pub access: Access,
    /// When its credentials expire (seconds since the epoch): the connection is closed then.
    pub expires_at: Option<u64>,
}

/// Decides CONNECTs.
#[derive(Debug, Clone)]
pub struct Authenticator {
    config: AuthConfig,
    /// The IoT Hub name and the token verifier; `None` when no identity service is
    /// configured (IoT Hub identities are then refused).
    iothub: Option<(String, Arc<dyn TokenVerifier>)>,
}

fn same(a: &[u8], b: &[u8]) -> bool {
    // Constant time in the length of the configured password.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// Accepts IoT Hub identities of hub `hub` verified by `verifier` (when given), and
    /// what `config` allows.
    pub fn new(config: AuthConfig, iothub: Option<(String, Arc<dyn TokenVerifier>)>) -> Self {
        Self { config, iothub }
    }

    async fn verify(verifier: &dyn TokenVerifier, token: &str, now: u64) -> Result<verify::Verified, Refusal> {
        verifier.verify(token, now).await.map_err(|e| match e {
            verify::VerifyError::Rejected(why) => Refusal::bad_credentials(why),
            verify::VerifyError::Unavailable(why) => Refusal::unavailable(why),
        })
    }

    /// Verifies an IoT Hub SAS token on its own (HTTPS requests carry one in
    /// `Authorization`), at time `now`.
    pub async fn verify_token(&self, token: &str, now: u64) -> Result<verify::Verified, Refusal> {
        let Some((_, verifier)) = &self.iothub else {
            return Err(Refusal::not_authorized("IoT Hub identities need outpost-identityd ([identity] socket)"));
        };
        Self::verify(verifier.as_ref(), token, now).await
    }

    /// Decides `connect` at time `now` (seconds since the epoch).
    pub async fn authenticate(&self, connect: &Connect, now: u64) -> Result<Authenticated, Refusal> {
        match claim(connect).map_err(Refusal::identifier)? {
            Claim::IotHub { hub, device, module } => {
                let Some((our_hub, verifier)) = &self.iothub else {
                    return Err(Refusal::not_authorized(
                        "IoT Hub identities need outpost-identityd ([identity] socket)",
                    ));
                };
                if !hub.eq_ignore_ascii_case(our_hub) {
                    return Err(Refusal::not_authorized(format!("this hub is {our_hub}, not {hub}")));
                }
                let Some(password) = &connect.password else {
                    return Err(Refusal::bad_credentials("IoT Hub identities need a SAS token as password"));
                };
                let token = std::str::from_utf8(password)
                    .map_err(|_| Refusal::bad_credentials("the SAS token is not UTF-8"))?;
                let verified = Self::verify(verifier.as_ref(), token, now).await?;
                if verified.device != device || verified.module != module {
                    return Err(Refusal::not_authorized(format!(
                        "the token is for {}{}, the client claims {device}{}",
                        verified.device,
                        verified.module.as_deref().map(|m| format!("/{m}")).unwrap_or_default(),
                        module.as_deref().map(|m| format!("/{m}")).unwrap_or_default()
                    )));
                }
                let access = match module {
                    Some(module) => Access::Module { device, module },
                    None => Access::Device { device },
                };
                Ok(Authenticated { access, expires_at: Some(verified.expiry) })
            }
            Claim::Plain { username: Some(name) } => {
                let user = self.config.user.iter().find(|u| u.name == name);
                match (user, &connect.password) {
                    (Some(user), Some(password)) if same(password, user.password.as_bytes()) => Ok(Authenticated {
                        access: Access::Rules { publish: user.publish.clone(), subscribe: user.subscribe.clone() },
                        expires_at: None,
                    }),
                    _ => Err(Refusal::bad_credentials(format!("unknown user {name:?} or wrong password"))),
                }
            }
            Claim::Plain { username: None } if self.config.allow_anonymous => Ok(Authenticated {
                access: Access::Rules {
                    publish: self.config.anonymous_publish.clone(),
                    subscribe: self.config.anonymous_subscribe.clone(),
                },
                expires_at: None,
            }),
            Claim::Plain { username: None } => {
                Err(Refusal::not_authorized("anonymous clients are not allowed ([auth] allow_anonymous)"))
            }
        }
    }
}
