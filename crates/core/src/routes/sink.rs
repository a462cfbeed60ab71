//! INTO endpoints: `$upstream` (IoT Hub, or the parent edge hub) and
//! `BrokeredEndpoint("/modules/{module}/inputs/{input}")` (a module's input). Both names
//! ignore case, as in edgeHub.

use std::fmt;

use super::error::Problem;
use super::message::eq_ignore_case;

/// Where a route sends the messages it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sink {
    /// `$upstream`.
    Upstream,
    /// `BrokeredEndpoint("/modules/{module}/inputs/{input}")`.
    ModuleInput {
        /// The receiving module.
        module: String,
        /// Its input.
        input: String,
    },
}

impl Sink {
    /// The sink a `$name` endpoint names.
    pub(super) fn system(name: &str) -> Result<Self, Problem> {
        if eq_ignore_case(name, "$upstream") {
            Ok(Self::Upstream)
        } else {
            Err(Problem::UnknownEndpoint { name: name.to_owned() })
        }
    }

    /// The module input a `BrokeredEndpoint` address names. Like edgeHub, surrounding
    /// whitespace and one leading and one trailing `/` are ignored.
    pub(super) fn brokered(address: &str) -> Result<Self, Problem> {
        let trimmed = address.trim();
        let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        match trimmed.split('/').collect::<Vec<_>>()[..] {
            [modules, module, inputs, input]
                if eq_ignore_case(modules, "modules")
                    && eq_ignore_case(inputs, "inputs")
                    && !module.trim().is_empty()
                    && !input.trim().is_empty() =>
            {
                Ok(Self::ModuleInput { module: module.to_owned(), input: input.to_owned() })
            }
            _ => Err(Problem::InvalidEndpointAddress { address: address.to_owned() }),
        }
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upstream => f.write_str("$upstream"),
            Self::ModuleInput { module, input } => write!(f, "BrokeredEndpoint(\"/modules/{module}/inputs/{input}\")"),
        }
    }
}
