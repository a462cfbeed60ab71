//! The device CA and the certificates it issues (rcgen with ring; parsing with x509-parser).
//!
//! A self-signed EC P-256 CA is created on first start under `{state_dir}/certs` and
//! renewed (new key, new certificate) once the configured share of its lifetime has passed.
//! It issues TLS server certificates (the hub's, modules') and module identity (client)
//! certificates, each with a fresh EC P-256 key. The trust bundle is the CA plus any extra
//! roots from the configuration.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::config::CertificatesConfig;
use crate::keys::fill_random;
use outpost_daemon::atomic::write_atomic;

/// The longest common name X.509 allows.
const MAX_CN: usize = 64;
const DAY: i64 = 86_400;

/// What went wrong with certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A CA file is unusable; it is left untouched.
    #[error("certificate file {path} is corrupt: {reason}; refusing to overwrite it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("certificate store I/O on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A request asked for something no certificate can hold.
    #[error("invalid certificate request: {0}")]
    InvalidRequest(String),
    /// Generating a key or signing a certificate failed.
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    /// A time outside what certificates can express.
    #[error("time {0} is out of range for a certificate")]
    Time(i64),
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] crate::keys::KeyError),
}

/// A freshly issued certificate and its private key.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The leaf, then the CA, PEM.
    pub chain_pem: String,
    /// The leaf's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

/// What kind of leaf to issue.
#[derive(Debug, Clone)]
pub enum LeafRequest {
    /// A TLS server certificate with these names.
    Server {
        /// Subject common name.
        common_name: String,
        /// DNS subject alternative names (the common name is added first).
        dns_names: Vec<String>,
        /// IP subject alternative names.
        ip_addresses: Vec<IpAddr>,
    },
    /// A client (identity) certificate.
    Client {
        /// Subject common name.
        common_name: String,
    },
}

struct CaState {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    not_before: i64,
    not_after: i64,
}

impl std::fmt::Debug for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaState").field("not_before", &self.not_before).field("not_after", &self.not_after).finish()
    }
}

/// The device CA.
#[derive(Debug)]
pub struct DeviceCa {
    dir: PathBuf,
    common_name: String,
    config: CertificatesConfig,
    extra_roots: String,
    state: RwLock<Arc<CaState>>,
}

impl DeviceCa {
    /// Loads the CA from `dir`, creating it if absent and renewing it if due at `now`.
    pub fn open(dir: &Path, device_id: &str, config: &CertificatesConfig, now: i64) -> Result<Self, CertError> {
        std::fs::create_dir_all(dir).map_err(|source| CertError::Io { path: dir.to_owned(), source })?;
        let extra_roots = match &config.trust_bundle_cert {
            Some(path) => read_extra_roots(path)?,
            None => String::new(),
        };
        let mut common_name = format!("outpost device CA {device_id}");
        common_name.truncate(MAX_CN);
        let state = match load(dir)? {
            Some(state) => state,
            None => {
                let (state, key_pem) = generate_ca(&common_name, config.ca_validity_days, now)?;
                save(dir, &state, &key_pem)?;
                tracing::info!(dir = %dir.display(), "created device CA");
                state
            }
        };
        let ca = Self {
            dir: dir.to_owned(),
            common_name,
            config: config.clone(),
            extra_roots,
            state: RwLock::new(Arc::new(state)),
        };
        ca.renew_if_due(now)?;
        Ok(ca)
    }

    fn current(&self) -> Arc<CaState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The CA certificate's expiry, seconds since the Unix epoch.
    pub fn not_after(&self) -> i64 {
        self.current().not_after
    }

    /// Renews the CA if the configured share of its lifetime has passed; `true` if it did.
    pub fn renew_if_due(&self, now: i64) -> Result<bool, CertError> {
        let current = self.current();
        let lifetime = current.not_after - current.not_before;
        let due = current.not_before + lifetime * i64::from(self.config.ca_renew_at_percent) / 100;
        if now < due {
            return Ok(false);
        }
        let (state, key_pem) = generate_ca(&self.common_name, self.config.ca_validity_days, now)?;
        save(&self.dir, &state, &key_pem)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        tracing::info!(dir = %self.dir.display(), "renewed device CA");
        Ok(true)
    }

    /// The trust bundle: the CA certificate and the configured extra roots, PEM.
    pub fn trust_bundle(&self) -> String {
        let mut pem = self.current().cert_pem.clone();
        pem.push_str(&self.extra_roots);
        pem
    }

