//! Talking to OCI/Docker registries (the distribution API over HTTP(S), through
//! `oci-client`): resolving a reference to this platform's manifest and its config, and
//! streaming layers; and pushing images built here. Every document is checked against its digest; layers are verified as
//! they stream and once more by containerd when they are committed.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use outpost_core::manifest::RegistryCredential;

use crate::error::RuntimeError;
use crate::oci::{
    BuiltImage, Descriptor, ImageConfig, Index, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST,
    Manifest, digest, host_architecture,
};

/// Largest manifest or config document accepted (they are small JSON files; anything bigger
/// is a broken or hostile registry).
const MAX_DOCUMENT: usize = 4 << 20;

/// How registries are reached.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback registries
    /// (`localhost`, `127.0.0.0/8`, `[::1]`) always are, as with Docker.
    pub insecure: Vec<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads: a stalled download fails after this, a slow one
    /// does not.
    pub read_timeout: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self { insecure: Vec::new(), connect_timeout: Duration::from_secs(10), read_timeout: Duration::from_secs(30) }
    }
}

/// An image reference resolved to this platform's manifest.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The manifest's descriptor (its exact bytes' digest and size).
    pub manifest_descriptor: Descriptor,
    /// The manifest as sent.
    pub manifest_bytes: Bytes,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The config as sent.
    pub config_bytes: Bytes,
    /// The parsed config.
    pub config: ImageConfig,
}

/// A connection to one registry for one image reference.
pub struct RegistryClient {
    client: oci_client::Client,
    reference: Reference,
    auth: RegistryAuth,
    image: String,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").field("image", &self.image).finish_non_exhaustive()
    }
}

/// Whether `registry` (`host[:port]`) is on this machine.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `host[:port]` of a credential's `address`, which users write with or without a
/// scheme and path (`https://myreg.azurecr.io/`).
fn credential_host(address: &str) -> &str {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The credential among `credentials` for the registry of `reference`, if any.
pub fn credential_for<'a>(
    reference: &Reference,
    credentials: impl IntoIterator<Item = &'a RegistryCredential>,
) -> Option<&'a RegistryCredential> {
    let docker_hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    credentials.into_iter().find(|c| {
        let host = credential_host(&c.address);
        host.eq_ignore_ascii_case(reference.registry())
            || host.eq_ignore_ascii_case(reference.resolve_registry())
            || (docker_hub(host) && docker_hub(reference.registry()))
    })
}

/// Parses an image reference (`[registry/]repository[:tag][@digest]`).
pub fn parse_reference(image: &str) -> Result<Reference, RuntimeError> {
    image.parse().map_err(|e: oci_client::ParseError| RuntimeError::Pull {
        image: image.to_owned(),
        reason: format!("not a valid image reference: {e}"),
    })
}

