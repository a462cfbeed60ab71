//! The crate graph's rules: vocabulary crates (`core`, `proto`) depend on no other Outpost
//! crate, and `core` on no async or RPC crate; plumbing (`rpc`, `daemon`, `runtime`,
//! `upstream`, the device's link to the control plane used by the agent and the hub) never
//! depends on a service; services never depend on each other (they talk gRPC).

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context as _, bail};

const VOCABULARY: &[&str] = &["outpost-core", "outpost-proto"];
const PLUMBING: &[&str] = &["outpost-rpc", "outpost-daemon", "outpost-runtime", "outpost-testkit", "outpost-upstream"];
const SERVICES: &[&str] =
    &["outpost-identity", "outpost-agent", "outpost-hub", "outpost-watchdog", "outpostd", "outpost-cloud"];
const CORE_FORBIDDEN: &[&str] = &["tokio", "tonic", "prost", "hyper", "lapin", "sled"];

/// Normal (non-dev) dependencies of every workspace package, by package name.
pub fn graph() -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(crate::util::root())
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut graph = BTreeMap::new();
    for pkg in meta["packages"].as_array().context("no packages in cargo metadata")? {
        let name = pkg["name"].as_str().unwrap_or_default().to_owned();
        let deps = pkg["dependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter(|d| d["kind"].is_null())
                    .filter_map(|d| d["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        graph.insert(name, deps);
    }
    Ok(graph)
}

/// Every violation of the rules in `graph`.
pub fn violations(graph: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (pkg, deps) in graph {
        for dep in deps {
            let outpost_dep = dep.starts_with("outpost");
            if VOCABULARY.contains(&pkg.as_str()) && outpost_dep {
                found.push(format!("{pkg} is vocabulary and must not depend on {dep}"));
            }
            if pkg == "outpost-core" && CORE_FORBIDDEN.contains(&dep.as_str()) {
                found.push(format!("outpost-core is pure and must not depend on {dep}"));
            }
            if PLUMBING.contains(&pkg.as_str()) && SERVICES.contains(&dep.as_str()) {
                found.push(format!("{pkg} is plumbing and must not depend on service {dep}"));
            }
            if SERVICES.contains(&pkg.as_str()) && SERVICES.contains(&dep.as_str()) {
                found.push(format!("service {pkg} must not depend on service {dep}; use its gRPC API"));
            }
        }
    }
    found
}

/// `cargo xtask tidy`.
pub fn run() -> anyhow::Result<()> {
    let found = violations(&graph()?);
    if found.is_empty() {
        eprintln!("crate graph ok");
        return Ok(());
    }
    for v in &found {
        eprintln!("{v}");
    }
    bail!("{} dependency rule violation(s)", found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_follows_the_dependency_rules() {
        let graph = graph().unwrap();
        assert!(graph.contains_key("outpost-core") && graph.contains_key("outpost-identity"));
        assert_eq!(violations(&graph), Vec::<String>::new());
    }

    #[test]
    fn violations_are_detected() {
        let graph = BTreeMap::from([
            ("outpost-core".to_owned(), vec!["tokio".to_owned()]),
            ("outpost-hub".to_owned(), vec!["outpost-identity".to_owned()]),
            ("outpost-rpc".to_owned(), vec!["outpost-agent".to_owned()]),
        ]);
        assert_eq!(violations(&graph).len(), 3);
    }
}