    /// Issues a leaf valid for `days` from `now` (capped at the CA's own expiry).
    pub fn issue(&self, request: &LeafRequest, days: u32, now: i64) -> Result<IssuedCertificate, CertError> {
        let ca = self.current();
        let (common_name, server) = match request {
            LeafRequest::Server { common_name, .. } => (common_name, true),
            LeafRequest::Client { common_name } => (common_name, false),
        };
        if common_name.is_empty() || common_name.len() > MAX_CN {
            return Err(CertError::InvalidRequest(format!(
                "common name must be 1 to {MAX_CN} characters, got {}",
                common_name.len()
            )));
        }
        let not_after = (now + i64::from(days) * DAY).min(ca.not_after);
        let mut params = base_params(common_name, now, not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
        params.use_authority_key_identifier_extension = true;
        if let LeafRequest::Server { common_name, dns_names, ip_addresses } = request {
            let mut sans = Vec::new();
            match common_name.parse::<IpAddr>() {
                Ok(ip) => sans.push(SanType::IpAddress(ip)),
                Err(_) => sans.push(dns_san(common_name)?),
            }
            for name in dns_names {
                sans.push(dns_san(name)?);
            }
            sans.extend(ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
            params.subject_alt_names = sans;
        }
        params.extended_key_usages =
            vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &ca.issuer)?;
        let mut chain_pem = cert.pem();
        chain_pem.push_str(&ca.cert_pem);
        Ok(IssuedCertificate { chain_pem, key_pem: key.serialize_pem(), not_after })
    }
}

fn dns_san(name: &str) -> Result<SanType, CertError> {
    if !is_dns_name(name) {
        return Err(CertError::InvalidRequest(format!("{name:?} is not a valid DNS name")));
    }
    let ia5 = name.try_into().map_err(|_| CertError::InvalidRequest(format!("{name:?} is not a valid DNS name")))?;
    Ok(SanType::DnsName(ia5))
}

/// Whether `name` can be a DNS subject alternative name.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        })
}

fn at(secs: i64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| CertError::Time(secs))
}

fn base_params(common_name: &str, not_before: i64, not_after: i64) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    // Back-date a minute so that a slightly slow peer clock accepts a fresh certificate.
    params.not_before = at(not_before - 60)?;
    params.not_after = at(not_after)?;
    let mut serial = [0u8; 16];
    fill_random(&mut serial)?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

fn generate_ca(common_name: &str, days: u32, now: i64) -> Result<(CaState, String), CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let not_after = now + i64::from(days) * DAY;
    let mut params = base_params(common_name, now, not_after)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    let state = CaState { cert_pem: cert.pem(), issuer: Issuer::new(params, key), not_before: now - 60, not_after };
    Ok((state, key_pem))
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("ca.key.pem")
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn load(dir: &Path) -> Result<Option<CaState>, CertError> {
    let (key_file, cert_file) = (key_path(dir), cert_path(dir));
    let read = |path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(CertError::Corrupt { path: path.to_owned(), reason: "not UTF-8 text".into() })
        }
        Err(source) => Err(CertError::Io { path: path.to_owned(), source }),
    };
    let (key_pem, cert_pem) = match (read(&key_file)?, read(&cert_file)?) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(CertError::Corrupt { path: cert_file, reason: "missing while its key exists".into() });
        }
        (None, Some(_)) => {
            return Err(CertError::Corrupt { path: key_file, reason: "missing while its certificate exists".into() });
        }
        (Some(key), Some(cert)) => (key, cert),
    };
    let meta = std::fs::metadata(&key_file).map_err(|source| CertError::Io { path: key_file.clone(), source })?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    if mode & 0o077 != 0 {
        return Err(CertError::Corrupt {
            path: key_file,
            reason: format!("mode {:o} lets others read the key (chmod 600)", mode & 0o777),
        });
    }
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| CertError::Corrupt { path: key_file.clone(), reason: e.to_string() })?;
    let corrupt = |reason: String| CertError::Corrupt { path: cert_file.clone(), reason };
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| corrupt(e.to_string()))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(corrupt("does not match ca.key.pem".into()));
    }
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(CaState { issuer, cert_pem, not_before, not_after }))
}

