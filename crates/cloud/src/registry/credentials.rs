//! Device credentials: symmetric keys (SAS tokens signed with either key) or X.509
//! certificate thumbprints; generation, validation and token checks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::sas::{SasToken, TokenScope};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

/// Size of generated keys, in bytes (IoT Hub's).
pub const GENERATED_KEY_BYTES: usize = 32;

/// How a device proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// Two base64 keys; tokens signed with either are accepted, so keys can be rolled.
    SymmetricKey {
        /// The primary key.
        primary: String,
        /// The secondary key.
        secondary: String,
    },
    /// Certificate thumbprints (hex, lowercase), primary and secondary.
    X509Thumbprint {
        /// The primary thumbprint.
        primary: String,
        /// The secondary thumbprint; may be empty.
        secondary: String,
    },
}

/// Why credentials given by an operator are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A key is not base64 or has a size outside 16..=64 bytes.
    #[error("{which} key must be base64 of 16 to 64 bytes: {reason}")]
    Key {
        /// `primary` or `secondary`.
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A thumbprint is not 40 or 64 hex digits.
    #[error("{which} thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits, got {value:?}")]
    Thumbprint {
        /// `primary` or `secondary`.
        which: &'static str,
        /// The value given.
        value: String,
    },
    /// The system's random source failed.
    #[error("cannot generate a key: the system random source failed")]
    Random,
}

/// The outcome of checking a SAS token against a device's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Signed with one of the device's keys, for this device, not expired.
    Valid,
    /// Why not, for the logs (the broker is only told "deny").
    Invalid(String),
}

fn random_key(rng: &SystemRandom) -> Result<String, CredentialsError> {
    let mut key = [0u8; GENERATED_KEY_BYTES];
    rng.fill(&mut key).map_err(|_| CredentialsError::Random)?;
    Ok(BASE64.encode(key))
}

fn check_key(which: &'static str, key: &str) -> Result<(), CredentialsError> {
    let bytes = BASE64.decode(key.trim()).map_err(|e| CredentialsError::Key { which, reason: e.to_string() })?;
    if !(16..=64).contains(&bytes.len()) {
        return Err(CredentialsError::Key { which, reason: format!("it decodes to {} bytes", bytes.len()) });
    }
    Ok(())
}

fn check_thumbprint(which: &'static str, value: &str, optional: bool) -> Result<String, CredentialsError> {
    let normalised: String = value.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if optional && normalised.is_empty() {
        return Ok(normalised);
    }
    if !matches!(normalised.len(), 40 | 64) || !normalised.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CredentialsError::Thumbprint { which, value: value.to_owned() });
    }
    Ok(normalised)
}

impl Credentials {
    /// Two fresh random keys.
    pub fn generate() -> Result<Self, CredentialsError> {
        let rng = SystemRandom::new();
        Ok(Self::SymmetricKey { primary: random_key(&rng)?, secondary: random_key(&rng)? })
    }

    /// Symmetric keys given by an operator; an empty secondary is generated.
    pub fn symmetric(primary: &str, secondary: &str) -> Result<Self, CredentialsError> {
        check_key("primary", primary)?;
        let secondary = if secondary.trim().is_empty() {
            random_key(&SystemRandom::new())?
        } else {
            check_key("secondary", secondary)?;
            secondary.trim().to_owned()
        };
        Ok(Self::SymmetricKey { primary: primary.trim().to_owned(), secondary })
    }

    /// Thumbprints given by an operator (colons allowed, case ignored).
    pub fn x509(primary: &str, secondary: &str) -> Result<Self, CredentialsError> {
        Ok(Self::X509Thumbprint {
            primary: check_thumbprint("primary", primary, false)?,
            secondary: check_thumbprint("secondary", secondary, true)?,
        })
    }

