//! Validated identifiers: device ids, module ids and generation ids, with IoT Hub's rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest device or module id IoT Hub accepts.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("{kind} id is empty")]
    Empty {
        /// Which kind of id ("device", "module", "generation").
        kind: &'static str,
    },
    /// The id is longer than [`MAX_ID_LEN`].
    #[error("{kind} id is {len} characters long; the limit is {MAX_ID_LEN}")]
    TooLong {
        /// Which kind of id.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character IoT Hub does not allow.
    #[error(
        "{kind} id {id:?} contains {ch:?} at position {pos}; allowed are ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '"
    )]
    BadChar {
        /// Which kind of id.
        kind: &'static str,
        /// The offending id.
        id: String,
        /// The offending character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// `.` and `..` are refused: they would name directories where ids name files.
    #[error("{kind} id {id:?} is reserved")]
    Reserved {
        /// Which kind of id.
        kind: &'static str,
        /// The offending id.
        id: String,
    },
}

fn allowed(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || "-.+%_#*?!(),:=@$'".contains(ch)
}

fn validate(kind: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, len: id.len() });
    }
    if let Some((pos, ch)) = id.char_indices().find(|(_, c)| !allowed(*c)) {
        return Err(IdError::BadChar { kind, id: id.to_owned(), ch, pos });
    }
    if id == "." || id == ".." {
        return Err(IdError::Reserved { kind, id: id.to_owned() });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `id` and wraps it.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                validate($kind, &id)?;
                Ok(Self(id))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(id: String) -> Result<Self, IdError> {
                Self::new(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(id: &str) -> Result<Self, IdError> {
                Self::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A device id, as registered in the hub (case-sensitive, at most 128 ASCII characters).
    DeviceId,
    "device"
);
id_type!(
    /// A module id; system modules start with `$` (`$edgeAgent`, `$edgeHub`).
    ModuleId,
    "module"
);
id_type!(
    /// The generation id of a module identity: it changes when the identity is deleted and
    /// created again, so that keys, certificates and ciphertexts of the old incarnation stop
    /// working for the new one.
    GenerationId,
    "generation"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_style_ids_are_accepted() {
        for id in ["dev1", "$edgeAgent", "my-module_2", "a.b+c%d#e*f?g!h(i)j,k:l=m@n$o'p"] {
            assert!(ModuleId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn slashes_spaces_and_dot_names_are_refused_with_the_reason() {
        let err = ModuleId::new("a/b").unwrap_err();
        assert_eq!(err, IdError::BadChar { kind: "module", id: "a/b".into(), ch: '/', pos: 1 });
        assert!(DeviceId::new("has space").is_err());
        assert!(matches!(ModuleId::new(".."), Err(IdError::Reserved { .. })));
        assert!(matches!(ModuleId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(ModuleId::new("x".repeat(129)), Err(IdError::TooLong { len: 129, .. })));
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        let ok: Result<DeviceId, _> = serde_plain("dev-1");
        assert!(ok.is_ok());
        let bad: Result<DeviceId, _> = serde_plain("dev/1");
        assert!(bad.is_err());
    }

    fn serde_plain(s: &str) -> Result<DeviceId, IdError> {
        DeviceId::try_from(s.to_owned())
    }
}
