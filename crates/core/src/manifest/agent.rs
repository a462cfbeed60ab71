//! `$edgeAgent` desired properties: runtime settings, system modules and user modules.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::path::{JsonPath, Problems, kind};
use crate::ids::ModuleId;

/// The most `createOptions` chunks Azure allows (`createOptions01` … `createOptions99`).
const MAX_CREATE_OPTION_CHUNKS: usize = 100;

/// Desired run state of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    /// Keep it running.
    Running,
    /// Keep it stopped.
    Stopped,
}

/// When the agent restarts a module that stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    Never,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Restart after a failure or when it reports unhealthy.
    OnUnhealthy,
    /// Always restart.
    Always,
}

/// When the agent pulls a module's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImagePullPolicy {
    /// Pull when the container is created (default).
    OnCreate,
    /// Never pull: the image must already be present.
    Never,
}

/// Credentials for one container registry.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RegistryCredential {
    /// Registry host (and port).
    pub address: String,
    /// User name.
    pub username: String,
    /// Password or token.
    #[serde(skip_serializing)]
    pub password: String,
}

impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to run one module (user or system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleSpec {
    /// Free-form version; a change forces a re-create.
    pub version: String,
    /// Always `docker` (the Azure name for an OCI container).
    pub kind: String,
    /// Desired status.
    pub status: DesiredStatus,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Image pull policy.
    pub image_pull_policy: ImagePullPolicy,
    /// Start order: lower starts first; `u32::MAX` (the default) last.
    pub startup_order: u32,
    /// Image reference.
    pub image: String,
    /// Docker `ContainerCreate` options as JSON text, chunks already joined ("" if none).
    pub create_options: String,
    /// Expected image digest, if pinned.
    pub digest: Option<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
}

/// `runtime` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RuntimeSettings {
    /// `minDockerVersion`, informational.
    pub min_docker_version: Option<String>,
    /// `loggingOptions`, informational.
    pub logging_options: Option<String>,
    /// Registry credentials by name.
    pub registry_credentials: BTreeMap<String, RegistryCredential>,
}

/// The `$edgeAgent` desired properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeAgentDesired {
    /// "1.0" or "1.1".
    pub schema_version: String,
    /// Runtime settings.
    pub runtime: RuntimeSettings,
    /// The agent itself (status, restart policy and start order do not apply).
    pub edge_agent: ModuleSpec,
    /// The hub.
    pub edge_hub: ModuleSpec,
    /// User modules by id.
    pub modules: BTreeMap<ModuleId, ModuleSpec>,
}

const MODULE_KEYS: &[&str] = &[
    "version",
    "type",
    "status",
    "restartPolicy",
    "imagePullPolicy",
    "startupOrder",
    "settings",
    "env",
    "configuration",
];

fn enum_field<T: Copy>(
    problems: &mut Problems,
    path: &JsonPath,
    map: &Map<String, Value>,
    key: &str,
    choices: &[(&str, T)],
    default: T,
) -> T {
    let Some(text) = problems.opt_string(path, map, key) else { return default };
    match choices.iter().find(|(name, _)| *name == text) {
        Some((_, value)) => *value,
        None => {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            problems.add(&path.key(key), format!("{text:?} is not one of {}", names.join(", ")));
            default
        }
    }
}

fn env(problems: &mut Problems, path: &JsonPath, map: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(value) = map.get("env") else { return env };
    let path = path.key("env");
    let Some(vars) = problems.object(&path, value) else { return env };
    for (name, var) in vars {
        let var_path = path.key(name);
        if name.is_empty() || name.contains('=') {
            problems.add(&var_path, "environment variable names must be non-empty and contain no '='");
            continue;
        }
        let Some(var) = problems.object(&var_path, var) else { continue };
        problems.unknown_keys(&var_path, var, &["value"]);
        match var.get("value") {
            Some(Value::String(s)) => {
                env.insert(name.clone(), s.clone());
            }
            Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                env.insert(name.clone(), v.to_string());
            }
            Some(other) => problems.add(&var_path.key("value"), format!("expected a string, found {}", kind(other))),
            None => problems.add(&var_path.key("value"), "is required"),
        }
    }
    env
}

