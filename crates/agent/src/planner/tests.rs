//! Planner tests: one per row of the diff table, plus ordering.

use super::*;
use crate::test_support::{id, spec};

fn seen(name: &str, spec: &ModuleSpec, state: ObservedState) -> ObservedModule {
    ObservedModule {
        module: id(name),
        config_fingerprint: ContainerConfig::of(spec).fingerprint(),
        state,
        stats: RestartStats::default(),
    }
}

const NOW: u64 = 10_000;
const RUNNING: ObservedState = ObservedState::Running { since: 9_000 };

fn run(desired: &[(&str, ModuleSpec)], observed: &[ObservedModule]) -> Plan {
    let desired: BTreeMap<ModuleId, ModuleSpec> = desired.iter().map(|(n, s)| (id(n), s.clone())).collect();
    plan(&desired, observed, &|image: &str| image.ends_with(":cached"), &RestartSettings::default(), NOW)
}

fn start(name: &str) -> Step {
    Step::Start { module: id(name), restart: false }
}

#[test]
fn removed_modules_are_stopped_and_removed() {
    let a = spec("a:cached", 1);
    let plan = run(&[], &[seen("a", &a, RUNNING), seen("b", &a, ObservedState::Exited { code: 0, at: 1 })]);
    assert_eq!(
        plan.steps,
        [Step::Stop { module: id("a") }, Step::Remove { module: id("a") }, Step::Remove { module: id("b") }]
    );
}

#[test]
fn new_modules_are_pulled_created_and_started() {
    let plan = run(&[("a", spec("reg/a:1", 1))], &[]);
    assert_eq!(plan.steps, [Step::Pull { image: "reg/a:1".into() }, Step::Create { module: id("a") }, start("a")]);
    let mut stopped = spec("a:cached", 1);
    stopped.status = DesiredStatus::Stopped;
    assert_eq!(run(&[("a", stopped)], &[]).steps, [Step::Create { module: id("a") }], "cached image, desired stopped");
}

#[test]
fn every_config_change_recreates() {
    let old = spec("a:cached", 1);
    let changes: Vec<(&str, ModuleSpec)> = vec![
        ("image", ModuleSpec { image: "a:2".into(), ..old.clone() }),
        ("createOptions", ModuleSpec { create_options: "{\"User\":\"1000\"}".into(), ..old.clone() }),
        ("env", ModuleSpec { env: BTreeMap::from([("K".into(), "V".into())]), ..old.clone() }),
        ("version", ModuleSpec { version: "1.1".into(), ..old.clone() }),
        ("restartPolicy", ModuleSpec { restart_policy: RestartPolicy::Never, ..old.clone() }),
    ];
    for (what, new) in changes {
        let plan = run(&[("a", new.clone())], &[seen("a", &old, RUNNING)]);
        let mut expected = vec![Step::Stop { module: id("a") }, Step::Remove { module: id("a") }];
        if what == "image" {
            expected.insert(0, Step::Pull { image: "a:2".into() });
        }
        expected.extend([Step::Create { module: id("a") }, start("a")]);
        assert_eq!(plan.steps, expected, "change of {what}");
    }
    let reordered = ModuleSpec { startup_order: 7, ..old.clone() };
    assert_eq!(run(&[("a", reordered)], &[seen("a", &old, RUNNING)]).steps, [], "startupOrder alone does not recreate");
}

#[test]
fn broken_containers_are_replaced() {
    let a = spec("a:cached", 1);
    let plan = run(&[("a", a.clone())], &[seen("a", &a, ObservedState::Unknown)]);
    assert_eq!(plan.steps, [Step::Remove { module: id("a") }, Step::Create { module: id("a") }, start("a")]);
}

#[test]
fn desired_status_changes_start_and_stop_without_recreating() {
    let a = spec("a:cached", 1);
    let stopped = ModuleSpec { status: DesiredStatus::Stopped, ..a.clone() };
    assert_eq!(run(&[("a", stopped.clone())], &[seen("a", &a, RUNNING)]).steps, [Step::Stop { module: id("a") }]);
    assert_eq!(run(&[("a", stopped.clone())], &[seen("a", &a, ObservedState::Exited { code: 0, at: 5 })]).steps, []);
    assert_eq!(run(&[("a", a.clone())], &[seen("a", &a, ObservedState::Created)]).steps, [start("a")]);
    assert_eq!(run(&[("a", a.clone())], &[seen("a", &a, RUNNING)]).steps, []);
}

#[test]
fn exited_modules_follow_their_restart_policy_and_cool_off() {
    let a = spec("a:cached", 1);
    let due = run(&[("a", a.clone())], &[seen("a", &a, ObservedState::Exited { code: 1, at: NOW - 10 })]);
    assert_eq!(due.steps, [Step::Start { module: id("a"), restart: true }]);

    let mut cooling = seen("a", &a, ObservedState::Exited { code: 1, at: NOW - 5 });
    cooling.stats = RestartStats { restart_count: 2, last_restart: Some(NOW - 100) };
    let plan = run(&[("a", a.clone())], &[cooling]);
    assert_eq!(plan.steps, []);
    assert_eq!(plan.backoff[&id("a")], NOW - 5 + 40);

    let on_failure = ModuleSpec { restart_policy: RestartPolicy::OnFailure, ..a.clone() };
    let clean = seen("a", &on_failure, ObservedState::Exited { code: 0, at: NOW - 500 });
    assert_eq!(run(&[("a", on_failure)], &[clean]).steps, [], "clean exit is final for on-failure");

    let mut worn_out = seen("a", &a, ObservedState::Exited { code: 1, at: NOW - 500 });
    worn_out.stats.restart_count = 20;
    let plan = run(&[("a", a)], &[worn_out]);
    assert!(plan.gave_up.contains(&id("a")) && plan.steps.is_empty());
}

#[test]
fn pulls_come_first_then_removals_then_startup_order_groups() {
    let plan = run(
        &[("late", spec("reg/x:1", u32::MAX)), ("first", spec("reg/x:1", 0)), ("second", spec("reg/y:1", 5))],
        &[seen("gone", &spec("old:cached", 1), RUNNING)],
    );
    assert_eq!(
        plan.steps,
        [
            Step::Pull { image: "reg/x:1".into() },
            Step::Pull { image: "reg/y:1".into() },
            Step::Stop { module: id("gone") },
            Step::Remove { module: id("gone") },
            Step::Create { module: id("first") },
            start("first"),
            Step::Create { module: id("second") },
            start("second"),
            Step::Create { module: id("late") },
            start("late"),
        ]
    );
}

#[test]
fn never_pull_policy_never_pulls() {
    let a = ModuleSpec { image_pull_policy: ImagePullPolicy::Never, ..spec("reg/a:1", 1) };
    assert_eq!(run(&[("a", a)], &[]).steps, [Step::Create { module: id("a") }, start("a")]);
}
