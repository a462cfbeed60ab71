//! Importing images: OCI layout archive → content store → image record → unpacked
//! snapshots (pulls share the second half, [`Containerd::store_image`]), all under a lease so that containerd's garbage collector cannot take half an
//! import. GC labels tie the manifest to its config and layers and the config to the top
//! snapshot, so the whole image stays while the image record exists.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, CreateRequest as CreateLeaseRequest, DeleteImageRequest,
    DeleteRequest as DeleteLeaseRequest, GetImageRequest, Image, ListImagesRequest, UpdateImageRequest,
};
use containerd_client::types::Descriptor as CtdDescriptor;

use super::Containerd;
use super::content::BlobWrite;
use crate::error::RuntimeError;
use crate::oci::{Descriptor, ImageConfig, Manifest, OciLayout, chain_ids};

/// An image now present in containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// Its name (reference).
    pub name: String,
    /// The manifest digest.
    pub manifest_digest: String,
    /// Its configuration.
    pub config: ImageConfig,
    /// The snapshot holding its unpacked file system.
    pub top_snapshot: String,
}

fn ctd(descriptor: &Descriptor) -> CtdDescriptor {
    CtdDescriptor {
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: descriptor.size as i64,
        annotations: Default::default(),
    }
}

impl Containerd {
    /// Imports the OCI layout archive at `archive`, naming the image `name` or, if `None`,
    /// by the archive's `org.opencontainers.image.ref.name` annotation.
    pub async fn import_archive(&self, archive: &Path, name: Option<&str>) -> Result<ImportedImage, RuntimeError> {
        let scratch = tempfile::Builder::new().prefix("outpost-import").tempdir().map_err(RuntimeError::io(archive))?;
        let (archive_path, dir) = (archive.to_owned(), scratch.path().to_owned());
        let layout = tokio::task::spawn_blocking(move || OciLayout::extract(&archive_path, &dir))
            .await
            .map_err(|e| RuntimeError::InvalidImage { what: archive.display().to_string(), reason: e.to_string() })??;
        let name = match name.map(str::to_owned).or_else(|| layout.reference.clone()) {
            Some(name) => name,
            None => {
                return Err(RuntimeError::InvalidImage {
                    what: archive.display().to_string(),
                    reason: "has no image name; give one".into(),
                });
            }
        };
        let lease = self.create_lease("import").await?;
        let result = self.import_layout(&layout, &name, &lease).await;
        self.delete_lease(&lease).await;
        result
    }

    /// A lease that keeps what is written under it from garbage collection for up to an
    /// hour (in case we die before deleting it).
    pub(super) async fn create_lease(&self, purpose: &str) -> Result<String, RuntimeError> {
        let id = format!("outpost-{purpose}-{}", uuid_like());
        let expire = HashMap::from([("containerd.io/gc.expire".to_owned(), expiry_in_an_hour())]);
        LeasesClient::new(self.channel.clone())
            .create(self.request(CreateLeaseRequest { id: id.clone(), labels: expire }, None))
            .await
            .map_err(RuntimeError::containerd("create lease"))?;
        Ok(id)
    }

    /// Deletes a lease; failures only delay garbage collection until the lease expires.
    pub(super) async fn delete_lease(&self, id: &str) {
        let request = self.request(DeleteLeaseRequest { id: id.to_owned(), sync: false }, None);
        if let Err(status) = LeasesClient::new(self.channel.clone()).delete(request).await {
            tracing::warn!(lease = id, error = status.message(), "cannot delete lease; it expires within the hour");
        }
    }

    async fn import_layout(&self, layout: &OciLayout, name: &str, lease: &str) -> Result<ImportedImage, RuntimeError> {
        for layer in &layout.manifest.layers {
            let blob = BlobWrite { digest: &layer.digest, size: layer.size, labels: HashMap::new(), lease };
            self.write_file(&layout.blob_path(&layer.digest)?, blob).await?;
        }
        let read = |digest: &str| -> Result<Bytes, RuntimeError> {
            let path = layout.blob_path(digest)?;
            std::fs::read(&path).map(Bytes::from).map_err(RuntimeError::io(&path))
        };
        let config_bytes = read(&layout.manifest.config.digest)?;
        let manifest_bytes = read(&layout.manifest_descriptor.digest)?;
        self.store_image(
            name,
            &layout.manifest_descriptor,
            manifest_bytes,
            &layout.manifest,
            config_bytes,
            &layout.config,
            lease,
        )
        .await
    }

