//! The identity service's domain core, shared by the gRPC API and the workload API:
//! module identities, key derivation, SAS tokens, certificates and AEAD for modules.
//!
//! Module keys are derived, never stored: `HMAC-SHA256(master, "{module}:{generation}:primary")`
//! computed by the key store, so a file or TPM store holds only the device and master keys.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::sas::{ParseTokenError, SasToken, TokenExpired, TokenScope};
use outpost_core::{DeviceId, GenerationId, ModuleId};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::certs::{CertError, DeviceCa, IssuedCertificate, LeafRequest};
use crate::clock::Clock;
use crate::config::{CertificatesConfig, TokensConfig};
use crate::keys::{KeyError, KeyStore, fill_random, hmac_sha256, ids};
use crate::modules::{Created, ModuleIdentity, Registry, RegistryError};

/// Version byte of the AEAD ciphertext format.
const AEAD_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Errors of the identity service, split by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No identity for the module.
    #[error("module {0} has no identity")]
    UnknownModule(ModuleId),
    /// The caller named a generation that is not the module's current one.
    #[error("module {module} is at generation {current}, not {requested}")]
    StaleGeneration {
        /// The module.
        module: ModuleId,
        /// What the caller sent.
        requested: String,
        /// The current generation.
        current: GenerationId,
    },
    /// A request field is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// Token verification failed; the reason says why.
    #[error("token rejected: {0}")]
    TokenRejected(#[from] TokenRejection),
    /// Decryption failed: wrong module, generation, IV or tampered ciphertext.
    #[error(
        "ciphertext cannot be decrypted by module {0} (wrong module, generation or initialization vector, or tampered)"
    )]
    DecryptFailed(ModuleId),
    /// A key store failure.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A registry failure.
    #[error(transparent)]
    Registry(RegistryError),
    /// A certificate failure.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The cryptographic library failed.
    #[error("cryptographic operation {0} failed")]
    Crypto(&'static str),
}

impl From<RegistryError> for ServiceError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(m) => Self::UnknownModule(m),
            other => Self::Registry(other),
        }
    }
}

/// Why a token did not verify.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejection {
    /// Not a well-formed token.
    #[error("malformed: {0}")]
    Malformed(#[from] ParseTokenError),
    /// Minted for another hub.
    #[error("issued for hub {got:?}, this device belongs to {expected:?}")]
    WrongHub {
        /// This device's hub.
        expected: String,
        /// The token's hub.
        got: String,
    },
    /// Minted for another device.
    #[error("issued for device {got:?}, this is device {expected:?}")]
    WrongDevice {
        /// This device.
        expected: DeviceId,
        /// The token's device.
        got: DeviceId,
    },
    /// The module has no identity here.
    #[error("module {0} has no identity on this device")]
    UnknownModule(ModuleId),
    /// The signature does not match the key.
    #[error("signature does not match (forged, or signed with another key or generation)")]
    BadSignature,
    /// Past its expiry plus the tolerated skew.
    #[error(transparent)]
    Expired(#[from] TokenExpired),
}

/// Whose a verified token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The device.
    pub device: DeviceId,
    /// The module and its generation, for module tokens.
    pub module: Option<(ModuleId, GenerationId)>,
    /// Expiry, seconds since the Unix epoch.
    pub expiry: u64,
}

/// The device's identity as configured.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Device id.
    pub device: DeviceId,
    /// Hub host name.
    pub hub: String,
    /// Gateway host name for modules.
    pub gateway: String,
}

/// The identity service's state and operations.
#[derive(Debug)]
pub struct IdentityService {
    info: DeviceInfo,
    keys: Arc<dyn KeyStore>,
    registry: Registry,
    ca: DeviceCa,
    tokens: TokensConfig,
    certs: CertificatesConfig,
    clock: Arc<dyn Clock>,
}

impl IdentityService {
    /// Assembles the service from its parts.
    pub fn new(
        info: DeviceInfo,
        keys: Arc<dyn KeyStore>,
        registry: Registry,
        ca: DeviceCa,
        tokens: TokensConfig,
        certs: CertificatesConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { info, keys, registry, ca, tokens, certs, clock }
    }