fn save(dir: &Path, state: &CaState, key_pem: &str) -> Result<(), CertError> {
    let key_file = key_path(dir);
    let cert_file = cert_path(dir);
    write_atomic(&key_file, key_pem.as_bytes(), 0o600).map_err(|source| CertError::Io { path: key_file, source })?;
    write_atomic(&cert_file, state.cert_pem.as_bytes(), 0o644)
        .map_err(|source| CertError::Io { path: cert_file, source })
}

fn read_extra_roots(path: &Path) -> Result<String, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Io { path: path.to_owned(), source })?;
    let corrupt = |reason: String| CertError::Corrupt { path: path.to_owned(), reason };
    let blocks = pem::parse_many(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let certs: Vec<_> = blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").collect();
    if certs.is_empty() {
        return Err(corrupt("holds no PEM certificate".into()));
    }
    for block in &certs {
        x509_parser::parse_x509_certificate(block.contents()).map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(pem::encode_many(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::X509;
    use openssl::x509::X509StoreContext;
    use openssl::x509::store::X509StoreBuilder;

    const NOW: i64 = 1_800_000_000;

    fn wall_clock() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn verify(ca_pem: &str, chain_pem: &str) -> bool {
        let mut store = X509StoreBuilder::new().unwrap();
        for ca in X509::stack_from_pem(ca_pem.as_bytes()).unwrap() {
            store.add_cert(ca).unwrap();
        }
        let store = store.build();
        let leaf = X509::stack_from_pem(chain_pem.as_bytes()).unwrap().remove(0);
        let mut ctx = X509StoreContext::new().unwrap();
        let chain = Stack::new().unwrap();
        ctx.init(&store, &leaf, &chain, |c| c.verify_cert()).unwrap()
    }

    #[test]
    fn server_certificates_chain_to_the_ca_and_carry_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_clock();
        let ca = DeviceCa::open(dir.path(), "dev1", &CertificatesConfig::default(), now).unwrap();
        let issued = ca
            .issue(
                &LeafRequest::Server {
                    common_name: "hub.local".into(),
                    dns_names: vec!["edgehub".into()],
                    ip_addresses: vec!["127.0.0.1".parse().unwrap()],
                },
                30,
                now,
            )
            .unwrap();
        assert!(verify(&ca.trust_bundle(), &issued.chain_pem));
        let leaf = X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap().remove(0);
        let names: Vec<String> = leaf
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| n.dnsname().map(str::to_owned).unwrap_or_else(|| format!("{:?}", n.ipaddress())))
            .collect();
        assert_eq!(names[0..2], ["hub.local".to_string(), "edgehub".to_string()]);
        assert_eq!(names.len(), 3);
        assert_eq!(issued.not_after, now + 30 * DAY);
        assert!(issued.key_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn the_ca_survives_restarts_and_renews_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let config = CertificatesConfig::default();
        let ca = DeviceCa::open(dir.path(), "dev1", &config, NOW).unwrap();
        let bundle = ca.trust_bundle();
        let again = DeviceCa::open(dir.path(), "dev1", &config, NOW + DAY).unwrap();
        assert_eq!(again.trust_bundle(), bundle);
        // 80 % of 90 days have passed: renewed on open.
        let later = DeviceCa::open(dir.path(), "dev1", &config, NOW + 73 * DAY).unwrap();
        assert_ne!(later.trust_bundle(), bundle);
        assert_eq!(later.not_after(), NOW + 73 * DAY + 90 * DAY);
    }

    #[test]
    fn leaves_never_outlive_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let config = CertificatesConfig { ca_validity_days: 10, ..CertificatesConfig::default() };
        let ca = DeviceCa::open(dir.path(), "dev1", &config, NOW).unwrap();
        let issued = ca.issue(&LeafRequest::Client { common_name: "modA".into() }, 30, NOW).unwrap();
        assert_eq!(issued.not_after, NOW + 10 * DAY);
    }

    #[test]
    fn corrupt_ca_files_refuse_to_load_and_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        DeviceCa::open(dir.path(), "dev1", &CertificatesConfig::default(), NOW).unwrap();
        std::fs::write(dir.path().join("ca.pem"), b"garbage").unwrap();
        let err = DeviceCa::open(dir.path(), "dev1", &CertificatesConfig::default(), NOW).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), b"garbage");
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::open(dir.path(), "dev1", &CertificatesConfig::default(), NOW).unwrap();
        let req = LeafRequest::Server { common_name: "bad name".into(), dns_names: vec![], ip_addresses: vec![] };
        assert!(matches!(ca.issue(&req, 1, NOW), Err(CertError::InvalidRequest(_))));
    }
}
