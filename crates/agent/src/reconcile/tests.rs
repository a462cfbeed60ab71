//! Reconcile passes against the recording fake runtime and in-memory identities: ordering,
//! pulls in the background, failures confined to their module.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_core::manifest::ModuleSpec;
use outpost_core::{DeviceId, GenerationId, ModuleId};
use outpost_runtime::fake::{Call, FakeRuntime, Op};

use super::*;
use crate::identity::IdentityError;
use crate::logs::{ModuleLogs, Rotation};
use crate::test_support::{id, spec};

#[derive(Debug, Default)]
struct Identities {
    generations: Mutex<BTreeMap<ModuleId, u32>>,
}

#[async_trait::async_trait]
impl ModuleIdentities for Identities {
    async fn ensure(&self, module: &ModuleId) -> Result<GenerationId, IdentityError> {
        let mut generations = self.generations.lock().unwrap();
        let n = *generations.entry(module.clone()).or_insert(1);
        Ok(GenerationId::new(format!("gen{n}")).unwrap())
    }

    async fn remove(&self, module: &ModuleId) -> Result<(), IdentityError> {
        self.generations.lock().unwrap().remove(module);
        Ok(())
    }
}

struct Env {
    runtime: Arc<FakeRuntime>,
    identities: Arc<Identities>,
    reconciler: Reconciler,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new());
    let identities = Arc::new(Identities::default());
    let device = DeviceContext {
        device_id: DeviceId::new("dev1").unwrap(),
        hub_hostname: "hub.example".into(),
        gateway_hostname: "edge.local".into(),
        workload_dir: dir.path().join("mnt"),
        hosts_file: dir.path().join("hosts"),
        api_version: "2022-08-03".into(),
    };
    let logs = ModuleLogs { dir: dir.path().join("logs"), logger: "/bin/true".into(), rotation: Rotation::default() };
    let settings = RestartSettings::default();
    let pulls = Pulls::new(
        runtime.clone(),
        Default::default(),
        settings.cool_off_unit,
        settings.max_cool_off,
        Default::default(),
    );
    let reconciler = Reconciler::new(runtime.clone(), identities.clone(), device, logs, settings, pulls);
    Env { runtime, identities, reconciler, _dir: dir }
}

fn desired(modules: &[(&str, &str, u32)]) -> BTreeMap<ModuleId, ModuleSpec> {
    modules.iter().map(|(name, image, order)| (id(name), spec(image, *order))).collect()
}

fn calls(runtime: &FakeRuntime) -> Vec<Call> {
    let calls = runtime.calls();
    runtime.clear_calls();
    calls
}

async fn pull_finished(env: &Env) {
    tokio::time::timeout(Duration::from_secs(5), env.reconciler.pulls().waker().notified()).await.unwrap();
}

const LOCAL: &str = "outpost.test/local:1";
const REMOTE: &str = "registry.example/remote:1";
const NOW: u64 = 1_000_000;

#[tokio::test]
async fn modules_start_in_startup_order_and_a_pull_holds_up_only_its_module() {
    let mut env = env();
    env.runtime.add_image(LOCAL);
    let gate = env.runtime.gate_pull(REMOTE);
    let want = desired(&[("late", LOCAL, 2), ("remote", REMOTE, 0), ("early", LOCAL, 1)]);

    let report = env.reconciler.reconcile(&want, &[], NOW).await.unwrap();
    assert!(matches!(report.blocked.get(&id("remote")), Some(Blocked::Pulling(_))), "{:?}", report.blocked);
    assert_eq!(report.blocked.len(), 1);
    tokio::task::yield_now().await;
    assert_eq!(
        calls(&env.runtime),
        [
            Call::Create("early".into()),
            Call::Start("early".into()),
            Call::Create("late".into()),
            Call::Start("late".into()),
            Call::Pull(REMOTE.into()),
        ]
    );

    // While the pull is in flight, passes do not start another one.
    env.reconciler.reconcile(&want, &[], NOW + 1).await.unwrap();
    assert_eq!(calls(&env.runtime), []);

    gate.notify_one();
    pull_finished(&env).await;
    let report = env.reconciler.reconcile(&want, &[], NOW + 2).await.unwrap();
    assert!(report.blocked.is_empty(), "{:?}", report.blocked);
    assert_eq!(calls(&env.runtime), [Call::Create("remote".into()), Call::Start("remote".into())]);
    assert_eq!(report.image_digests.len(), 2);
    let spec = env.runtime.spec("remote").unwrap();
    assert_eq!(spec.env.get("IOTEDGE_MODULEGENERATIONID").map(String::as_str), Some("gen1"));
}

