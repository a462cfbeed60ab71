//! The API's TLS identity: the configured certificate and key, or a private CA and a server
//! certificate for the configured names generated on first start under `{state_dir}/tls`
//! (`ca.pem` is what clients trust; the CA key is not kept).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};

/// The generated files' directory under the state dir.
pub const TLS_DIR: &str = "tls";
/// Lifetime of a generated certificate, in days.
const GENERATED_DAYS: i64 = 3650;

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or written.
    #[error("cannot {action} {path}: {source}")]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Generating the certificate failed.
    #[error("cannot generate the API certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A configured name is neither an IP address nor a DNS name.
    #[error("api.names: {0:?} is neither an IP address nor a DNS name")]
    Name(String),
}

/// The certificate chain and key (PEM) the API serves.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Leaf first.
    pub chain_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
    /// The generated CA's certificate clients should trust, when generated.
    pub ca_file: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::File {
        action: "read",
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    outpost_daemon::atomic::write_atomic(path, text.as_bytes(), mode).map_err(|source| TlsError::File {
        action: "write",
        path: path.display().to_string(),
        source,
    })
}

/// The configured files, if given; else the generated ones, generated now if missing.
pub fn identity(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    names: &[String],
    state_dir: &Path,
) -> Result<Identity, TlsError> {
    if let (Some(cert), Some(key)) = (cert_file, key_file) {
        return Ok(Identity { chain_pem: read(cert)?, key_pem: read(key)?, ca_file: None });
    }
    let dir = state_dir.join(TLS_DIR);
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    if !(ca.exists() && cert.exists() && key.exists()) {
        let (ca_pem, chain_pem, key_pem) = generate(names)?;
        std::fs::create_dir_all(&dir).map_err(|source| TlsError::File {
            action: "write",
            path: dir.display().to_string(),
            source,
        })?;
        write(&key, &key_pem, 0o600)?;
        write(&cert, &chain_pem, 0o644)?;
        write(&ca, &ca_pem, 0o644)?;
        tracing::info!(ca = %ca.display(), "generated the API's TLS certificate; clients trust it with --ca-file");
    }
    Ok(Identity { chain_pem: read(&cert)?, key_pem: read(&key)?, ca_file: Some(ca) })
}

/// A CA and a server certificate for `names`: (CA PEM, chain PEM, key PEM).
pub fn generate(names: &[String]) -> Result<(String, String, String), TlsError> {
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "outpost-cloud CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::minutes(1);
    ca_params.not_after = now + time::Duration::days(GENERATED_DAYS);
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, names.first().map_or("outpost-cloud", String::as_str));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(GENERATED_DAYS);
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if is_dns_name(name) => {
                SanType::DnsName(name.as_str().try_into().map_err(|_| TlsError::Name(name.clone()))?)
            }
            Err(_) => return Err(TlsError::Name(name.clone())),
        };
        params.subject_alt_names.push(san);
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &issuer)?;
    let ca_pem = ca_cert.pem();
    Ok((ca_pem.clone(), format!("{}{ca_pem}", cert.pem()), key.serialize_pem()))
}

fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = identity(None, None, &names, dir.path()).unwrap();
        let again = identity(None, None, &names, dir.path()).unwrap();
        assert_eq!(first.chain_pem, again.chain_pem);
        assert!(first.ca_file.unwrap().exists());
        assert!(matches!(generate(&["bad name!".into()]), Err(TlsError::Name(_))));
    }
}