    /// Checks a SAS token presented by `device` at `now` (Unix seconds) with `skew` seconds of
    /// tolerance. The token must name the device itself (not one of its modules) on `hub`.
    pub fn check_token(&self, hub: &str, device: &str, token: &str, now: u64, skew: u64) -> TokenCheck {
        let Self::SymmetricKey { primary, secondary } = self else {
            return TokenCheck::Invalid("the device authenticates with X.509, not SAS tokens".into());
        };
        let token = match SasToken::parse(token) {
            Ok(token) => token,
            Err(e) => return TokenCheck::Invalid(e.to_string()),
        };
        match &token.scope {
            TokenScope::Device { hub: token_hub, device: token_device }
                if token_hub.eq_ignore_ascii_case(hub) && token_device.as_str() == device => {}
            other => {
                return TokenCheck::Invalid(format!("token is for {:?}, not {hub}/devices/{device}", other.resource()));
            }
        }
        if let Err(e) = token.check_expiry(now, skew) {
            return TokenCheck::Invalid(e.to_string());
        }
        if token.expiry > now.saturating_add(MAX_TOKEN_LIFETIME_SECS) {
            return TokenCheck::Invalid(format!("token lives longer than {MAX_TOKEN_LIFETIME_SECS} s"));
        }
        let message = token.string_to_sign();
        for key in [primary, secondary] {
            let Ok(key) = BASE64.decode(key) else { continue };
            let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
            if hmac::verify(&key, message.as_bytes(), &token.signature).is_ok() {
                return TokenCheck::Valid;
            }
        }
        TokenCheck::Invalid("the signature matches neither of the device's keys".into())
    }
}

/// Tokens valid for longer than this are refused: a leaked token must not outlive a key roll
/// by much (IoT Hub's SDKs default to one hour).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::DeviceId;

    fn token(key_b64: &str, hub: &str, device: &str, expiry: u64) -> String {
        let scope = TokenScope::Device { hub: hub.into(), device: DeviceId::new(device).unwrap() };
        let mut unsigned = SasToken::new(scope, expiry, vec![0]);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &BASE64.decode(key_b64).unwrap());
        unsigned.signature = hmac::sign(&key, unsigned.string_to_sign().as_bytes()).as_ref().to_vec();
        unsigned.to_string()
    }

    #[test]
    fn either_key_signs_a_valid_token() {
        let creds = Credentials::generate().unwrap();
        let Credentials::SymmetricKey { primary, secondary } = &creds else { unreachable!() };
        for key in [primary, secondary] {
            let t = token(key, "hub.example", "dev1", 2_000);
            assert_eq!(creds.check_token("hub.example", "dev1", &t, 1_000, 0), TokenCheck::Valid);
        }
    }

    #[test]
    fn wrong_key_device_hub_expiry_are_refused() {
        let creds = Credentials::generate().unwrap();
        let other = Credentials::generate().unwrap();
        let Credentials::SymmetricKey { primary, .. } = &creds else { unreachable!() };
        let Credentials::SymmetricKey { primary: wrong, .. } = &other else { unreachable!() };
        let cases = [
            (token(wrong, "hub", "dev1", 2_000), "neither"),
            (token(primary, "hub", "dev2", 2_000), "not hub/devices/dev1"),
            (token(primary, "elsewhere", "dev1", 2_000), "not hub/devices/dev1"),
            (token(primary, "hub", "dev1", 500), "expired"),
            (token(primary, "hub", "dev1", 1_000 + MAX_TOKEN_LIFETIME_SECS + 1), "longer"),
            ("garbage".to_owned(), "SharedAccessSignature"),
        ];
        for (t, why) in cases {
            match creds.check_token("hub", "dev1", &t, 1_000, 0) {
                TokenCheck::Invalid(reason) => assert!(reason.contains(why), "{reason} should say {why}"),
                TokenCheck::Valid => panic!("accepted {t}"),
            }
        }
    }

    #[test]
    fn given_keys_and_thumbprints_are_checked() {
        assert!(Credentials::symmetric("c2hvcnQ=", "").unwrap_err().to_string().contains("5 bytes"));
        assert!(Credentials::symmetric("not base64!", "").is_err());
        let key = BASE64.encode([7u8; 32]);
        let Credentials::SymmetricKey { secondary, .. } = Credentials::symmetric(&key, "").unwrap() else {
            unreachable!()
        };
        assert_eq!(BASE64.decode(secondary).unwrap().len(), 32);
        let thumb = "AB:".repeat(19) + "AB";
        assert_eq!(
            Credentials::x509(&thumb, "").unwrap(),
            Credentials::X509Thumbprint { primary: "ab".repeat(20), secondary: String::new() }
        );
        assert!(Credentials::x509("abc", "").is_err());
    }
}
