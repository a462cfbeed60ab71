//! The device's tokens from outpost-identityd: `IssueToken` for the device itself (empty
//! module id) over identityd's Unix socket, signed with the device key (file or TPM).

use std::path::{Path, PathBuf};

use outpost_proto::identity::v1::IssueTokenRequest;
use outpost_proto::identity::v1::identity_client::IdentityClient;

use crate::token::{Token, TokenError, TokenSource};

/// Tokens issued by identityd; connects per call, so an identityd restart is harmless.
#[derive(Debug, Clone)]
pub struct IdentitydTokens {
    socket: PathBuf,
}

impl IdentitydTokens {
    /// Tokens from identityd listening on `socket`.
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_owned() }
    }
}

#[async_trait::async_trait]
impl TokenSource for IdentitydTokens {
    async fn token(&self, ttl_secs: u64) -> Result<Token, TokenError> {
        let channel = outpost_rpc::connect(&self.socket)
            .await
            .map_err(|source| TokenError::Unreachable { path: self.socket.clone(), source })?;
        let issued = IdentityClient::new(channel)
            .issue_token(IssueTokenRequest { module_id: String::new(), ttl_secs })
            .await
            .map_err(|status| TokenError::Refused { status })?
            .into_inner();
        Ok(Token { secret: issued.token, expiry_unix_secs: issued.expiry })
    }
}
