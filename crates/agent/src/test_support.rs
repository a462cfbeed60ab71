//! Builders shared by the agent's unit tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use outpost_core::ModuleId;
use outpost_core::manifest::{DesiredStatus, ImagePullPolicy, ModuleSpec, RestartPolicy};

/// A module id.
pub fn id(name: &str) -> ModuleId {
    ModuleId::new(name).unwrap()
}

/// A running, always-restarted module of `image` in startup group `order`.
pub fn spec(image: &str, order: u32) -> ModuleSpec {
    ModuleSpec {
        version: "1.0".into(),
        kind: "docker".into(),
        status: DesiredStatus::Running,
        restart_policy: RestartPolicy::Always,
        image_pull_policy: ImagePullPolicy::OnCreate,
        startup_order: order,
        image: image.into(),
        create_options: "{}".into(),
        digest: None,
        env: BTreeMap::new(),
    }
}
