//! FROM paths: which messages a route considers. A path selects by prefix on whole segments,
//! ignoring case as edgeHub does, so `/messages/modules/a` takes module `a` (or `A`) but not
//! `ab`.

use std::fmt;

use super::message::{MessageSource, eq_ignore_case};

/// The messages a route's FROM path selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `/*`: every message.
    All,
    /// `/messages/*` or `/messages`: device telemetry and every module's messages.
    Messages,
    /// `/messages/modules/*`: every module's messages.
    Modules,
    /// `/messages/modules/{module}/*`: one module's messages, on any output or none.
    Module {
        /// The module.
        module: String,
    },
    /// `/messages/modules/{module}/outputs/*`: one module's messages sent on an output.
    ModuleOutputs {
        /// The module.
        module: String,
    },
    /// `/messages/modules/{module}/outputs/{output}`: one output of one module.
    ModuleOutput {
        /// The module.
        module: String,
        /// The output.
        output: String,
    },
}

impl Source {
    /// The source a FROM path's segments name, with a trailing `*` (and the `/` before it)
    /// ignored; `None` if they name none.
    pub(super) fn from_segments(segments: &[String]) -> Option<Self> {
        let segments = match segments.split_last() {
            Some((last, rest)) if last == "*" => rest,
            _ => segments,
        };
        if segments.iter().any(|s| s == "*") {
            return None;
        }
        let is = |i: usize, word: &str| segments.get(i).is_some_and(|s| eq_ignore_case(s, word));
        let owned = |i: usize| segments.get(i).cloned().unwrap_or_default();
        Some(match segments.len() {
            0 => Self::All,
            1 if is(0, "messages") => Self::Messages,
            2 if is(0, "messages") && is(1, "modules") => Self::Modules,
            3 if is(0, "messages") && is(1, "modules") => Self::Module { module: owned(2) },
            4 if is(0, "messages") && is(1, "modules") && is(3, "outputs") => Self::ModuleOutputs { module: owned(2) },
            5 if is(0, "messages") && is(1, "modules") && is(3, "outputs") => {
                Self::ModuleOutput { module: owned(2), output: owned(4) }
            }
            _ => return None,
        })
    }

    fn segments(&self) -> Vec<&str> {
        match self {
            Self::All => vec![],
            Self::Messages => vec!["messages"],
            Self::Modules => vec!["messages", "modules"],
            Self::Module { module } => vec!["messages", "modules", module],
            Self::ModuleOutputs { module } => vec!["messages", "modules", module, "outputs"],
            Self::ModuleOutput { module, output } => vec!["messages", "modules", module, "outputs", output],
        }
    }

    /// Whether a message from `source` is one this path selects.
    pub fn matches(&self, source: &MessageSource) -> bool {
        let (sender, sent_on) = match source {
            MessageSource::Telemetry { .. } => (None, None),
            MessageSource::Module { module, output, .. } => (Some(module.as_str()), output.as_deref()),
        };
        let is = |name: &str, actual: Option<&str>| actual.is_some_and(|actual| eq_ignore_case(name, actual));
        match self {
            Self::All | Self::Messages => true,
            Self::Modules => sender.is_some(),
            Self::Module { module } => is(module, sender),
            Self::ModuleOutputs { module } => is(module, sender) && sent_on.is_some(),
            Self::ModuleOutput { module, output } => is(module, sender) && is(output, sent_on),
        }
    }
}

impl fmt::Display for Source {
    /// The path in canonical form: `/messages/modules/filter/*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in self.segments() {
            write!(f, "/{segment}")?;
        }
        match self {
            Self::ModuleOutput { .. } => Ok(()),
            _ => f.write_str("/*"),
        }
    }
}
