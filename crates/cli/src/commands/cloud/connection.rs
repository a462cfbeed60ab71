//! Where the cloud is and how to prove who we are: flags, `OUTPOST_CLOUD_*` variables and
//! the CLI config file, in that order; one TLS channel with the bearer token on every call.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The default endpoint: a cloud on this machine.
const DEFAULT_ENDPOINT: &str = "https://localhost:7443";

/// Connection flags of `outpost cloud`.
#[derive(Debug, Clone, clap::Args)]
pub struct CloudArgs {
    /// The cloud's API, e.g. https://cloud.example:7443 (http:// for a loopback development cloud).
    #[arg(long, env = "OUTPOST_CLOUD_ENDPOINT")]
    endpoint: Option<String>,
    /// An operator token.
    #[arg(long, env = "OUTPOST_CLOUD_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding an operator token (e.g. the cloud's generated admin.token).
    #[arg(long, env = "OUTPOST_CLOUD_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the cloud's TLS certificate.
    #[arg(long, env = "OUTPOST_CLOUD_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The CLI config file.
    #[arg(long, env = "OUTPOST_CLOUD_CONFIG")]
    cloud_config: Option<PathBuf>,
}

/// `~/.config/outpost/cloud.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    endpoint: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("outpost").join("cloud.toml"))
}

fn read_file_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let (path, explicit) = match path {
        Some(path) => (path.to_owned(), true),
        None => match default_config_path() {
            Some(path) => (path, false),
            None => return Ok(FileConfig::default()),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("invalid CLI config {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A connected client: the channel and the authorization header value.
#[derive(Debug, Clone)]
pub struct CloudClient {
    /// The channel.
    pub channel: Channel,
    /// `Bearer …`.
    pub authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl CloudClient {
    /// A request carrying the token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.authorization.clone());
        request
    }
}

impl CloudArgs {
    /// Resolves the settings and connects.
    pub async fn connect(&self) -> anyhow::Result<CloudClient> {
        let file = read_file_config(self.cloud_config.as_deref())?;
        let endpoint = self.endpoint.clone().or(file.endpoint).unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let token = match (&self.token, self.token_file.clone(), file.token, file.token_file) {
            (Some(token), _, _, _) => token.clone(),
            (None, Some(path), _, _) | (None, None, None, Some(path)) => std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None, Some(token), _) => token,
            (None, None, None, None) => anyhow::bail!(
                "no operator token: pass --token or --token-file, set OUTPOST_CLOUD_TOKEN, or put token_file in ~/.config/outpost/cloud.toml"
            ),
        };
        let authorization = format!("Bearer {token}")
            .parse()
            .context("the operator token holds characters that cannot go in a header")?;
        let mut builder =
            Endpoint::from_shared(endpoint.clone()).with_context(|| format!("invalid cloud endpoint {endpoint:?}"))?;
        if endpoint.starts_with("https://") {
            // ring, as the rest of Outpost; an error means a provider is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = self.ca_file.clone().or(file.ca_file) {
                let pem = std::fs::read(&ca).with_context(|| format!("cannot read the CA file {}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            builder = builder.tls_config(tls).context("cannot set up TLS")?;
        } else if !endpoint.starts_with("http://") {
            anyhow::bail!("the cloud endpoint must start with https:// (or http:// on loopback), got {endpoint:?}");
        }
        let channel = builder.connect().await.with_context(|| {
            format!("cannot reach outpost-cloud at {endpoint} (is it running? is --ca-file right?)")
        })?;
        Ok(CloudClient { channel, authorization })
    }
}
