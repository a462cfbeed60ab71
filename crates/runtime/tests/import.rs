//! Image import into a private containerd started by the test.

#![allow(clippy::unwrap_used)]

use outpost_runtime::containerd::Containerd as Client;
use outpost_runtime::oci::{ImageBuilder, digest, write_archive};
use outpost_testkit::Containerd;

#[tokio::test]
async fn archives_import_into_containerd_once_and_stay_named() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    assert!(client.version().await.unwrap().starts_with("1."));

    let image = ImageBuilder::new()
        .bytes("/etc/motd", b"outpost\n".to_vec(), 0o644)
        .file("/bin/busybox", std::path::Path::new("/bin/busybox"))
        .unwrap()
        .entrypoint(&["/bin/busybox"])
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    write_archive(&image, "outpost.test/busybox:1", &archive).unwrap();

    assert_eq!(client.image_digest("outpost.test/busybox:1").await.unwrap(), None);
    let imported = client.import_archive(&archive, None).await.unwrap();
    assert_eq!(imported.name, "outpost.test/busybox:1");
    assert_eq!(imported.manifest_digest, digest(&image.manifest));
    assert_eq!(imported.top_snapshot, digest(&image.layer), "one layer: chain id = diff id");
    assert_eq!(client.image_digest("outpost.test/busybox:1").await.unwrap(), Some(digest(&image.manifest)));

    // Importing again, also under a second name, is harmless.
    client.import_archive(&archive, None).await.unwrap();
    client.import_archive(&archive, Some("outpost.test/alias:latest")).await.unwrap();
    assert!(client.image_digest("outpost.test/alias:latest").await.unwrap().is_some());
}

#[tokio::test]
async fn broken_archives_are_refused_with_the_reason() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("junk.tar");
    std::fs::write(&archive, b"not a tar archive at all").unwrap();
    let err = client.import_archive(&archive, Some("x:1")).await.unwrap_err().to_string();
    assert!(err.contains("junk.tar") || err.contains("index.json"), "{err}");
}
