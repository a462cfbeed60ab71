//! OCI image layout archives: what `skopeo copy … oci-archive:` and `ctr images export`
//! write, and what Outpost builds its own images into.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    BuiltImage, Descriptor, ImageConfig, Index, MEDIA_DOCKER_LIST, MEDIA_INDEX, MEDIA_MANIFEST, Manifest, REF_NAME,
    digest, digest_hex, host_architecture,
};
use crate::error::RuntimeError;

fn append(tar: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
}

/// Writes `image` as an OCI layout tar at `path`, named `reference`.
pub fn write_archive(image: &BuiltImage, reference: &str, path: &Path) -> Result<(), RuntimeError> {
    let io = RuntimeError::io(path);
    let file = std::fs::File::create(path).map_err(RuntimeError::io(path))?;
    let mut tar = tar::Builder::new(file);
    let manifest = Descriptor {
        media_type: MEDIA_MANIFEST.to_owned(),
        digest: digest(&image.manifest),
        size: image.manifest.len() as u64,
        annotations: BTreeMap::from([(REF_NAME.to_owned(), reference.to_owned())]),
        platform: None,
    };
    let index = Index { schema_version: 2, media_type: Some(MEDIA_INDEX.to_owned()), manifests: vec![manifest] };
    let index = serde_json::to_vec(&index).expect("indexes always serialise");
    let result = (|| {
        append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644)?;
        append(&mut tar, "index.json", &index, 0o644)?;
        for blob in [&image.manifest, &image.config, &image.layer] {
            let hex = digest(blob).trim_start_matches("sha256:").to_owned();
            append(&mut tar, &format!("blobs/sha256/{hex}"), blob, 0o644)?;
        }
        tar.into_inner().and_then(|f| f.sync_all())
    })();
    result.map_err(io)
}

/// An unpacked OCI layout directory and the image chosen from it.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
    /// The image's name from `org.opencontainers.image.ref.name`, if any.
    pub reference: Option<String>,
    /// The manifest's descriptor.
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The image config.
    pub config: ImageConfig,
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidImage { what: what.into(), reason: reason.into() }
}

impl OciLayout {
    /// Extracts the archive at `archive` into `dir` (which should be empty) and opens it.
    pub fn extract(archive: &Path, dir: &Path) -> Result<Self, RuntimeError> {
        let file = std::fs::File::open(archive).map_err(RuntimeError::io(archive))?;
        // `unpack` refuses entries that would land outside `dir`.
        tar::Archive::new(file).unpack(dir).map_err(|e| invalid(archive.display().to_string(), e.to_string()))?;
        Self::open(dir)
    }

    /// The path of blob `digest` (validated, so it cannot escape the layout).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, RuntimeError> {
        let hex = digest_hex(digest).ok_or_else(|| invalid(digest, "not a sha256 digest"))?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, RuntimeError> {
        let path = self.blob_path(&descriptor.digest)?;
        let bytes = std::fs::read(&path).map_err(RuntimeError::io(&path))?;
        let actual = digest(&bytes);
        if actual != descriptor.digest {
            return Err(RuntimeError::DigestMismatch { expected: descriptor.digest.clone(), actual });
        }
        Ok(bytes)
    }

    /// Opens an unpacked layout: reads `index.json` and picks the manifest for this platform.
    pub fn open(dir: &Path) -> Result<Self, RuntimeError> {
        let index_path = dir.join("index.json");
        let index = std::fs::read(&index_path).map_err(RuntimeError::io(&index_path))?;
        let index: Index = serde_json::from_slice(&index).map_err(|e| invalid("index.json", e.to_string()))?;
        let mut layout = Self {
            dir: dir.to_owned(),
            reference: None,
            manifest_descriptor: index
                .manifests
                .first()
                .cloned()
                .ok_or_else(|| invalid("index.json", "lists no manifest"))?,
            manifest: Manifest { schema_version: 2, media_type: None, config: placeholder(), layers: vec![] },
            config: ImageConfig {
                architecture: String::new(),
                os: String::new(),
                config: Default::default(),
                rootfs: super::RootFs { kind: String::new(), diff_ids: vec![] },
            },
        };
        layout.reference = layout.manifest_descriptor.annotations.get(REF_NAME).cloned();
        // A nested index (multi-platform image): choose this platform's manifest.
        if [MEDIA_INDEX, MEDIA_DOCKER_LIST].contains(&layout.manifest_descriptor.media_type.as_str()) {
            let nested: Index = serde_json::from_slice(&layout.read_blob(&layout.manifest_descriptor)?)
                .map_err(|e| invalid(&layout.manifest_descriptor.digest, e.to_string()))?;
            layout.manifest_descriptor = nested
                .manifests
                .into_iter()
                .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == host_architecture()))
                .ok_or_else(|| invalid("index.json", format!("has no manifest for linux/{}", host_architecture())))?;
        }
        let manifest_bytes = layout.read_blob(&layout.manifest_descriptor)?;
        layout.manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| invalid(format!("manifest {}", layout.manifest_descriptor.digest), e.to_string()))?;
        let config_bytes = layout.read_blob(&layout.manifest.config)?;
        layout.config = serde_json::from_slice(&config_bytes)
            .map_err(|e| invalid(format!("config {}", layout.manifest.config.digest), e.to_string()))?;
        if layout.config.rootfs.diff_ids.len() != layout.manifest.layers.len() {
            return Err(invalid("config", "the number of diff_ids differs from the number of layers"));
        }
        if layout.config.os != "linux" || layout.config.architecture != host_architecture() {
            return Err(invalid(
                "config",
                format!(
                    "image is for {}/{}, this machine is linux/{}",
                    layout.config.os,
                    layout.config.architecture,
                    host_architecture()
                ),
            ));
        }
        Ok(layout)
    }
}

fn placeholder() -> Descriptor {
    Descriptor {
        media_type: String::new(),
        digest: String::new(),
        size: 0,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::ImageBuilder;

    #[test]
    fn archives_round_trip() {
        let image = ImageBuilder::new().bytes("/hello", b"hi".to_vec(), 0o644).cmd(&["/hello"]).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        write_archive(&image, "example.local/hello:1", &archive).unwrap();
        let layout = OciLayout::extract(&archive, &dir.path().join("layout")).unwrap();
        assert_eq!(layout.reference.as_deref(), Some("example.local/hello:1"));
        assert_eq!(layout.config.config.cmd, Some(vec!["/hello".to_owned()]));
        assert_eq!(std::fs::read(layout.blob_path(&layout.manifest.layers[0].digest).unwrap()).unwrap(), image.layer);
    }

    #[test]
    fn tampered_blobs_are_detected() {
        let image = ImageBuilder::new().bytes("/x", b"x".to_vec(), 0o644).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        write_archive(&image, "x:1", &archive).unwrap();
        let layout_dir = dir.path().join("layout");
        let layout = OciLayout::extract(&archive, &layout_dir).unwrap();
        std::fs::write(layout.blob_path(&layout.manifest.config.digest).unwrap(), b"{}").unwrap();
        assert!(matches!(OciLayout::open(&layout_dir), Err(RuntimeError::DigestMismatch { .. })));
    }
}
