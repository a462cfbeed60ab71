//! TLS for MQTT on 8883: the server certificate comes from outpost-identityd (signed by the
//! device CA that modules trust through the workload API's trust bundle), is served through
//! a resolver that can be swapped while connections are accepted, and is renewed before it
//! expires. TLS 1.2 and 1.3 (Azure's Python SDK speaks only 1.2), ring as the provider.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use outpost_proto::identity::v1 as pb;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// Why the certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// identityd refused or could not be reached.
    #[error("cannot get a server certificate from outpost-identityd: {0}")]
    Issue(String),
    /// What identityd sent is not usable.
    #[error("the server certificate from outpost-identityd is unusable: {0}")]
    Unusable(String),
}

/// The names the certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Common name (the gateway host name modules dial).
    pub common_name: String,
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<String>,
}

/// The current certificate, swappable.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

impl Resolver {
    fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
    }
}

/// Parses a PEM chain (leaf first) and a PEM private key.
pub fn certified_key(chain_pem: &str, key_pem: &str) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Unusable(format!("certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Unusable("no certificate in the chain".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Unusable(format!("private key: {e}")))?;
    CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| TlsError::Unusable(e.to_string()))
}

async fn issue(socket: &std::path::Path, names: &Names) -> Result<(CertifiedKey, i64), TlsError> {
    let channel = outpost_rpc::connect(socket).await.map_err(|e| TlsError::Issue(e.to_string()))?;
    let request = pb::IssueServerCertificateRequest {
        common_name: names.common_name.clone(),
        dns_names: names.dns.clone(),
        ip_addresses: names.ips.clone(),
        validity_days: 0,
    };
    let issued = pb::identity_client::IdentityClient::new(channel)
        .issue_server_certificate(request)
        .await
        .map_err(|e| TlsError::Issue(e.message().to_owned()))?
        .into_inner();
    Ok((certified_key(&issued.certificate_chain_pem, &issued.private_key_pem)?, issued.not_after))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Gets the first certificate and returns the TLS acceptor, and the task that renews the
/// certificate when 80 % of its remaining lifetime has passed (retrying every minute on
/// failure) until `shutdown`.
pub async fn acceptor(
    socket: std::path::PathBuf,
    names: Names,
    shutdown: CancellationToken,
) -> Result<(tokio_rustls::TlsAcceptor, impl std::future::Future<Output = ()>), TlsError> {
    let (key, not_after) = issue(&socket, &names).await?;
    let resolver = Arc::new(Resolver { current: RwLock::new(Arc::new(key)) });
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| TlsError::Unusable(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    let renewal = async move {
        let mut not_after = not_after;
        loop {
            let left = (not_after - now()).max(0) as u64;
            let wait = Duration::from_secs((left * 4 / 5).max(60));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match issue(&socket, &names).await {
                Ok((key, expiry)) => {
                    resolver.replace(key);
                    not_after = expiry;
                    tracing::info!(not_after, "server certificate renewed");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "certificate renewal failed; retrying in a minute");
                    not_after = now() + 75;
                }
            }
        }
    };
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), renewal))
}