/// Joins `createOptions`, `createOptions01`, … and checks the result is a JSON object.
fn create_options(problems: &mut Problems, path: &JsonPath, settings: &Map<String, Value>) -> String {
    let mut joined = problems.opt_string(path, settings, "createOptions").unwrap_or_default();
    let mut chunks = 0;
    for n in 1..MAX_CREATE_OPTION_CHUNKS {
        let key = format!("createOptions{n:02}");
        match problems.opt_string(path, settings, &key) {
            Some(chunk) => {
                if chunks + 1 != n {
                    problems.add(
                        &path.key(&key),
                        format!("chunk follows a gap: createOptions{:02} is missing", chunks + 1),
                    );
                }
                chunks = n;
                joined.push_str(&chunk);
            }
            None => continue,
        }
    }
    if !joined.trim().is_empty() {
        match serde_json::from_str::<Value>(&joined) {
            Ok(Value::Object(_)) => {}
            Ok(other) => {
                problems.add(&path.key("createOptions"), format!("must be a JSON object, found {}", kind(&other)))
            }
            Err(e) => problems.add(&path.key("createOptions"), format!("is not valid JSON: {e}")),
        }
    }
    joined
}

/// Which parts of a module spec a context allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Agent,
    Hub,
    User,
}

fn module_spec(problems: &mut Problems, path: &JsonPath, value: &Value, role: Role) -> Option<ModuleSpec> {
    let map = problems.object(path, value)?;
    problems.unknown_keys(path, map, MODULE_KEYS);
    let kind = problems.string(path, map, "type");
    if let Some(kind) = &kind
        && kind != "docker"
    {
        problems.add(&path.key("type"), format!("{kind:?} is not supported; use \"docker\""));
    }
    let status_default = DesiredStatus::Running;
    let statuses = [("running", DesiredStatus::Running), ("stopped", DesiredStatus::Stopped)];
    let status = if role == Role::User && !map.contains_key("status") {
        problems.add(&path.key("status"), "is required");
        status_default
    } else {
        enum_field(problems, path, map, "status", &statuses, status_default)
    };
    let policies = [
        ("never", RestartPolicy::Never),
        ("on-failure", RestartPolicy::OnFailure),
        ("on-unhealthy", RestartPolicy::OnUnhealthy),
        ("always", RestartPolicy::Always),
    ];
    let policy_default = if role == Role::User { RestartPolicy::OnUnhealthy } else { RestartPolicy::Always };
    let restart_policy = enum_field(problems, path, map, "restartPolicy", &policies, policy_default);
    let pulls = [("on-create", ImagePullPolicy::OnCreate), ("never", ImagePullPolicy::Never)];
    let image_pull_policy = enum_field(problems, path, map, "imagePullPolicy", &pulls, ImagePullPolicy::OnCreate);
    let startup_order =
        problems.opt_uint(path, map, "startupOrder", u64::from(u32::MAX)).unwrap_or(u64::from(u32::MAX));
    if role == Role::Hub {
        if status != DesiredStatus::Running {
            problems.add(&path.key("status"), "the hub must be \"running\"");
        }
        if restart_policy != RestartPolicy::Always {
            problems.add(&path.key("restartPolicy"), "the hub's restart policy must be \"always\"");
        }
    }
    if role == Role::Agent {
        for key in ["status", "restartPolicy", "startupOrder"] {
            if map.contains_key(key) {
                problems.add(&path.key(key), "does not apply to the agent, which always runs first");
            }
        }
    }
    let settings_path = path.key("settings");
    let (image, create_options, digest) = match map.get("settings") {
        None => {
            problems.add(&settings_path, "is required");
            (None, String::new(), None)
        }
        Some(settings) => match problems.object(&settings_path, settings) {
            None => (None, String::new(), None),
            Some(settings) => {
                for key in settings.keys() {
                    let chunk = key
                        .strip_prefix("createOptions")
                        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()));
                    if !["image", "createOptions", "digest"].contains(&key.as_str()) && !chunk {
                        problems
                            .add(&settings_path.key(key), "unknown field; expected image, createOptions[NN], digest");
                    }
                }
                let image = problems.string(&settings_path, settings, "image");
                if image.as_deref().is_some_and(|i| i.trim().is_empty() || i.contains(char::is_whitespace)) {
                    problems.add(&settings_path.key("image"), "must be an image reference without spaces");
                }
                let create_options = create_options(problems, &settings_path, settings);
                let digest = problems.opt_string(&settings_path, settings, "digest");
                (image, create_options, digest)
            }
        },
    };
    let version = problems.opt_string(path, map, "version").unwrap_or_default();
    let env = env(problems, path, map);
    Some(ModuleSpec {
        version,
        kind: kind?,
        status,
        restart_policy,
        image_pull_policy,
        startup_order: u32::try_from(startup_order).unwrap_or(u32::MAX),
        image: image?,
        create_options,
        digest,
        env,
    })
}

