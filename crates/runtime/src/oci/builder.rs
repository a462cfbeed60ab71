//! Assembles a single-layer OCI image from host files, bytes and symlinks: enough for a
//! static binary and the few files it needs. The layer is a reproducible uncompressed tar
//! (sorted entries, owner root, mtime 0).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    ContainerDefaults, Descriptor, ImageConfig, MEDIA_CONFIG, MEDIA_LAYER_TAR, MEDIA_MANIFEST, Manifest, RootFs,
    digest, host_architecture,
};
use crate::error::RuntimeError;

#[derive(Debug, Clone)]
enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// Builds an image; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct ImageBuilder {
    entries: BTreeMap<String, Entry>,
    defaults: ContainerDefaults,
}

/// A built image: its three blobs.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The manifest JSON.
    pub manifest: Vec<u8>,
    /// The config JSON.
    pub config: Vec<u8>,
    /// The layer tar.
    pub layer: Vec<u8>,
}

/// The shared libraries `program` loads, from `ldd` (the vDSO, which has no file, is
/// skipped). A static program has none.
pub fn shared_libraries(program: &Path) -> Result<Vec<std::path::PathBuf>, RuntimeError> {
    let output = std::process::Command::new("ldd").arg(program).output().map_err(RuntimeError::io(program))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // ldd fails on static executables ("not a dynamic executable").
        return Ok(Vec::new());
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        let resolved = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        match resolved {
            Some(path) if path.starts_with('/') => libraries.push(std::path::PathBuf::from(path)),
            Some("not") => {
                return Err(RuntimeError::InvalidImage {
                    what: program.display().to_string(),
                    reason: format!("a shared library is missing on this host: {}", line.trim()),
                });
            }
            _ => {}
        }
    }
    Ok(libraries)
}

fn clean(path: &str) -> String {
    path.trim_start_matches('/').trim_end_matches('/').to_owned()
}

impl ImageBuilder {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    fn parents(&mut self, path: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries.entry(prefix.clone()).or_insert(Entry::Dir);
        }
    }

    /// Adds a file with `data` at `path` with permission bits `mode`.
    pub fn bytes(mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::File { data: data.into(), mode });
        self
    }

    /// Adds the host file `source` at `path`, keeping its permission bits.
    pub fn file(self, path: &str, source: &Path) -> Result<Self, RuntimeError> {
        let data = std::fs::read(source).map_err(RuntimeError::io(source))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(source).map_err(RuntimeError::io(source))?.permissions(),
        ) & 0o7777;
        Ok(self.bytes(path, data, mode))
    }

    /// Adds the host executable `source` at `path` together with the shared libraries it
    /// loads (as `ldd` resolves them on this host, at the same paths), so that a dynamically
    /// linked program runs in an otherwise empty image.
    pub fn program(mut self, path: &str, source: &Path) -> Result<Self, RuntimeError> {
        self = self.file(path, source)?;
        for library in shared_libraries(source)? {
            let in_image = library.display().to_string();
            self = self.file(&in_image, &library)?;
        }
        Ok(self)
    }

    /// Adds a directory.
    pub fn dir(mut self, path: &str) -> Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Dir);
        self
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Symlink { target: target.to_owned() });
        self
    }

    /// Sets the entrypoint.
    pub fn entrypoint(mut self, argv: &[&str]) -> Self {
        self.defaults.entrypoint = Some(argv.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Sets the command.
    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.defaults.cmd = Some(argv.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.defaults.env.push(format!("{key}={value}"));
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.defaults.working_dir = dir.to_owned();
        self
    }

    /// Sets the user.
    pub fn user(mut self, user: &str) -> Self {
        self.defaults.user = user.to_owned();
        self
    }

    fn layer(&self) -> Result<Vec<u8>, std::io::Error> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            match entry {
                Entry::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Entry::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, path, data.as_slice())?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    tar.append_link(&mut header, path, target)?;
                }
            }
        }
        tar.into_inner()
    }

    /// Produces the layer, config and manifest.
    pub fn build(&self) -> Result<BuiltImage, RuntimeError> {
        let layer = self.layer().map_err(RuntimeError::io(&PathBuf::from("<image layer>")))?;
        let layer_digest = digest(&layer);
        let config = ImageConfig {
            architecture: host_architecture().to_owned(),
            os: "linux".to_owned(),
            config: self.defaults.clone(),
            rootfs: RootFs { kind: "layers".to_owned(), diff_ids: vec![layer_digest.clone()] },
        };
        let config = serde_json::to_vec(&config).expect("image configs always serialise");
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.to_owned()),
            config: Descriptor {
                media_type: MEDIA_CONFIG.to_owned(),
                digest: digest(&config),
                size: config.len() as u64,
                annotations: BTreeMap::new(),
                platform: None,
            },
            layers: vec![Descriptor {
                media_type: MEDIA_LAYER_TAR.to_owned(),
                digest: layer_digest,
                size: layer.len() as u64,
                annotations: BTreeMap::new(),
                platform: None,
            }],
        };
        let manifest = serde_json::to_vec(&manifest).expect("manifests always serialise");
        Ok(BuiltImage { manifest, config, layer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_bring_their_shared_libraries() {
        let libraries = shared_libraries(Path::new("/bin/ls")).unwrap();
        assert!(libraries.iter().any(|l| l.to_string_lossy().contains("libc.so")), "{libraries:?}");
        assert!(shared_libraries(Path::new("/bin/busybox")).unwrap().is_empty(), "busybox-static has none");
    }

    #[test]
    fn images_are_reproducible_and_self_consistent() {
        let build = || {
            ImageBuilder::new()
                .bytes("/bin/tool", b"#!/bin/sh\necho hi\n".to_vec(), 0o755)
                .symlink("/usr/bin/tool", "/bin/tool")
                .entrypoint(&["/bin/tool"])
                .env("A", "1")
                .build()
                .unwrap()
        };
        let (one, two) = (build(), build());
        assert_eq!(one.layer, two.layer);
        assert_eq!(one.manifest, two.manifest);
        let manifest: Manifest = serde_json::from_slice(&one.manifest).unwrap();
        assert_eq!(manifest.config.digest, digest(&one.config));
        assert_eq!(manifest.layers[0].digest, digest(&one.layer));
        let config: ImageConfig = serde_json::from_slice(&one.config).unwrap();
        assert_eq!(config.rootfs.diff_ids, [digest(&one.layer)]);
        assert_eq!(config.config.env, ["A=1"]);

        let mut archive = tar::Archive::new(one.layer.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["bin/", "bin/tool", "usr/", "usr/bin/", "usr/bin/tool"]);
    }
}
