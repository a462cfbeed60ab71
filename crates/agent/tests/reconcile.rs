//! Reconcile passes against a private containerd and an in-process identityd: modules from
//! an Azure manifest start in order, see their identity, workload socket and hub name;
//! changes recreate only what changed; removal takes container and identity; crashes are
//! restarted per policy with the cool-off.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use outpost_agent::planner::Step;
use outpost_runtime::container::TaskState;
use outpost_testkit::eventually;
use support::{id, manifest, now, pid, setup};

const SERVE: &str = "test -S /var/run/iotedge/workload.sock && echo socket-ok; grep -q edge.local /etc/hosts && echo hosts-ok; \
                     echo id=$IOTEDGE_MODULEID gen=$IOTEDGE_MODULEGENERATIONID uri=$IOTEDGE_WORKLOADURI; \
                     trap 'exit 0' TERM; while true; do sleep 0.1; done";

#[tokio::test]
async fn deployments_are_applied_changed_and_removed() {
    let mut s = setup().await;
    let desired = manifest(&[("first", 0, SERVE, "always"), ("second", 5, SERVE, "always")]);
    let report = s.reconciler.reconcile(&desired, &[], now()).await.unwrap();
    assert!(report.blocked.is_empty(), "{:?}", report.blocked);
    let creates: Vec<&Step> = report.plan.steps.iter().filter(|s| matches!(s, Step::Create { .. })).collect();
    assert_eq!(
        creates,
        [&Step::Create { module: id("first") }, &Step::Create { module: id("second") }],
        "startupOrder"
    );

    let log = s.logs.join("first.log");
    eventually("the module's view of its environment", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("socket-ok") && text.contains("hosts-ok") && text.contains("id=first gen=")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("uri=unix:///var/run/iotedge/workload.sock"), "{text}");
    let (first_pid, second_pid) = (pid(&s.client, "first").await.unwrap(), pid(&s.client, "second").await.unwrap());

    // Nothing changed: nothing happens.
    let report = s.reconciler.reconcile(&desired, &[], now()).await.unwrap();
    assert!(report.plan.steps.is_empty(), "{:?}", report.plan.steps);

    // Change one module: only that one is recreated.
    let changed =
        manifest(&[("first", 0, SERVE, "always"), ("second", 5, &format!("echo changed; {SERVE}"), "always")]);
    let report = s.reconciler.reconcile(&changed, &[], now()).await.unwrap();
    assert!(report.blocked.is_empty(), "{:?}", report.blocked);
    assert_eq!(pid(&s.client, "first").await, Some(first_pid), "first untouched");
    assert_ne!(pid(&s.client, "second").await, Some(second_pid), "second recreated");

    // Remove one: its container and identity are gone.
    let fewer = manifest(&[("first", 0, SERVE, "always")]);
    s.reconciler.reconcile(&fewer, &[], now()).await.unwrap();
    let ids: Vec<String> =
        s.client.list("io.outpost.owner", "outpost-agent").await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["first"]);
    let mut identity = outpost_proto::identity::v1::identity_client::IdentityClient::new(
        outpost_rpc::connect(&s.identity_socket).await.unwrap(),
    );
    let modules =
        identity.list_modules(outpost_proto::identity::v1::ListModulesRequest {}).await.unwrap().into_inner().modules;
    let names: Vec<&str> = modules.iter().map(|m| m.module_id.as_str()).collect();
    assert_eq!(names, ["first"]);

    s.reconciler.reconcile(&BTreeMap::new(), &[], now()).await.unwrap();
    assert!(s.client.list("io.outpost.owner", "outpost-agent").await.unwrap().is_empty());
}

#[tokio::test]
async fn crashing_modules_are_restarted_after_their_cool_off() {
    let mut s = setup().await;
    let desired = manifest(&[("crasher", 1, "echo started; exit 1", "always"), ("quitter", 1, "exit 0", "on-failure")]);
    let t0 = now();
    s.reconciler.reconcile(&desired, &[], t0).await.unwrap();
    let client = s.client.clone();
    assert_eq!(client.wait("crasher").await.unwrap(), 1);
    assert_eq!(client.wait("quitter").await.unwrap(), 0);

    // Within the first cool-off (10 s): waiting in backoff, not restarted.
    let exited = match client.state("crasher").await.unwrap() {
        TaskState::Stopped { exited_at, .. } => exited_at,
        other => panic!("{other:?}"),
    };
    let report = s.reconciler.reconcile(&desired, &[], exited + 5).await.unwrap();
    assert_eq!(report.plan.backoff.get(&id("crasher")), Some(&(exited + 10)));
    assert!(report.plan.steps.is_empty(), "{:?}", report.plan.steps);

    // After it: restarted and counted; the clean exit under on-failure stays down.
    let report = s.reconciler.reconcile(&desired, &[], exited + 10).await.unwrap();
    assert_eq!(report.plan.steps, [Step::Start { module: id("crasher"), restart: true }]);
    assert_eq!(s.reconciler.stats(&id("crasher")).restart_count, 1);
    assert_eq!(client.wait("crasher").await.unwrap(), 1);
    eventually("two runs in the log", Duration::from_secs(5), || {
        std::fs::read_to_string(s.logs.join("crasher.log")).unwrap_or_default().matches("started").count() == 2
    });
}