fn runtime(problems: &mut Problems, path: &JsonPath, value: &Value) -> RuntimeSettings {
    let mut runtime = RuntimeSettings::default();
    let Some(map) = problems.object(path, value) else { return runtime };
    problems.unknown_keys(path, map, &["type", "settings"]);
    if let Some(kind) = problems.string(path, map, "type")
        && kind != "docker"
    {
        problems.add(&path.key("type"), format!("{kind:?} is not supported; use \"docker\""));
    }
    let Some(settings) = map.get("settings") else { return runtime };
    let path = path.key("settings");
    let Some(settings) = problems.object(&path, settings) else { return runtime };
    problems.unknown_keys(&path, settings, &["minDockerVersion", "loggingOptions", "registryCredentials"]);
    runtime.min_docker_version = problems.opt_string(&path, settings, "minDockerVersion");
    runtime.logging_options = problems.opt_string(&path, settings, "loggingOptions");
    if let Some(creds) = settings.get("registryCredentials") {
        let path = path.key("registryCredentials");
        if let Some(creds) = problems.object(&path, creds) {
            for (name, cred) in creds {
                let path = path.key(name);
                let Some(cred) = problems.object(&path, cred) else { continue };
                problems.unknown_keys(&path, cred, &["address", "username", "password"]);
                let address = problems.string(&path, cred, "address");
                let username = problems.string(&path, cred, "username");
                let password = problems.string(&path, cred, "password");
                if let (Some(address), Some(username), Some(password)) = (address, username, password) {
                    runtime
                        .registry_credentials
                        .insert(name.clone(), RegistryCredential { address, username, password });
                }
            }
        }
    }
    runtime
}

/// The id a user module may be named `name` by, or a recorded problem at `path`.
pub(crate) fn user_module_id(problems: &mut Problems, path: &JsonPath, name: &str) -> Option<ModuleId> {
    if name.starts_with('$') {
        problems.add(path, "names starting with '$' are reserved for system modules");
        None
    } else if name == "edgeAgent" || name == "edgeHub" {
        problems.add(path, "is a system module; configure it under systemModules");
        None
    } else {
        match ModuleId::new(name.to_owned()) {
            Ok(id) => Some(id),
            Err(e) => {
                problems.add(path, e.to_string());
                None
            }
        }
    }
}

/// Reads user module `name` (a `modules` entry, found at `path`), recording every problem.
pub(crate) fn user_module(
    problems: &mut Problems,
    path: &JsonPath,
    name: &str,
    value: &Value,
) -> Option<(ModuleId, ModuleSpec)> {
    let id = user_module_id(problems, path, name);
    let spec = module_spec(problems, path, value, Role::User);
    Some((id?, spec?))
}

/// Reads `$edgeAgent`'s `properties.desired`, recording every problem.
pub fn parse(problems: &mut Problems, path: &JsonPath, value: &Value) -> Option<EdgeAgentDesired> {
    let map = problems.object(path, value)?;
    problems.unknown_keys(
        path,
        map,
        &["schemaVersion", "runtime", "systemModules", "modules", "integrity", "$version", "$metadata"],
    );
    let schema_version = problems.string(path, map, "schemaVersion");
    if let Some(v) = &schema_version
        && !["1.0", "1.1"].contains(&v.as_str())
    {
        problems.add(&path.key("schemaVersion"), format!("{v:?} is not supported; use \"1.0\" or \"1.1\""));
    }
    let runtime = match map.get("runtime") {
        Some(value) => runtime(problems, &path.key("runtime"), value),
        None => {
            problems.add(&path.key("runtime"), "is required");
            RuntimeSettings::default()
        }
    };
    let system_path = path.key("systemModules");
    let (edge_agent, edge_hub) = match map.get("systemModules").map(|v| problems.object(&system_path, v)) {
        None => {
            problems.add(&system_path, "is required");
            (None, None)
        }
        Some(None) => (None, None),
        Some(Some(system)) => {
            problems.unknown_keys(&system_path, system, &["edgeAgent", "edgeHub"]);
            let agent = match system.get("edgeAgent") {
                Some(v) => module_spec(problems, &system_path.key("edgeAgent"), v, Role::Agent),
                None => {
                    problems.add(&system_path.key("edgeAgent"), "is required");
                    None
                }
            };
            let hub = match system.get("edgeHub") {
                Some(v) => module_spec(problems, &system_path.key("edgeHub"), v, Role::Hub),
                None => {
                    problems.add(&system_path.key("edgeHub"), "is required");
                    None
                }
            };
            (agent, hub)
        }
    };
    let mut modules = BTreeMap::new();
    if let Some(value) = map.get("modules") {
        let modules_path = path.key("modules");
        if let Some(entries) = problems.object(&modules_path, value) {
            for (name, spec) in entries {
                if let Some((id, spec)) = user_module(problems, &modules_path.key(name), name, spec) {
                    modules.insert(id, spec);
                }
            }
        }
    }
    Some(EdgeAgentDesired {
        schema_version: schema_version?,
        runtime,
        edge_agent: edge_agent?,
        edge_hub: edge_hub?,
        modules,
    })
}
