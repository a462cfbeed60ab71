//! Image garbage collection on a real containerd: an image a module's container uses and one
//! the deployment names stay; an unused one goes once unused for longer than the threshold.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use outpost_runtime::container::{ContainerSpec, LABEL_OWNER, OWNER_AGENT};
use outpost_runtime::containerd::Containerd;
use outpost_runtime::oci::{ImageBuilder, write_archive};

async fn import(runtime: &Containerd, dir: &Path, name: &str) {
    let image = ImageBuilder::new()
        .program("/bin/true", Path::new("/bin/true"))
        .unwrap()
        .entrypoint(&["/bin/true"])
        .build()
        .unwrap();
    let archive = dir.join(format!("{}.tar", name.replace([':', '/'], "-")));
    write_archive(&image, name, &archive).unwrap();
    runtime.import_archive(&archive, None).await.unwrap();
}

#[tokio::test]
async fn unused_images_are_removed_after_the_threshold() {
    let containerd = outpost_testkit::Containerd::start();
    let runtime = Containerd::connect(&containerd.socket(), containerd.namespace()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["example/used:1", "example/deployed:1", "example/old:1"] {
        import(&runtime, dir.path(), name).await;
    }
    let spec = ContainerSpec {
        id: "module".into(),
        image: "example/used:1".into(),
        labels: BTreeMap::from([(LABEL_OWNER.to_owned(), OWNER_AGENT.to_owned())]),
        ..ContainerSpec::default()
    };
    runtime.create_container(&spec).await.unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(
        &deployment,
        r#"{"modulesContent": {"$edgeAgent": {"properties.desired": {
        "modules": {"next": {"settings": {"image": "example/deployed:1"}}}}}}}"#,
    )
    .unwrap();
    let journal = dir.path().join("gc.json");
    let threshold = Duration::from_secs(3600);

    let removed = outpost_host::gc::collect(&runtime, &deployment, &journal, threshold, 1_000_000).await.unwrap();
    assert!(removed.is_empty(), "first seen unused now: {removed:?}");
    let removed = outpost_host::gc::collect(&runtime, &deployment, &journal, threshold, 1_003_601).await.unwrap();
    assert_eq!(removed, ["example/old:1"]);
    let mut left = runtime.list_images().await.unwrap();
    left.sort();
    assert_eq!(left, ["example/deployed:1", "example/used:1"]);
    runtime.remove("module").await.unwrap();
}
