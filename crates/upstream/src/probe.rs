//! One sign-in and nothing else, for `outpost check`: proves that the broker is reachable
//! and accepts the device's token, then closes.

use crate::config::{ConfigError, LinkConfig};
use crate::error::ConnectError;
use crate::session::Session;
use crate::token::TokenSource;

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The link's configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No token, no connection, or the sign-in was refused.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// Signs in as the device with a one-minute token from `tokens` and closes again.
pub async fn probe(config: &LinkConfig, tokens: &dyn TokenSource) -> Result<(), ProbeError> {
    config.validate()?;
    let token =
        tokens.token(60).await.map_err(|source| ConnectError::Token { device: config.device_id.clone(), source })?;
    let uri = config.uri(&token.secret)?;
    let (session, _events) = Session::open(config, &uri, 0).await?;
    session.close("outpost check").await;
    Ok(())
}
