//! Shared access signature (SAS) tokens in exactly IoT Hub's format:
//! `SharedAccessSignature sr={url-encoded resource}&sig={url-encoded base64 HMAC}&se={expiry}`.
//!
//! The signature is HMAC-SHA256 over `{sr as sent}\n{se}`; computing it needs a key and is
//! left to the key store. This module builds, formats and parses tokens, and checks expiry.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::ids::{DeviceId, IdError, ModuleId};

/// The prefix every token starts with.
pub const TOKEN_PREFIX: &str = "SharedAccessSignature ";

/// Characters left alone by URL encoding: the RFC 3986 unreserved set, as Python's
/// `urllib.parse.quote(s, safe="")` and .NET's `WebUtility.UrlEncode` leave them.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// URL-encodes `s` the way IoT Hub's SDKs do.
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE_SET).to_string()
}

/// Why a string is not a well-formed SAS token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseTokenError {
    /// The token does not start with `SharedAccessSignature `.
    #[error("token does not start with \"SharedAccessSignature \"")]
    MissingPrefix,
    /// A `key=value` field has no `=`.
    #[error("token field {0:?} is not of the form key=value")]
    MalformedField(String),
    /// A field name other than `sr`, `sig`, `se`, `skn`.
    #[error("token has unknown field {0:?}")]
    UnknownField(String),
    /// The same field twice.
    #[error("token has field {0:?} more than once")]
    DuplicateField(String),
    /// A required field is missing.
    #[error("token has no {0:?} field")]
    MissingField(&'static str),
    /// A field is not valid percent-encoded UTF-8.
    #[error("token field {0:?} is not valid url-encoded UTF-8")]
    BadEncoding(&'static str),
    /// `se` is not a number of seconds since the epoch.
    #[error("token expiry {0:?} is not a number of seconds since the epoch")]
    BadExpiry(String),
    /// `sig` is not base64.
    #[error("token signature is not valid base64")]
    BadSignature,
    /// `sr` does not name a device or module of a hub.
    #[error("token resource {resource:?} is not {{hub}}/devices/{{device}}[/modules/{{module}}]")]
    BadResource {
        /// The decoded resource.
        resource: String,
    },
    /// `sr` names an id that is not valid.
    #[error("token resource names an invalid id: {0}")]
    BadId(#[from] IdError),
}

/// What a token grants access as: a device, or a module of a device, of one hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// The device itself.
    Device {
        /// The hub's host name.
        hub: String,
        /// The device.
        device: DeviceId,
    },
    /// A module of the device.
    Module {
        /// The hub's host name.
        hub: String,
        /// The device.
        device: DeviceId,
        /// The module.
        module: ModuleId,
    },
}

impl TokenScope {
    /// The resource URI, ids URL-encoded: `{hub}/devices/{device}[/modules/{module}]`.
    pub fn resource(&self) -> String {
        match self {
            Self::Device { hub, device } => format!("{hub}/devices/{}", url_encode(device.as_str())),
            Self::Module { hub, device, module } => {
                format!("{hub}/devices/{}/modules/{}", url_encode(device.as_str()), url_encode(module.as_str()))
            }
        }
    }

    /// The resource URI as it appears in the `sr` field (URL-encoded once more).
    pub fn encoded_resource(&self) -> String {
        url_encode(&self.resource())
    }

    /// The hub's host name.
    pub fn hub(&self) -> &str {
        match self {
            Self::Device { hub, .. } | Self::Module { hub, .. } => hub,
        }
    }

    /// The device.
    pub fn device(&self) -> &DeviceId {
        match self {
            Self::Device { device, .. } | Self::Module { device, .. } => device,
        }
    }

    /// The module, for module scopes.
    pub fn module(&self) -> Option<&ModuleId> {
        match self {
            Self::Device { .. } => None,
            Self::Module { module, .. } => Some(module),
        }
    }

    /// Parses a decoded resource URI. Trailing slashes are tolerated, as IoT Hub does.
    pub fn parse_resource(resource: &str) -> Result<Self, ParseTokenError> {
        let bad = || ParseTokenError::BadResource { resource: resource.to_owned() };
        let parts: Vec<&str> = resource.trim_end_matches('/').split('/').collect();
        let decode = |s: &str| -> Result<String, ParseTokenError> {
            percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| ParseTokenError::BadEncoding("sr"))
        };
        match parts.as_slice() {
            [hub, "devices", device] if !hub.is_empty() => {
                Ok(Self::Device { hub: (*hub).to_owned(), device: DeviceId::new(decode(device)?)? })
            }
            [hub, "devices", device, "modules", module] if !hub.is_empty() => Ok(Self::Module {
                hub: (*hub).to_owned(),
                device: DeviceId::new(decode(device)?)?,
                module: ModuleId::new(decode(module)?)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device { device, .. } => write!(f, "device {device}"),
            Self::Module { device, module, .. } => write!(f, "module {device}/{module}"),
        }
    }
}

/// The string a SAS signature is computed over.
pub fn string_to_sign(encoded_resource: &str, expiry: u64) -> String {
    format!("{encoded_resource}\n{expiry}")
}

/// A parsed or freshly built SAS token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasToken {
    /// The `sr` field exactly as sent: the signature covers this text, not a re-encoding.
    pub encoded_resource: String,
    /// What the resource names.
    pub scope: TokenScope,
    /// The raw HMAC-SHA256 bytes.
    pub signature: Vec<u8>,
    /// Expiry, seconds since the Unix epoch.
    pub expiry: u64,
    /// The shared access policy name (`skn`), for service tokens only.
    pub key_name: Option<String>,
}

/// How a token fails its time check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token expired at {expiry}, {} s ago", now.saturating_sub(*expiry))]
pub struct TokenExpired {
    /// The token's expiry.
    pub expiry: u64,
    /// The time of the check.
    pub now: u64,
}

impl SasToken {
    /// A token for `scope`, valid until `expiry`, carrying `signature`.
    pub fn new(scope: TokenScope, expiry: u64, signature: Vec<u8>) -> Self {
        Self { encoded_resource: scope.encoded_resource(), scope, signature, expiry, key_name: None }
    }

    /// The string this token's signature must cover.
    pub fn string_to_sign(&self) -> String {
        string_to_sign(&self.encoded_resource, self.expiry)
    }

    /// Whether the token is still valid at `now`, allowing `skew` seconds of clock skew.
    pub fn check_expiry(&self, now: u64, skew: u64) -> Result<(), TokenExpired> {
        if self.expiry.saturating_add(skew) < now { Err(TokenExpired { expiry: self.expiry, now }) } else { Ok(()) }
    }

    /// Parses `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`; field order is free.
    pub fn parse(token: &str) -> Result<Self, ParseTokenError> {
        let body = token.strip_prefix(TOKEN_PREFIX).ok_or(ParseTokenError::MissingPrefix)?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for field in body.split('&') {
            let (key, value) =
                field.split_once('=').ok_or_else(|| ParseTokenError::MalformedField(field.to_owned()))?;
            let slot = match key {
                "sr" => &mut sr,
                "sig" => &mut sig,
                "se" => &mut se,
                "skn" => &mut skn,
                other => return Err(ParseTokenError::UnknownField(other.to_owned())),
            };
            if slot.replace(value).is_some() {
                return Err(ParseTokenError::DuplicateField(key.to_owned()));
            }
        }
        let sr = sr.ok_or(ParseTokenError::MissingField("sr"))?;
        let sig = sig.ok_or(ParseTokenError::MissingField("sig"))?;
        let se = se.ok_or(ParseTokenError::MissingField("se"))?;

        let resource = decode("sr", sr)?;
        let scope = TokenScope::parse_resource(&resource)?;
        let signature = BASE64.decode(decode("sig", sig)?).map_err(|_| ParseTokenError::BadSignature)?;
        if signature.is_empty() {
            return Err(ParseTokenError::BadSignature);
        }
        if se.is_empty() || !se.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseTokenError::BadExpiry(se.to_owned()));
        }
        let expiry = se.parse().map_err(|_| ParseTokenError::BadExpiry(se.to_owned()))?;
        let key_name = skn.map(|v| decode("skn", v)).transpose()?;
        Ok(Self { encoded_resource: sr.to_owned(), scope, signature, expiry, key_name })
    }
}

