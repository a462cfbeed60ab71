//! Operator authentication: `authorization: Bearer <token>` on every call, checked against
//! the SHA-256 of each configured operator's token in constant time. With no operator
//! configured, an `admin` token is generated once and kept in the state dir.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom as _, SystemRandom};
use subtle::ConstantTimeEq as _;

use crate::config::Operator;

/// The file, in the state dir, holding the generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Who is calling, put in each authenticated request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorName(pub String);

/// The operators and their token hashes.
#[derive(Debug, Clone, Default)]
pub struct Operators {
    entries: Vec<(String, [u8; 32])>,
}

/// Why the operators cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum OperatorsError {
    /// The generated token cannot be read or written.
    #[error("cannot {action} the admin token at {path}: {source}")]
    TokenFile {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot generate the admin token: the system random source failed")]
    Random,
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        *slot = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl Operators {
    /// The configured operators (hashes checked by [`Config::validate`](crate::config::Config::validate)).
    pub fn from_config(operators: &[Operator]) -> Self {
        Self {
            entries: operators
                .iter()
                .filter_map(|op| unhex(&op.token_sha256).map(|hash| (op.name.clone(), hash)))
                .collect(),
        }
    }

    /// A single operator holding `token` (tests, the generated admin).
    pub fn single(name: &str, token: &str) -> Self {
        Self { entries: vec![(name.to_owned(), sha256(token))] }
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The generated admin: the token in `{state_dir}/admin.token`, created on first use.
    pub fn generated_admin(state_dir: &Path) -> Result<Self, OperatorsError> {
        let path = state_dir.join(ADMIN_TOKEN_FILE);
        let token = match std::fs::read_to_string(&path) {
            Ok(token) => token.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new().fill(&mut bytes).map_err(|_| OperatorsError::Random)?;
                let token = URL_SAFE_NO_PAD.encode(bytes);
                outpost_daemon::atomic::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600).map_err(
                    |source| OperatorsError::TokenFile { action: "write", path: path.display().to_string(), source },
                )?;
                tracing::info!(path = %path.display(), "generated the admin operator token");
                token
            }
            Err(source) => {
                return Err(OperatorsError::TokenFile { action: "read", path: path.display().to_string(), source });
            }
        };
        Ok(Self::single("admin", &token))
    }

    /// The operator holding `token`, if any. Every entry is compared, in constant time.
    pub fn check(&self, token: &str) -> Option<&str> {
        let presented = sha256(token);
        let mut found = None;
        for (name, hash) in &self.entries {
            if bool::from(presented.ct_eq(hash)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// A tonic interceptor admitting operators only.
#[derive(Debug, Clone)]
pub struct BearerAuth(pub Arc<Operators>);

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            tonic::Status::unauthenticated(
                "missing `authorization: Bearer <token>`; pass --token or OUTPOST_CLOUD_TOKEN",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| tonic::Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let name =
            self.0.check(token.trim()).ok_or_else(|| tonic::Status::unauthenticated("unknown operator token"))?;
        let name = OperatorName(name.to_owned());
        request.extensions_mut().insert(name);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor as _;

    #[test]
    fn tokens_match_their_hashes() {
        let hash: String = sha256("t0ken").iter().map(|b| format!("{b:02x}")).collect();
        let operators = Operators::from_config(&[Operator { name: "alice".into(), token_sha256: hash }]);
        assert_eq!(operators.check("t0ken"), Some("alice"));
        assert_eq!(operators.check("t0ke"), None);
    }

    #[test]
    fn the_admin_token_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = Operators::generated_admin(dir.path()).unwrap();
        let token = std::fs::read_to_string(dir.path().join(ADMIN_TOKEN_FILE)).unwrap();
        assert_eq!(first.check(token.trim()), Some("admin"));
        let again = Operators::generated_admin(dir.path()).unwrap();
        assert_eq!(again.check(token.trim()), Some("admin"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(ADMIN_TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_interceptor_wants_a_known_bearer() {
        let mut auth = BearerAuth(Arc::new(Operators::single("ops", "abc")));
        let status = auth.call(tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("authorization", "Basic abc".parse().unwrap());
        assert!(auth.call(request).is_err());
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("authorization", "Bearer abc".parse().unwrap());
        let request = auth.call(request).unwrap();
        assert_eq!(request.extensions().get::<OperatorName>(), Some(&OperatorName("ops".into())));
    }
}
