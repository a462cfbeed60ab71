//! SAS token verification through outpost-identityd (`VerifyToken`, offline against the
//! device's keys), with verdicts cached until the token expires so that reconnect storms do
//! not become RPC storms.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use outpost_proto::identity::v1 as pb;

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Device id.
    pub device: String,
    /// Module id, for module tokens.
    pub module: Option<String>,
    /// Expiry, seconds since the epoch.
    pub expiry: u64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is wrong, expired or not ours.
    #[error("token refused: {0}")]
    Rejected(String),
    /// The verifier could not be asked.
    #[error("cannot verify tokens now: {0}")]
    Unavailable(String),
}

/// Verifies SAS tokens.
#[async_trait::async_trait]
pub trait TokenVerifier: Send + Sync + std::fmt::Debug {
    /// Verifies `token` at time `now`.
    async fn verify(&self, token: &str, now: u64) -> Result<Verified, VerifyError>;
}

/// identityd over its management socket, with a cache.
#[derive(Debug)]
pub struct IdentitydVerifier {
    socket: PathBuf,
    cache: Mutex<HashMap<String, Verified>>,
}

impl IdentitydVerifier {
    /// Asks identityd on `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket, cache: Mutex::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl TokenVerifier for IdentitydVerifier {
    async fn verify(&self, token: &str, now: u64) -> Result<Verified, VerifyError> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, v| v.expiry > now);
            if let Some(verified) = cache.get(token) {
                return Ok(verified.clone());
            }
        }
        let channel = outpost_rpc::connect(&self.socket).await.map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let answer = pb::identity_client::IdentityClient::new(channel)
            .verify_token(pb::VerifyTokenRequest { token: token.to_owned() })
            .await;
        let answer = match answer {
            Ok(answer) => answer.into_inner(),
            Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Internal) => {
                return Err(VerifyError::Unavailable(status.message().to_owned()));
            }
            Err(status) => return Err(VerifyError::Rejected(status.message().to_owned())),
        };
        let verified = Verified {
            device: answer.device_id,
            module: (!answer.module_id.is_empty()).then_some(answer.module_id),
            expiry: answer.expiry,
        };
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(token.to_owned(), verified.clone());
        Ok(verified)
    }
}
