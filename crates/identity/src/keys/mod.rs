//! Key stores: where the device key, the master key and the CA's secrets live.
//!
//! The [`KeyStore`] trait is the seam; [`file::FileKeyStore`] keeps keys in files under the
//! state directory, [`tpm::TpmKeyStore`] keeps them as TPM 2.0 keyed-hash objects whose
//! HMACs are computed inside the TPM. Key bytes never leave a store: callers get MACs.

pub mod file;
pub mod tpm;

use std::path::PathBuf;

/// The well-known key ids.
pub mod ids {
    /// The device's own SAS key (its primary symmetric key in the hub).
    pub const DEVICE: &str = "device";
    /// The master key module keys are derived from.
    pub const MASTER: &str = "master";
}

/// How a missing key comes into being.
#[derive(Debug, Clone)]
pub enum KeyInit {
    /// 32 random bytes.
    Generate,
    /// These bytes (e.g. a device key provisioned in the hub).
    Import(Vec<u8>),
}

/// What went wrong in a key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key with that id.
    #[error("key {0:?} does not exist")]
    NotFound(String),
    /// A key id with characters that cannot name a file.
    #[error("key id {0:?} is invalid; use letters, digits, '-' and '_'")]
    BadId(String),
    /// A key or its directory has permissions that let others read it.
    #[error("{path} has mode {mode:o}; it must not be accessible to group or others (chmod {expected:o})")]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// The mode it should have.
        expected: u32,
    },
    /// A key file exists but cannot be used; it is left untouched.
    #[error("key file {path} is corrupt: {reason}; refusing to overwrite it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a key file failed.
    #[error("key store I/O on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cryptographic library failed.
    #[error("cryptographic operation {0} failed")]
    Crypto(&'static str),
    /// The TPM refused or failed an operation.
    #[error("TPM {operation} failed: {message}")]
    Tpm {
        /// What was being done.
        operation: &'static str,
        /// The TPM stack's message.
        message: String,
    },
}

/// A store of symmetric keys that can compute HMAC-SHA256 with them.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// `"file"` or `"tpm"`.
    fn kind(&self) -> &'static str;

    /// Makes sure key `id` exists, creating it as `init` says if it does not. An existing
    /// key is never replaced.
    fn ensure(&self, id: &str, init: KeyInit) -> Result<(), KeyError>;

    /// Whether key `id` exists.
    fn contains(&self, id: &str) -> bool;

    /// HMAC-SHA256 of `data` under key `id`.
    fn hmac(&self, id: &str, data: &[u8]) -> Result<[u8; 32], KeyError>;
}

/// Checks a key id: it names a file, so only `[A-Za-z0-9_-]`.
pub fn check_id(id: &str) -> Result<(), KeyError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(KeyError::BadId(id.to_owned()));
    }
    Ok(())
}

/// HMAC-SHA256 in software, for keys derived from a store's keys.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], KeyError> {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().map_err(|_| KeyError::Crypto("HMAC-SHA256"))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Fills `buf` from the operating system's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| KeyError::Crypto("random generation"))
}

/// 32 random bytes from the operating system's generator.
pub fn random_key() -> Result<Vec<u8>, KeyError> {
    let mut key = vec![0u8; 32];
    fill_random(&mut key)?;
    Ok(key)
}

/// Checks that `mode` gives no access to group or others.
pub(crate) fn check_private(path: &std::path::Path, mode: u32, expected: u32) -> Result<(), KeyError> {
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode: mode & 0o7777, expected });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn key_ids_are_file_name_safe() {
        assert!(check_id("master").is_ok());
        assert!(check_id("module-key_1").is_ok());
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