impl RegistryClient {
    /// A client for `image`, authenticating with the matching entry of `credentials`
    /// (anonymous when none matches).
    pub fn new<'a>(
        image: &str,
        settings: &RegistrySettings,
        credentials: impl IntoIterator<Item = &'a RegistryCredential>,
    ) -> Result<Self, RuntimeError> {
        let reference = parse_reference(image)?;
        let registry = reference.resolve_registry().to_owned();
        let plain_http = is_loopback(&registry) || settings.insecure.iter().any(|r| r.eq_ignore_ascii_case(&registry));
        let config = ClientConfig {
            protocol: if plain_http { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https },
            connect_timeout: Some(settings.connect_timeout),
            read_timeout: Some(settings.read_timeout),
            // Platforms are chosen here, where the index's exact bytes are also checked.
            platform_resolver: None,
            user_agent: concat!("outpost/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let auth = match credential_for(&reference, credentials) {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self { client: oci_client::Client::new(config), reference, auth, image: image.to_owned() })
    }

    fn error(&self, what: &str, e: OciDistributionError) -> RuntimeError {
        let registry = self.reference.resolve_registry();
        let reason = match &e {
            OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => {
                format!(
                    "{what}: registry {registry} refused the credentials ({e}); check registryCredentials for {registry}"
                )
            }
            OciDistributionError::ImageManifestNotFoundError(_) => format!("{what}: not found in {registry}"),
            OciDistributionError::RegistryError { envelope, .. } => {
                let messages: Vec<String> = envelope.errors.iter().map(|e| e.message.clone()).collect();
                let codes = || envelope.errors.iter().map(|e| &e.code);
                if codes().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                    format!(
                        "{what}: registry {registry} refused access ({}); check registryCredentials for {registry}",
                        messages.join("; ")
                    )
                } else if codes().any(|c| {
                    matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound)
                }) {
                    format!("{what}: not found in {registry} ({})", messages.join("; "))
                } else {
                    format!("{what}: registry {registry} answered {}", messages.join("; "))
                }
            }
            OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
                format!("{what}: cannot reach registry {registry} ({})", crate::error::chain(r))
            }
            OciDistributionError::RequestError(r) => format!("{what}: {}", crate::error::chain(r)),
            _ => format!("{what}: {e}"),
        };
        RuntimeError::Pull { image: self.image.clone(), reason }
    }

    fn invalid(&self, reason: String) -> RuntimeError {
        RuntimeError::Pull { image: self.image.clone(), reason }
    }

    async fn document(&self, reference: &Reference, accept: &[&str]) -> Result<(Bytes, String), RuntimeError> {
        let (bytes, sent_digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth, accept)
            .await
            .map_err(|e| self.error("fetching the manifest", e))?;
        if bytes.len() > MAX_DOCUMENT {
            return Err(
                self.invalid(format!("the manifest is {} bytes; at most {MAX_DOCUMENT} are accepted", bytes.len()))
            );
        }
        let actual = digest(&bytes);
        if let Some(expected) = reference.digest().filter(|d| *d != actual) {
            return Err(self.invalid(format!("the manifest has digest {actual}, not {expected}")));
        }
        if sent_digest.starts_with("sha256:") && sent_digest != actual {
            return Err(
                self.invalid(format!("the registry says the manifest is {sent_digest} but it hashes to {actual}"))
            );
        }
        Ok((bytes, actual))
    }

    /// Resolves the reference to this platform's manifest and fetches the config.
    pub async fn resolve(&self) -> Result<ResolvedImage, RuntimeError> {
        let accept = [MEDIA_MANIFEST, MEDIA_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST];
        let (mut bytes, mut digest) = self.document(&self.reference, &accept).await?;
        let kind: MediaTypeProbe =
            serde_json::from_slice(&bytes).map_err(|e| self.invalid(format!("the manifest is not JSON: {e}")))?;
        let mut media_type = kind.media_type.clone().unwrap_or_else(|| MEDIA_MANIFEST.to_owned());
        if kind.manifests.is_some() || media_type == MEDIA_INDEX || media_type == MEDIA_DOCKER_LIST {
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|e| self.invalid(format!("the image index is invalid: {e}")))?;
            let chosen = self.choose_platform(&index)?;
            media_type = chosen.media_type.clone();
            let by_digest = self.reference.clone_with_digest(chosen.digest.clone());
            (bytes, digest) = self.document(&by_digest, &[MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST]).await?;
        }
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| self.invalid(format!("the image manifest is invalid: {e}")))?;
        if manifest.schema_version != 2 {
            return Err(self.invalid(format!("manifest schema version {} is not supported", manifest.schema_version)));
        }
        let manifest_descriptor = Descriptor {
            media_type: manifest.media_type.clone().unwrap_or(media_type),
            digest,
            size: bytes.len() as u64,
            annotations: Default::default(),
            platform: None,
        };
        let config_bytes = self.small_blob(&manifest.config).await?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.invalid(format!("the image config is invalid: {e}")))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(self.invalid(format!(
                "the config lists {} layers but the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        Ok(ResolvedImage { manifest_descriptor, manifest_bytes: bytes, manifest, config_bytes, config })
    }

    fn choose_platform<'i>(&self, index: &'i Index) -> Result<&'i Descriptor, RuntimeError> {
        let arch = host_architecture();
        let candidates = || {
            index
                .manifests
                .iter()
                .filter(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
        };
        let preferred_variant = match arch {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        };
        candidates()
            .find(|m| m.platform.as_ref().and_then(|p| p.variant.as_deref()) == preferred_variant)
            .or_else(|| candidates().next())
            .ok_or_else(|| {
                let offered: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                self.invalid(format!("no manifest for linux/{arch}; the image offers {}", offered.join(", ")))
            })
    }

    async fn small_blob(&self, descriptor: &Descriptor) -> Result<Bytes, RuntimeError> {
        if descriptor.size as usize > MAX_DOCUMENT {
            return Err(
                self.invalid(format!("the config is {} bytes; at most {MAX_DOCUMENT} are accepted", descriptor.size))
            );
        }
        let mut out = Vec::with_capacity(descriptor.size as usize);
        self.client
            .pull_blob(&self.reference, &oci_descriptor(descriptor), &mut out)
            .await
            .map_err(|e| self.error("fetching the config", e))?;
        Ok(Bytes::from(out))
    }

    /// The bytes of `layer`, as they arrive; the stream fails if they do not hash to its
    /// digest.
    pub async fn layer(&self, layer: &Descriptor) -> Result<BoxStream<'static, std::io::Result<Bytes>>, RuntimeError> {
        let sized = self
            .client
            .pull_blob_stream(&self.reference, &oci_descriptor(layer))
            .await
            .map_err(|e| self.error(&format!("fetching layer {}", layer.digest), e))?;
        Ok(sized.stream.boxed())
    }
}

