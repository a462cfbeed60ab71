//! Registry pulls against a real registry (distribution 2.8 on loopback) into a private
//! containerd: plain and authenticated registries, image indexes, and the failures an
//! operator must be able to read.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use outpost_core::manifest::RegistryCredential;
use outpost_runtime::containerd::{Containerd as Client, PullProgress};
use outpost_runtime::oci::{BuiltImage, ImageBuilder, MEDIA_INDEX, MEDIA_MANIFEST, digest, host_architecture};
use outpost_runtime::registry::{RegistryClient, RegistrySettings};
use outpost_testkit::{Containerd, Registry};
use tokio::sync::watch;

fn image(motd: &str) -> BuiltImage {
    ImageBuilder::new()
        .bytes("/etc/motd", motd.as_bytes().to_vec(), 0o644)
        .file("/bin/busybox", std::path::Path::new("/bin/busybox"))
        .unwrap()
        .entrypoint(&["/bin/busybox"])
        .build()
        .unwrap()
}

fn credential(registry: &Registry, password: &str) -> RegistryCredential {
    RegistryCredential { address: registry.address().into(), username: "puller".into(), password: password.into() }
}

async fn pull(
    client: &Client,
    reference: &str,
    credentials: &[RegistryCredential],
) -> Result<(String, PullProgress), String> {
    let registry =
        RegistryClient::new(reference, &RegistrySettings::default(), credentials).map_err(|e| e.to_string())?;
    let (progress, seen) = watch::channel(PullProgress::default());
    let image = client.pull(&registry, reference, Arc::new(progress)).await.map_err(|e| e.to_string())?;
    let last = *seen.borrow();
    Ok((image.manifest_digest, last))
}

#[tokio::test]
async fn images_pushed_to_a_registry_are_pulled_verified_and_named() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let registry = Registry::start();
    let reference = format!("{}/outpost/busybox:1", registry.address());
    let built = image("pulled\n");
    let pushed =
        RegistryClient::new(&reference, &RegistrySettings::default(), &[]).unwrap().push(&built).await.unwrap();
    assert_eq!(pushed, digest(&built.manifest));

    let (manifest, progress) = pull(&client, &reference, &[]).await.unwrap();
    assert_eq!(manifest, digest(&built.manifest), "the manifest keeps its digest");
    assert_eq!(client.image_digest(&reference).await.unwrap(), Some(manifest));
    assert_eq!(progress.layers_done, 1);
    assert_eq!(progress.bytes_done, built.layer.len() as u64);
    assert_eq!(progress.bytes_total, progress.bytes_done);

    // The pulled image runs.
    let spec = outpost_runtime::container::ContainerSpec {
        id: "pulled".into(),
        image: reference.clone(),
        cmd: Some(vec!["cat".into(), "/etc/motd".into()]),
        ..Default::default()
    };
    client.create_container(&spec).await.unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    client.start("pulled", log.path()).await.unwrap();
    assert_eq!(client.wait("pulled").await.unwrap(), 0);
    client.remove("pulled").await.unwrap();

    // A second pull finds the layer in the content store.
    let (_, again) = pull(&client, &reference, &[]).await.unwrap();
    assert_eq!(again.bytes_done, again.bytes_total);

    // A tag that does not exist.
    let missing = format!("{}/outpost/busybox:2", registry.address());
    let error = pull(&client, &missing, &[]).await.unwrap_err();
    assert!(error.contains(&missing) && error.contains("not found"), "{error}");
}

#[tokio::test]
async fn indexes_resolve_to_this_platform() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let registry = Registry::start();
    let mine = image("mine\n");
    let other = image("other\n");
    let base = format!("{}/outpost/multi", registry.address());
    for (tag, built) in [("mine", &mine), ("other", &other)] {
        let reference = format!("{base}:{tag}");
        RegistryClient::new(&reference, &RegistrySettings::default(), &[]).unwrap().push(built).await.unwrap();
    }
    let entry = |built: &BuiltImage, arch: &str| {
        serde_json::json!({"mediaType": MEDIA_MANIFEST, "digest": digest(&built.manifest), "size": built.manifest.len(),
            "platform": {"architecture": arch, "os": "linux"}})
    };
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
        "manifests": [entry(&other, "s390x"), entry(&mine, host_architecture())]}))
    .unwrap();
    let oci = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{base}:all").parse().unwrap();
    oci.auth(&reference, &oci_client::secrets::RegistryAuth::Anonymous, oci_client::RegistryOperation::Push)
        .await
        .unwrap();
    oci.push_manifest_raw(&reference, index, http::HeaderValue::from_static(MEDIA_INDEX)).await.unwrap();

    let (manifest, _) = pull(&client, &format!("{base}:all"), &[]).await.unwrap();
    assert_eq!(manifest, digest(&mine.manifest), "the entry for linux/{}", host_architecture());

    let only_other = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
        "manifests": [entry(&other, "s390x")]}))
    .unwrap();
    let reference: oci_client::Reference = format!("{base}:foreign").parse().unwrap();
    oci.push_manifest_raw(&reference, only_other, http::HeaderValue::from_static(MEDIA_INDEX)).await.unwrap();
    let error = pull(&client, &format!("{base}:foreign"), &[]).await.unwrap_err();
    assert!(error.contains("no manifest for linux/") && error.contains("linux/s390x"), "{error}");
}

#[tokio::test]
async fn private_registries_need_the_right_credentials() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let registry = Registry::start_with_login("puller", "s3cret");
    let reference = format!("{}/private/busybox:1", registry.address());
    let built = image("private\n");
    let good = [credential(&registry, "s3cret")];
    RegistryClient::new(&reference, &RegistrySettings::default(), &good).unwrap().push(&built).await.unwrap();

    let error = pull(&client, &reference, &[]).await.unwrap_err();
    assert!(error.contains("registryCredentials"), "anonymous: {error}");
    let error = pull(&client, &reference, &[credential(&registry, "wrong")]).await.unwrap_err();
    assert!(error.contains("registryCredentials"), "wrong password: {error}");
    assert!(!error.contains("wrong"), "the password is never shown: {error}");
    assert_eq!(client.image_digest(&reference).await.unwrap(), None, "nothing half-pulled is named");

    let (manifest, _) = pull(&client, &reference, &good).await.unwrap();
    assert_eq!(manifest, digest(&built.manifest));
}

#[tokio::test]
async fn an_unreachable_registry_is_reported_as_such() {
    let daemon = Containerd::start();
    let client = Client::connect(&daemon.socket(), daemon.namespace()).await.unwrap();
    let mut registry = Registry::start();
    let reference = format!("{}/outpost/busybox:1", registry.address());
    registry.stop();
    let error = pull(&client, &reference, &[]).await.unwrap_err();
    assert!(error.contains("cannot reach registry") && error.contains(registry.address()), "{error}");
    let error = pull(&client, "Not A Reference", &[]).await.unwrap_err();
    assert!(error.contains("not a valid image reference"), "{error}");
}