#[tokio::test]
async fn an_updated_module_keeps_running_until_its_new_image_is_there() {
    let mut env = env();
    env.runtime.add_image(LOCAL);
    env.reconciler.reconcile(&desired(&[("m", LOCAL, 0)]), &[], NOW).await.unwrap();
    calls(&env.runtime);

    let gate = env.runtime.gate_pull(REMOTE);
    let updated = desired(&[("m", REMOTE, 0)]);
    let report = env.reconciler.reconcile(&updated, &[], NOW + 1).await.unwrap();
    assert!(matches!(report.blocked.get(&id("m")), Some(Blocked::Pulling(_))));
    tokio::task::yield_now().await;
    assert_eq!(calls(&env.runtime), [Call::Pull(REMOTE.into())], "the old container is left alone");
    let observed = env.reconciler.observe(NOW + 1).await.unwrap();
    let statuses = crate::status::statuses(&updated, &observed, &report);
    assert_eq!(statuses[0].runtime_status, "running");
    assert!(statuses[0].description.starts_with("running; pulling image registry.example/remote:1"));

    gate.notify_one();
    pull_finished(&env).await;
    env.reconciler.reconcile(&updated, &[], NOW + 2).await.unwrap();
    assert_eq!(
        calls(&env.runtime),
        [Call::Stop("m".into()), Call::Remove("m".into()), Call::Create("m".into()), Call::Start("m".into())]
    );
}

#[tokio::test]
async fn failures_stay_with_their_module_and_failed_pulls_cool_off() {
    let mut env = env();
    env.runtime.add_image(LOCAL);
    env.runtime.fail(Op::Pull, REMOTE, "registry.example refused the credentials");
    env.runtime.fail(Op::Create, "broken", "no such device /dev/ttyUSB9");
    let want = desired(&[("broken", LOCAL, 0), ("fine", LOCAL, 1), ("remote", REMOTE, 2)]);

    env.reconciler.reconcile(&want, &[], NOW).await.unwrap();
    pull_finished(&env).await;
    let report = env.reconciler.reconcile(&want, &[], NOW + 1).await.unwrap();
    assert_eq!(
        report.blocked.get(&id("broken")),
        Some(&Blocked::Failed("invalid container spec: no such device /dev/ttyUSB9".into()))
    );
    let Some(Blocked::PullFailed { reason, retry_at }) = report.blocked.get(&id("remote")) else {
        panic!("{:?}", report.blocked)
    };
    assert!(reason.contains("refused the credentials"), "{reason}");
    assert!(*retry_at >= NOW + 10, "first cool-off is 10 s");
    assert!(env.runtime.calls().contains(&Call::Start("fine".into())));
    assert_eq!(report.first_failure().map(|(m, _)| m.clone()), Some(id("broken")));
    calls(&env.runtime);

    // Within the cool-off nothing is pulled; after it, the pull is tried again.
    env.reconciler.reconcile(&want, &[], NOW + 5).await.unwrap();
    assert!(!calls(&env.runtime).contains(&Call::Pull(REMOTE.into())));
    env.runtime.heal(Op::Pull, REMOTE);
    env.reconciler.reconcile(&want, &[], retry_at + 1).await.unwrap();
    tokio::task::yield_now().await;
    assert!(calls(&env.runtime).contains(&Call::Pull(REMOTE.into())));
}

#[tokio::test]
async fn removed_modules_lose_their_container_and_identity() {
    let mut env = env();
    env.runtime.add_image(LOCAL);
    env.reconciler.reconcile(&desired(&[("a", LOCAL, 0), ("b", LOCAL, 0)]), &[], NOW).await.unwrap();
    assert!(env.identities.generations.lock().unwrap().contains_key(&id("b")));
    calls(&env.runtime);
    env.reconciler.reconcile(&desired(&[("a", LOCAL, 0)]), &[], NOW + 1).await.unwrap();
    assert_eq!(calls(&env.runtime), [Call::Stop("b".into()), Call::Remove("b".into())]);
    assert!(!env.identities.generations.lock().unwrap().contains_key(&id("b")));
}
