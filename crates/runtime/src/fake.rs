//! A recording, in-memory [`ContainerRuntime`] for unit tests of the layers above: images
//! and containers in maps, every mutating call recorded in order, failures and slow pulls on
//! demand, and task exits driven by the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::container::{ContainerInfo, ContainerSpec, Output, Stats, TaskState};
use crate::containerd::{ImportedImage, PullProgress};
use crate::error::RuntimeError;
use crate::oci::{ImageConfig, RootFs, digest};
use crate::registry::RegistryClient;
use crate::runtime::ContainerRuntime;

/// A mutating call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `pull(image)`.
    Pull(String),
    /// `create_container(id)`.
    Create(String),
    /// `start(id)`.
    Start(String),
    /// `stop(id)`.
    Stop(String),
    /// `remove(id)`.
    Remove(String),
}

/// Operations that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Pulling an image (keyed by image name).
    Pull,
    /// Creating a container (keyed by id).
    Create,
    /// Starting one.
    Start,
    /// Stopping one.
    Stop,
    /// Removing one.
    Remove,
}

#[derive(Debug, Default)]
struct State {
    images: BTreeMap<String, String>,
    containers: BTreeMap<String, (ContainerSpec, TaskState)>,
    calls: Vec<Call>,
    failures: BTreeMap<(Op, String), String>,
    gates: BTreeMap<String, Arc<Notify>>,
    next_pid: u32,
}

/// The fake runtime.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

impl FakeRuntime {
    /// An empty runtime.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes image `name` present (as if imported).
    pub fn add_image(&self, name: &str) {
        self.lock().images.insert(name.to_owned(), digest(name.as_bytes()));
    }

    /// Makes `op` on `key` (an image for pulls, a container id otherwise) fail with `reason`
    /// until [`FakeRuntime::heal`].
    pub fn fail(&self, op: Op, key: &str, reason: &str) {
        self.lock().failures.insert((op, key.to_owned()), reason.to_owned());
    }

    /// Makes `op` on `key` work again.
    pub fn heal(&self, op: Op, key: &str) {
        self.lock().failures.remove(&(op, key.to_owned()));
    }

    /// Makes pulls of `image` wait until the returned gate is notified.
    pub fn gate_pull(&self, image: &str) -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        self.lock().gates.insert(image.to_owned(), gate.clone());
        gate
    }

    /// Ends container `id`'s task with `exit_code` at `at` (seconds since the epoch).
    pub fn exit(&self, id: &str, exit_code: u32, at: u64) {
        if let Some((_, state)) = self.lock().containers.get_mut(id) {
            *state = TaskState::Stopped { exit_code, exited_at: at };
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// The spec container `id` was created with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(id).map(|(spec, _)| spec.clone())
    }

    /// Adds image `name` and describes it as an import or pull would.
    fn store(&self, name: &str) -> ImportedImage {
        self.add_image(name);
        ImportedImage {
            manifest_digest: self.lock().images.get(name).cloned().unwrap_or_default(),
            name: name.to_owned(),
            config: ImageConfig {
                architecture: crate::oci::host_architecture().into(),
                os: "linux".into(),
                config: Default::default(),
                rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
            },
            top_snapshot: String::new(),
        }
    }

    fn check(&self, op: Op, key: &str, call: Call) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.calls.push(call);
        match state.failures.get(&(op, key.to_owned())) {
            Some(reason) => Err(RuntimeError::InvalidSpec(reason.clone())),
            None => Ok(()),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn image_digest(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        Ok(self.lock().images.get(name).cloned())
    }

    async fn pull(
        &self,
        _registry: &RegistryClient,
        name: &str,
        progress: Arc<watch::Sender<PullProgress>>,
    ) -> Result<ImportedImage, RuntimeError> {
        self.lock().calls.push(Call::Pull(name.to_owned()));
        progress.send_replace(PullProgress { layers_total: 1, bytes_total: 100, ..Default::default() });
        let gate = self.lock().gates.remove(name);
        if let Some(gate) = gate {
            gate.notified().await;
        }
        if let Some(reason) = self.lock().failures.get(&(Op::Pull, name.to_owned())) {
            return Err(RuntimeError::Pull { image: name.to_owned(), reason: reason.clone() });
        }
        progress.send_replace(PullProgress { layers_total: 1, layers_done: 1, bytes_total: 100, bytes_done: 100 });
        Ok(self.store(name))
    }

    async fn import_archive(
        &self,
        archive: &std::path::Path,
        name: Option<&str>,
    ) -> Result<ImportedImage, RuntimeError> {
        let name = name.map(str::to_owned).unwrap_or_else(|| archive.display().to_string());
        Ok(self.store(&name))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        self.check(Op::Create, &spec.id, Call::Create(spec.id.clone()))?;
        let mut state = self.lock();
        if !state.images.contains_key(&spec.image) {
            return Err(RuntimeError::InvalidSpec(format!("image {} is not present", spec.image)));
        }
        if state.containers.contains_key(&spec.id) {
            return Err(RuntimeError::InvalidSpec(format!("container {} already exists", spec.id)));
        }
        state.containers.insert(spec.id.clone(), (spec.clone(), TaskState::NoTask));
        Ok(())
    }

    async fn start(&self, id: &str, _output: &Output) -> Result<(), RuntimeError> {
        self.check(Op::Start, id, Call::Start(id.to_owned()))?;
        let mut state = self.lock();
        state.next_pid += 1;
        let pid = 1000 + state.next_pid;
        match state.containers.get_mut(id) {
            Some((_, task)) => {
                *task = TaskState::Running { pid };
                Ok(())
            }
            None => Err(RuntimeError::NotFound(id.to_owned())),
        }
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<Option<u32>, RuntimeError> {
        self.check(Op::Stop, id, Call::Stop(id.to_owned()))?;
        let mut state = self.lock();
        match state.containers.get_mut(id) {
            Some((_, task @ TaskState::Running { .. })) => {
                *task = TaskState::Stopped { exit_code: 143, exited_at: now() };
                Ok(Some(143))
            }
            Some(_) => Ok(None),
            None => Err(RuntimeError::NotFound(id.to_owned())),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.check(Op::Remove, id, Call::Remove(id.to_owned()))?;
        self.lock().containers.remove(id);
        Ok(())
    }

    async fn state(&self, id: &str) -> Result<TaskState, RuntimeError> {
        self.lock().containers.get(id).map(|(_, state)| *state).ok_or_else(|| RuntimeError::NotFound(id.to_owned()))
    }

    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Ok(self
            .lock()
            .containers
            .values()
            .filter(|(spec, _)| spec.labels.get(key).map(String::as_str) == Some(value))
            .map(|(spec, _)| ContainerInfo {
                id: spec.id.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
            })
            .collect())
    }

    async fn stats(&self, id: &str) -> Result<Option<Stats>, RuntimeError> {
        Ok(match self.lock().containers.get(id) {
            Some((_, TaskState::Running { .. })) => {
                Some(Stats { cpu_ns: 1_000_000, memory_bytes: 1 << 20, memory_limit: None, pids: 1 })
            }
            _ => None,
        })
    }
}