    /// With the layers in the content store: writes the config and the manifest with the
    /// labels that keep the image whole, unpacks the layers and records the image as `name`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_image(
        &self,
        name: &str,
        manifest_descriptor: &Descriptor,
        manifest_bytes: Bytes,
        manifest: &Manifest,
        config_bytes: Bytes,
        config: &ImageConfig,
        lease: &str,
    ) -> Result<ImportedImage, RuntimeError> {
        let chain = chain_ids(&config.rootfs.diff_ids);
        let top = chain.last().cloned().unwrap_or_default();
        let config_labels =
            HashMap::from([(format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter), top.clone())]);
        let blob =
            BlobWrite { digest: &manifest.config.digest, size: manifest.config.size, labels: config_labels, lease };
        self.write_bytes(config_bytes, blob).await?;
        let mut manifest_labels =
            HashMap::from([("containerd.io/gc.ref.content.config".to_owned(), manifest.config.digest.clone())]);
        for (i, layer) in manifest.layers.iter().enumerate() {
            manifest_labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), layer.digest.clone());
        }
        let blob = BlobWrite {
            digest: &manifest_descriptor.digest,
            size: manifest_descriptor.size,
            labels: manifest_labels,
            lease,
        };
        self.write_bytes(manifest_bytes, blob).await?;

        self.unpack(&manifest.layers, &chain, lease).await?;

        let image = Image { name: name.to_owned(), target: Some(ctd(manifest_descriptor)), ..Default::default() };
        let mut images = ImagesClient::new(self.channel.clone());
        match images
            .create(self.request(CreateImageRequest { image: Some(image.clone()), ..Default::default() }, Some(lease)))
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                images
                    .update(self.request(UpdateImageRequest { image: Some(image), ..Default::default() }, Some(lease)))
                    .await
                    .map_err(RuntimeError::containerd("update image"))?;
            }
            Err(status) => return Err(RuntimeError::Containerd { operation: "create image", status }),
        }
        tracing::info!(image = name, digest = %manifest_descriptor.digest, "image stored");
        Ok(ImportedImage {
            name: name.to_owned(),
            manifest_digest: manifest_descriptor.digest.clone(),
            config: config.clone(),
            top_snapshot: top,
        })
    }

    async fn unpack(&self, layers: &[Descriptor], chain: &[String], lease: &str) -> Result<(), RuntimeError> {
        let mut snapshots = SnapshotsClient::new(self.channel.clone());
        let mut diff = DiffClient::new(self.channel.clone());
        for (i, (layer, chain_id)) in layers.iter().zip(chain).enumerate() {
            let stat = StatSnapshotRequest { snapshotter: self.snapshotter.clone(), key: chain_id.clone() };
            if snapshots.stat(self.request(stat, None)).await.is_ok() {
                continue;
            }
            let key = format!("extract-{}-{}", uuid_like(), chain_id);
            let parent = if i == 0 { String::new() } else { chain[i - 1].clone() };
            let prepare = PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.clone(),
                parent,
                labels: Default::default(),
            };
            let mounts = snapshots
                .prepare(self.request(prepare, Some(lease)))
                .await
                .map_err(RuntimeError::containerd("prepare snapshot"))?
                .into_inner()
                .mounts;
            let apply = ApplyRequest { diff: Some(ctd(layer)), mounts, ..Default::default() };
            let applied = diff.apply(self.request(apply, Some(lease))).await;
            let remove = |key: String| RemoveSnapshotRequest { snapshotter: self.snapshotter.clone(), key };
            if let Err(status) = applied {
                let _ = snapshots.remove(self.request(remove(key), None)).await;
                return Err(RuntimeError::Containerd { operation: "apply layer", status });
            }
            let commit = CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: chain_id.clone(),
                key: key.clone(),
                labels: Default::default(),
            };
            match snapshots.commit(self.request(commit, Some(lease))).await {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::AlreadyExists => {
                    let _ = snapshots.remove(self.request(remove(key), None)).await;
                }
                Err(status) => return Err(RuntimeError::Containerd { operation: "commit snapshot", status }),
            }
        }
        Ok(())
    }

    /// The names of every image in the namespace.
    pub async fn list_images(&self) -> Result<Vec<String>, RuntimeError> {
        let response = ImagesClient::new(self.channel.clone())
            .list(self.request(ListImagesRequest { filters: Vec::new() }, None))
            .await
            .map_err(|status| RuntimeError::Containerd { operation: "list images", status })?;
        Ok(response.into_inner().images.into_iter().map(|i| i.name).collect())
    }

    /// Removes image `name` (its content and snapshots go with containerd's garbage
    /// collection once nothing else refers to them); absent images are no error.
    pub async fn remove_image(&self, name: &str) -> Result<(), RuntimeError> {
        match ImagesClient::new(self.channel.clone())
            .delete(self.request(DeleteImageRequest { name: name.to_owned(), sync: true, target: None }, None))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(RuntimeError::Containerd { operation: "delete image", status }),
        }
    }

    /// The manifest digest of image `name`, or `None` if containerd does not have it.
    pub async fn image_digest(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        match ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest { name: name.to_owned() }, None))
            .await
        {
            Ok(response) => Ok(response.into_inner().image.and_then(|i| i.target).map(|t| t.digest)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(RuntimeError::Containerd { operation: "get image", status }),
        }
    }
}

/// A short random id for leases and scratch snapshot keys.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{:x}", std::process::id(), nanos)
}

fn expiry_in_an_hour() -> String {
    let expiry = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let secs = expiry.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    outpost_core::time::rfc3339(secs)
}
