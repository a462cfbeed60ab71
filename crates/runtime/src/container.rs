//! What a container should be (runtime-neutral), and how containerd reports it.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Label marking who owns a container: the agent (modules) or outpostd (services).
pub const LABEL_OWNER: &str = "io.outpost.owner";
/// [`LABEL_OWNER`] of modules' containers, which outpost-agent manages.
pub const OWNER_AGENT: &str = "outpost-agent";

/// A bind mount from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A host device made available in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device node on the host.
    pub host: PathBuf,
    /// Path in the container.
    pub container: String,
    /// cgroup permissions: a combination of `r`, `w`, `m`.
    pub permissions: String,
}

/// Where a container's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Appended to a file by containerd's shim.
    File(PathBuf),
    /// Handed as pipes to a logging program that the shim starts per task (containerd's
    /// `binary://` loggers): fd 3 is stdout, fd 4 stderr, and the program signals readiness
    /// on fd 5. `args` reach it as `key value` pairs, in no particular order.
    Binary {
        /// The program, on the host.
        program: PathBuf,
        /// Its arguments.
        args: Vec<(String, String)>,
    },
}

impl Output {
    /// The URI containerd takes for a task's stdout and stderr.
    pub fn uri(&self) -> String {
        match self {
            Self::File(path) => format!("file://{}", path.display()),
            Self::Binary { program, args } => {
                let query: Vec<String> = args
                    .iter()
                    .map(|(k, v)| format!("{}={}", outpost_core::sas::url_encode(k), outpost_core::sas::url_encode(v)))
                    .collect();
                format!("binary://{}?{}", program.display(), query.join("&"))
            }
        }
    }
}

impl From<&std::path::Path> for Output {
    fn from(path: &std::path::Path) -> Self {
        Self::File(path.to_owned())
    }
}

impl From<&PathBuf> for Output {
    fn from(path: &PathBuf) -> Self {
        Self::File(path.clone())
    }
}

/// Everything needed to create a container from an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Container id (the module name, usually).
    pub id: String,
    /// Image reference; it must be present.
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub cmd: Option<Vec<String>>,
    /// Environment added to (and overriding) the image's.
    pub env: BTreeMap<String, String>,
    /// Working directory, if not the image's.
    pub working_dir: Option<String>,
    /// `uid[:gid]`, if not the image's (names are not resolved).
    pub user: Option<String>,
    /// Labels on the container record.
    pub labels: BTreeMap<String, String>,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// A hosts file bind-mounted read-only at `/etc/hosts` (e.g. with the hub's name).
    pub hosts_file: Option<PathBuf>,
    /// Host name inside the container (default: the container id).
    pub hostname: Option<String>,
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// CPU quota in billionths of a CPU.
    pub nano_cpus: Option<u64>,
    /// Relative CPU weight (Docker's CpuShares).
    pub cpu_shares: Option<u64>,
    /// Host devices.
    pub devices: Vec<Device>,
    /// Run privileged (all capabilities, all devices).
    pub privileged: bool,
    /// Capabilities added to the default set (`CAP_` prefix optional).
    pub cap_add: Vec<String>,
    /// Capabilities removed from the default set.
    pub cap_drop: Vec<String>,
}

/// A container's task state as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// The container exists but has no task (never started, or cleaned up after exit).
    NoTask,
    /// The task exists but was not started.
    Created,
    /// Running with this pid.
    Running {
        /// Process id on the host.
        pid: u32,
    },
    /// The task exited with this status.
    Stopped {
        /// Exit code (128 + signal number for signals).
        exit_code: u32,
        /// When it exited, seconds since the Unix epoch.
        exited_at: u64,
    },
    /// Paused or otherwise unknown.
    Unknown,
}

/// A container in our namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its id.
    pub id: String,
    /// Its image.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A running task's resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// CPU time used since it started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, without inactive page cache (the working set).
    pub memory_bytes: u64,
    /// The memory limit, if one is set.
    pub memory_limit: Option<u64>,
    /// Processes in the container.
    pub pids: u64,
}
