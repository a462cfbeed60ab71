//! Pulling images from a registry into containerd: resolve the manifest for this platform,
//! stream each missing layer into the content store (verified by digest as it streams and
//! by containerd on commit), then record and unpack the image exactly as an import does.
//! Everything happens under a lease, so an interrupted pull leaves nothing half-applied that
//! looks like an image.

use std::sync::Arc;

use tokio::sync::watch;

use super::Containerd;
use super::content::BlobWrite;
use super::images::ImportedImage;
use crate::error::RuntimeError;
use crate::registry::RegistryClient;

/// How far a pull has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullProgress {
    /// Layers in the image.
    pub layers_total: usize,
    /// Layers in the content store.
    pub layers_done: usize,
    /// Bytes of all layers.
    pub bytes_total: u64,
    /// Bytes in the content store, including layers that were already there.
    pub bytes_done: u64,
}

impl std::fmt::Display for PullProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "{}/{} layers, {:.1}/{:.1} MiB",
            self.layers_done,
            self.layers_total,
            mib(self.bytes_done),
            mib(self.bytes_total)
        )
    }
}

impl Containerd {
    /// Pulls the image `registry` points at and names it `name` in containerd, publishing
    /// progress on `progress` as bytes arrive.
    pub async fn pull(
        &self,
        registry: &RegistryClient,
        name: &str,
        progress: Arc<watch::Sender<PullProgress>>,
    ) -> Result<ImportedImage, RuntimeError> {
        let resolved = registry.resolve().await?;
        let layers = &resolved.manifest.layers;
        progress.send_replace(PullProgress {
            layers_total: layers.len(),
            layers_done: 0,
            bytes_total: layers.iter().map(|l| l.size).sum(),
            bytes_done: 0,
        });
        let lease = self.create_lease("pull").await?;
        let result = async {
            for layer in layers {
                if !self.has_content(&layer.digest).await? {
                    let chunks = registry.layer(layer).await?;
                    let sink = progress.clone();
                    let on_bytes = Arc::new(move |n: u64| sink.send_modify(|p| p.bytes_done += n));
                    let blob = BlobWrite {
                        digest: &layer.digest,
                        size: layer.size,
                        labels: Default::default(),
                        lease: &lease,
                    };
                    let before = progress.borrow().bytes_done;
                    if let Err(e) = self.write_content(chunks, blob, Some(on_bytes)).await {
                        progress.send_modify(|p| p.bytes_done = before);
                        return Err(e);
                    }
                    progress.send_modify(|p| p.bytes_done = before + layer.size);
                } else {
                    progress.send_modify(|p| p.bytes_done += layer.size);
                }
                progress.send_modify(|p| p.layers_done += 1);
            }
            self.store_image(
                name,
                &resolved.manifest_descriptor,
                resolved.manifest_bytes.clone(),
                &resolved.manifest,
                resolved.config_bytes.clone(),
                &resolved.config,
                &lease,
            )
            .await
        }
        .await;
        self.delete_lease(&lease).await;
        result
    }
}
