//! Where the link's sign-in tokens come from ([`TokenSource`]), the test sources, and when a
//! token is due for renewal (sans-IO).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A SAS token for the device and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token: the AMQP password.
    pub secret: String,
    /// Expiry, in seconds since the Unix epoch.
    pub expiry_unix_secs: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"<redacted>")
            .field("expiry_unix_secs", &self.expiry_unix_secs)
            .finish()
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// identityd cannot be reached.
    #[error("cannot reach outpost-identityd at {path}")]
    Unreachable {
        /// Its socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: outpost_rpc::RpcError,
    },
    /// identityd refused to issue the token.
    #[error("outpost-identityd refused to issue the device token: {}", status.message())]
    Refused {
        /// Its answer.
        #[source]
        status: tonic::Status,
    },
    /// Another token source failed.
    #[error("the token source failed")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Issues the device's SAS tokens (for `{hub}/devices/{device}`).
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A new token living about `ttl_secs`.
    async fn token(&self, ttl_secs: u64) -> Result<Token, TokenError>;
}

/// The same token every time (tests, or a token provisioned by hand).
#[derive(Debug, Clone)]
pub struct StaticTokens(pub Token);

#[async_trait::async_trait]
impl TokenSource for StaticTokens {
    async fn token(&self, _ttl_secs: u64) -> Result<Token, TokenError> {
        Ok(self.0.clone())
    }
}

/// Tokens made by a closure of the asked lifetime (tests sign their own).
pub struct FnTokens<F>(pub F);

impl<F> fmt::Debug for FnTokens<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTokens")
    }
}

#[async_trait::async_trait]
impl<F> TokenSource for FnTokens<F>
where
    F: Fn(u64) -> Result<Token, TokenError> + Send + Sync,
{
    async fn token(&self, ttl_secs: u64) -> Result<Token, TokenError> {
        (self.0)(ttl_secs)
    }
}

/// The share of a token's life after which the link signs in again with a new one.
const REFRESH_AT: f64 = 0.8;
/// The shortest wait before a refresh, however short-lived the token: no hot loop on a
/// source that hands out expired tokens.
pub const MIN_REFRESH_DELAY: Duration = Duration::from_secs(1);

/// How long after `now` (time since the Unix epoch, when the token was received) to replace a
/// token expiring at `expiry_unix_secs`: at 80 % of its remaining life.
pub fn refresh_delay(now: Duration, expiry_unix_secs: u64) -> Duration {
    let life = Duration::from_secs(expiry_unix_secs).saturating_sub(now);
    life.mul_f64(REFRESH_AT).max(MIN_REFRESH_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_at_four_fifths_of_their_life() {
        let now = Duration::from_secs(1_000_000);
        assert_eq!(refresh_delay(now, 1_000_000 + 3600), Duration::from_secs(2880));
        assert_eq!(refresh_delay(now + Duration::from_millis(500), 1_000_004), Duration::from_millis(2800));
    }

    #[test]
    fn expired_or_nearly_expired_tokens_wait_a_second() {
        let now = Duration::from_secs(1_000_000);
        assert_eq!(refresh_delay(now, 999_000), MIN_REFRESH_DELAY);
        assert_eq!(refresh_delay(now, 1_000_001), MIN_REFRESH_DELAY);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = Token { secret: "SharedAccessSignature sig=x".into(), expiry_unix_secs: 5 };
        assert!(!format!("{token:?}").contains("sig"));
    }

    #[tokio::test]
    async fn closures_and_static_tokens_are_sources() {
        let source = FnTokens(|ttl| Ok(Token { secret: format!("t{ttl}"), expiry_unix_secs: ttl }));
        assert_eq!(source.token(4).await.unwrap().secret, "t4");
        let fixed = StaticTokens(Token { secret: "s".into(), expiry_unix_secs: 9 });
        assert_eq!(fixed.token(4).await.unwrap().expiry_unix_secs, 9);
    }
}