fn decode(field: &'static str, value: &str) -> Result<String, ParseTokenError> {
    percent_decode_str(value).decode_utf8().map(|c| c.into_owned()).map_err(|_| ParseTokenError::BadEncoding(field))
}

impl fmt::Display for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}sr={}&sig={}&se={}",
            self.encoded_resource,
            url_encode(&BASE64.encode(&self.signature)),
            self.expiry
        )?;
        if let Some(skn) = &self.key_name {
            write!(f, "&skn={}", url_encode(skn))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn module_scope() -> TokenScope {
        TokenScope::Module {
            hub: "outpost-test-hub.example".into(),
            device: DeviceId::new("dev1").unwrap(),
            module: ModuleId::new("modA").unwrap(),
        }
    }

    #[test]
    fn string_to_sign_matches_what_the_python_sdk_signs() {
        let token = SasToken::new(module_scope(), 1795467989, vec![1, 2, 3]);
        assert_eq!(token.string_to_sign(), "outpost-test-hub.example%2Fdevices%2Fdev1%2Fmodules%2FmodA\n1795467989");
    }

    #[test]
    fn tokens_round_trip_through_their_text_form() {
        let token = SasToken::new(module_scope(), 1795467989, vec![0xfb, 0xff, 0x3e, 0x00]);
        let text = token.to_string();
        assert!(text.starts_with("SharedAccessSignature sr=outpost-test-hub.example%2Fdevices%2Fdev1"));
        assert!(text.contains("&sig=%2B%2F8%2BAA%3D%3D&se=1795467989"), "{text}");
        assert_eq!(SasToken::parse(&text).unwrap(), token);
    }

    #[test]
    fn field_order_is_free_and_skn_is_kept() {
        let t = SasToken::parse("SharedAccessSignature se=10&skn=iothubowner&sig=AQID&sr=h%2Fdevices%2Fd").unwrap();
        assert_eq!(t.expiry, 10);
        assert_eq!(t.key_name.as_deref(), Some("iothubowner"));
        assert_eq!(t.scope, TokenScope::Device { hub: "h".into(), device: DeviceId::new("d").unwrap() });
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        use ParseTokenError as E;
        let cases: &[(&str, E)] = &[
            ("sr=a&sig=b&se=1", E::MissingPrefix),
            ("SharedAccessSignature sr=h%2Fdevices%2Fd&se=1", E::MissingField("sig")),
            ("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=AQ%3D%3D&se=1&se=2", E::DuplicateField("se".into())),
            ("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=AQ%3D%3D&se=-1", E::BadExpiry("-1".into())),
            ("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=!!&se=1", E::BadSignature),
            (
                "SharedAccessSignature sr=h%2Fthings%2Fd&sig=AQ%3D%3D&se=1",
                E::BadResource { resource: "h/things/d".into() },
            ),
            ("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=AQ%3D%3D&se=1&x=2", E::UnknownField("x".into())),
            ("SharedAccessSignature sr&sig=AQ%3D%3D&se=1", E::MalformedField("sr".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(&SasToken::parse(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn expiry_allows_the_configured_skew() {
        let token = SasToken::new(module_scope(), 1000, vec![1]);
        assert!(token.check_expiry(999, 0).is_ok());
        assert!(token.check_expiry(1000, 0).is_ok());
        assert_eq!(token.check_expiry(1001, 0), Err(TokenExpired { expiry: 1000, now: 1001 }));
        assert!(token.check_expiry(1030, 30).is_ok());
        assert!(token.check_expiry(1031, 30).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = SasToken::parse(&s);
            let _ = SasToken::parse(&format!("{TOKEN_PREFIX}{s}"));
        }

        #[test]
        fn built_tokens_always_parse_back(
            device in "[a-zA-Z0-9$%#*?!(),:=@'+._-]{1,40}",
            module in "[a-zA-Z0-9$%#*?!(),:=@'+._-]{1,40}",
            sig in proptest::collection::vec(any::<u8>(), 1..64),
            expiry in any::<u64>(),
        ) {
            prop_assume!(device != "." && device != ".." && module != "." && module != "..");
            let scope = TokenScope::Module {
                hub: "hub.example".into(),
                device: DeviceId::new(device).unwrap(),
                module: ModuleId::new(module).unwrap(),
            };
            let token = SasToken::new(scope, expiry, sig);
            prop_assert_eq!(SasToken::parse(&token.to_string()).unwrap(), token);
        }
    }
}