    /// The configured device.
    pub fn device(&self) -> &DeviceInfo {
        &self.info
    }

    /// The key store's kind (`file` or `tpm`).
    pub fn key_store_kind(&self) -> &'static str {
        self.keys.kind()
    }

    /// The device CA.
    pub fn ca(&self) -> &DeviceCa {
        &self.ca
    }

    /// Creates a module identity, or returns the existing one.
    pub fn create_module(
        &self,
        module: &ModuleId,
        managed_by: &str,
    ) -> Result<(ModuleIdentity, Created), ServiceError> {
        Ok(self.registry.create(module, managed_by)?)
    }

    /// One module identity.
    pub fn module(&self, module: &ModuleId) -> Result<ModuleIdentity, ServiceError> {
        Ok(self.registry.get(module)?)
    }

    /// Every module identity.
    pub fn modules(&self) -> Vec<ModuleIdentity> {
        self.registry.list()
    }

    /// Deletes a module identity.
    pub fn delete_module(&self, module: &ModuleId) -> Result<ModuleIdentity, ServiceError> {
        Ok(self.registry.delete(module)?)
    }

    /// The identity of `module` if `generation` is its current one.
    pub fn module_at(&self, module: &ModuleId, generation: &str) -> Result<ModuleIdentity, ServiceError> {
        let identity = self.registry.get(module)?;
        if identity.generation_id.as_str() != generation {
            return Err(ServiceError::StaleGeneration {
                module: module.clone(),
                requested: generation.to_owned(),
                current: identity.generation_id,
            });
        }
        Ok(identity)
    }

    fn module_key(&self, identity: &ModuleIdentity) -> Result<[u8; 32], ServiceError> {
        let input = format!("{}:{}:primary", identity.module_id, identity.generation_id);
        Ok(self.keys.hmac(ids::MASTER, input.as_bytes())?)
    }

    /// HMAC-SHA256 of `data` with the module's key (the workload API's `sign`).
    pub fn sign_for_module(&self, identity: &ModuleIdentity, data: &[u8]) -> Result<[u8; 32], ServiceError> {
        Ok(hmac_sha256(&self.module_key(identity)?, data)?)
    }

    /// HMAC-SHA256 of `data` with the key of whoever `scope` names.
    fn sign_as(&self, scope: &TokenScope, data: &[u8]) -> Result<[u8; 32], ServiceError> {
        match scope.module() {
            None => Ok(self.keys.hmac(ids::DEVICE, data)?),
            Some(module) => {
                let identity = self.registry.get(module)?;
                self.sign_for_module(&identity, data)
            }
        }
    }

    /// Issues a token for the device (`module` = `None`) or a module, valid for `ttl_secs`
    /// (0 = the configured default).
    pub fn issue_token(&self, module: Option<&ModuleId>, ttl_secs: u64) -> Result<SasToken, ServiceError> {
        let ttl = if ttl_secs == 0 { self.tokens.default_ttl_secs } else { ttl_secs };
        if ttl > self.tokens.max_ttl_secs {
            return Err(ServiceError::InvalidArgument(format!(
                "ttl of {ttl} s exceeds the configured maximum of {} s",
                self.tokens.max_ttl_secs
            )));
        }
        let scope = self.scope(module);
        let expiry = self.clock.now_secs().saturating_add(ttl);
        let mut token = SasToken::new(scope, expiry, Vec::new());
        token.signature = self.sign_as(&token.scope, token.string_to_sign().as_bytes())?.to_vec();
        Ok(token)
    }

    fn scope(&self, module: Option<&ModuleId>) -> TokenScope {
        let (hub, device) = (self.info.hub.clone(), self.info.device.clone());
        match module {
            None => TokenScope::Device { hub, device },
            Some(module) => TokenScope::Module { hub, device, module: module.clone() },
        }
    }

    /// Verifies a token offline: format, hub, device, module, signature (constant time),
    /// expiry with the configured skew.
    pub fn verify_token(&self, text: &str) -> Result<Verified, TokenRejection> {
        let token = SasToken::parse(text)?;
        let scope = &token.scope;
        if !scope.hub().eq_ignore_ascii_case(&self.info.hub) {
            return Err(TokenRejection::WrongHub { expected: self.info.hub.clone(), got: scope.hub().to_owned() });
        }
        if scope.device() != &self.info.device {
            return Err(TokenRejection::WrongDevice {
                expected: self.info.device.clone(),
                got: scope.device().clone(),
            });
        }
        let module = match scope.module() {
            Some(m) => {
                let identity = self.registry.get(m).map_err(|_| TokenRejection::UnknownModule(m.clone()))?;
                Some((identity.module_id, identity.generation_id))
            }
            None => None,
        };
        let expected = self.sign_as(scope, token.string_to_sign().as_bytes()).map_err(|e| {
            tracing::error!(error = %e, "cannot compute the expected signature");
            TokenRejection::BadSignature
        })?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(token.signature.as_slice(), expected.as_slice())) {
            return Err(TokenRejection::BadSignature);
        }
        token.check_expiry(self.clock.now_secs(), self.tokens.clock_skew_secs)?;
        Ok(Verified { device: self.info.device.clone(), module, expiry: token.expiry })
    }

    /// A server certificate from the device CA.
    pub fn issue_server_certificate(
        &self,
        request: &LeafRequest,
        validity_days: u32,
    ) -> Result<IssuedCertificate, ServiceError> {
        let days = if validity_days == 0 { self.certs.server_validity_days } else { validity_days };
        Ok(self.ca.issue(request, days, self.clock.now_secs() as i64)?)
    }

    /// A module identity (client) certificate, common name = the module id.
    pub fn issue_identity_certificate(&self, identity: &ModuleIdentity) -> Result<IssuedCertificate, ServiceError> {
        let request = LeafRequest::Client { common_name: identity.module_id.to_string() };
        Ok(self.ca.issue(&request, self.certs.identity_validity_days, self.clock.now_secs() as i64)?)
    }

    /// The PEM trust bundle.
    pub fn trust_bundle(&self) -> String {
        self.ca.trust_bundle()
    }

    /// AES-256-GCM key and additional data of a module generation.
    fn aead_key(&self, identity: &ModuleIdentity, iv: &[u8]) -> Result<(LessSafeKey, Vec<u8>), ServiceError> {
        let input = format!("{}:{}:aead", identity.module_id, identity.generation_id);
        let key = self.keys.hmac(ids::MASTER, input.as_bytes())?;
        let key = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| ServiceError::Crypto("AES-256-GCM key"))?;
        let mut aad = format!("{}{}", identity.module_id, identity.generation_id).into_bytes();
        aad.extend_from_slice(iv);
        Ok((LessSafeKey::new(key), aad))
    }

    /// Encrypts `plaintext` for the module's current generation. The caller's
    /// initialization vector is bound as additional data; the nonce is random per call.
    /// Output: version byte, nonce, ciphertext, tag.
    pub fn encrypt(&self, identity: &ModuleIdentity, plaintext: &[u8], iv: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let (key, aad) = self.aead_key(identity, iv)?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut sealed = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut sealed)
            .map_err(|_| ServiceError::Crypto("AES-256-GCM seal"))?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        blob.push(AEAD_V1);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Decrypts what [`IdentityService::encrypt`] produced for the same module generation
    /// and initialization vector.
    pub fn decrypt(&self, identity: &ModuleIdentity, blob: &[u8], iv: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let fail = || ServiceError::DecryptFailed(identity.module_id.clone());
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != AEAD_V1 {
            return Err(fail());
        }
        let (nonce, sealed) = blob[1..].split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let (key, aad) = self.aead_key(identity, iv)?;
        let mut buffer = sealed.to_vec();
        let plaintext = key.open_in_place(nonce, Aad::from(&aad), &mut buffer).map_err(|_| fail())?;
        Ok(plaintext.to_vec())
    }
}

/// Decodes a base64 request field, naming it in the error.
pub fn decode_base64(field: &str, value: &str) -> Result<Vec<u8>, ServiceError> {
    BASE64.decode(value).map_err(|e| ServiceError::InvalidArgument(format!("{field} is not valid base64: {e}")))
}
