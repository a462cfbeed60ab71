//! TPM 2.0 key store (being written).

use std::path::Path;

use super::{KeyError, KeyInit, KeyStore};

/// Keys held in a TPM 2.0.
#[derive(Debug)]
pub struct TpmKeyStore;

impl TpmKeyStore {
    /// Opens the TPM at `tcti`.
    pub fn open(_tcti: &str, _dir: &Path) -> Result<Self, KeyError> {
        Err(KeyError::Tpm { operation: "open", message: "not available".into() })
    }
}

impl KeyStore for TpmKeyStore {
    fn kind(&self) -> &'static str {
        "tpm"
    }
    fn ensure(&self, _id: &str, _init: KeyInit) -> Result<(), KeyError> {
        Err(KeyError::Tpm { operation: "ensure", message: "not available".into() })
    }
    fn contains(&self, _id: &str) -> bool {
        false
    }
    fn hmac(&self, _id: &str, _data: &[u8]) -> Result<[u8; 32], KeyError> {
        Err(KeyError::Tpm { operation: "hmac", message: "not available".into() })
    }
}