impl RegistryClient {
    /// Pushes `image` (layer, config, then the manifest as built, so its digest is kept)
    /// under the reference; returns the manifest's digest.
    pub async fn push(&self, image: &BuiltImage) -> Result<String, RuntimeError> {
        self.client
            .auth(&self.reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.error("logging in", e))?;
        for blob in [&image.layer, &image.config] {
            self.client
                .push_blob(&self.reference, blob.clone(), &digest(blob))
                .await
                .map_err(|e| self.error("pushing a blob", e))?;
        }
        self.client
            .push_manifest_raw(&self.reference, image.manifest.clone(), http::HeaderValue::from_static(MEDIA_MANIFEST))
            .await
            .map_err(|e| self.error("pushing the manifest", e))?;
        Ok(digest(&image.manifest))
    }
}

fn oci_descriptor(descriptor: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: descriptor.size as i64,
        ..Default::default()
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaTypeProbe {
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(address: &str) -> RegistryCredential {
        RegistryCredential { address: address.into(), username: "u".into(), password: "p".into() }
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for r in ["localhost:5000", "127.0.0.1:5000", "127.3.4.5", "[::1]:5000", "LOCALHOST"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["myreg.azurecr.io", "10.0.0.1:5000", "docker.io", "[fe80::1]:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn credentials_match_by_registry_host() {
        let creds = [credential("https://myreg.azurecr.io/"), credential("docker.io"), credential("127.0.0.1:5000")];
        let find = |image: &str| {
            let reference: Reference = image.parse().expect("reference");
            credential_for(&reference, &creds).map(|c| c.address.clone())
        };
        assert_eq!(find("myreg.azurecr.io/sensor:1").as_deref(), Some("https://myreg.azurecr.io/"));
        assert_eq!(find("MYREG.azurecr.io/sensor:1").as_deref(), Some("https://myreg.azurecr.io/"));
        assert_eq!(find("busybox").as_deref(), Some("docker.io"));
        assert_eq!(find("127.0.0.1:5000/a/b:2").as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(find("other.example/a:1"), None);
    }

    #[test]
    fn bad_references_are_refused_with_the_reference() {
        let error = parse_reference("UPPER/Case:tag").expect_err("refused");
        assert!(error.to_string().contains("UPPER/Case:tag"), "{error}");
    }
}
