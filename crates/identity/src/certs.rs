//! The device CA and the certificates it issues (OpenSSL).
//!
//! A self-signed EC P-256 CA is created on first start under `{state_dir}/certs` and
//! renewed (new key, new certificate) once the configured share of its lifetime has passed.
//! It issues TLS server certificates (the hub's, modules') and module identity (client)
//! certificates, each with a fresh EC P-256 key. The trust bundle is the CA plus any extra
//! roots from the configuration.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder};

use crate::atomic::write_atomic;
use crate::config::CertificatesConfig;

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
    /// OpenSSL failed.
    #[error("certificate operation failed")]
    Crypto(#[from] openssl::error::ErrorStack),
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
        /// DNS subject alternative names (the common name is added when it is not an IP).
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

#[derive(Debug)]
struct CaState {
    key: PKey<Private>,
    cert: X509,
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
                let state = generate_ca(&common_name, config.ca_validity_days, now)?;
                save(dir, &state)?;
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
    pub fn not_after(&self) -> Result<i64, CertError> {
        unix_time(self.current().cert.not_after())
    }

    /// Renews the CA if the configured share of its lifetime has passed; `true` if it did.
    pub fn renew_if_due(&self, now: i64) -> Result<bool, CertError> {
        let current = self.current();
        let not_before = unix_time(current.cert.not_before())?;
        let not_after = unix_time(current.cert.not_after())?;
        let due = not_before + (not_after - not_before) * i64::from(self.config.ca_renew_at_percent) / 100;
        if now < due {
            return Ok(false);
        }
        let state = generate_ca(&self.common_name, self.config.ca_validity_days, now)?;
        save(&self.dir, &state)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        tracing::info!(dir = %self.dir.display(), "renewed device CA");
        Ok(true)
    }

    /// The trust bundle: the CA certificate and the configured extra roots, PEM.
    pub fn trust_bundle(&self) -> Result<String, CertError> {
        let mut pem = String::from_utf8(self.current().cert.to_pem()?).expect("PEM is ASCII");
        pem.push_str(&self.extra_roots);
        Ok(pem)
    }

    /// Issues a leaf valid for `days` from `now` (capped at the CA's own expiry).
    pub fn issue(&self, request: &LeafRequest, days: u32, now: i64) -> Result<IssuedCertificate, CertError> {
        let ca = self.current();
        let key = ec_key()?;
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
        let ca_not_after = unix_time(ca.cert.not_after())?;
        let not_after = (now + i64::from(days) * DAY).min(ca_not_after);
        let mut builder = base_builder(common_name, &key, now, not_after)?;
        builder.set_issuer_name(ca.cert.subject_name())?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(KeyUsage::new().critical().digital_signature().key_agreement().build()?)?;
        let ctx = builder.x509v3_context(Some(&ca.cert), None);
        let ski = SubjectKeyIdentifier::new().build(&ctx)?;
        let aki = AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?;
        builder.append_extension(ski)?;
        builder.append_extension(aki)?;
        if let LeafRequest::Server { common_name, dns_names, ip_addresses } = request {
            let mut san = SubjectAlternativeName::new();
            match common_name.parse::<IpAddr>() {
                Ok(ip) => {
                    san.ip(&ip.to_string());
                }
                Err(_) => {
                    check_dns(common_name)?;
                    san.dns(common_name);
                }
            }
            for name in dns_names {
                check_dns(name)?;
                san.dns(name);
            }
            for ip in ip_addresses {
                san.ip(&ip.to_string());
            }
            let ext = san.build(&builder.x509v3_context(Some(&ca.cert), None))?;
            builder.append_extension(ext)?;
        }
        let eku = if server {
            ExtendedKeyUsage::new().server_auth().build()?
        } else {
            ExtendedKeyUsage::new().client_auth().build()?
        };
        builder.append_extension(eku)?;
        builder.sign(&ca.key, MessageDigest::sha256())?;
        let cert = builder.build();
        let mut chain_pem = String::from_utf8(cert.to_pem()?).expect("PEM is ASCII");
        chain_pem.push_str(&String::from_utf8(ca.cert.to_pem()?).expect("PEM is ASCII"));
        let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8()?).expect("PEM is ASCII");
        Ok(IssuedCertificate { chain_pem, key_pem, not_after })
    }
}

fn check_dns(name: &str) -> Result<(), CertError> {
    if is_dns_name(name) { Ok(()) } else { Err(CertError::InvalidRequest(format!("{name:?} is not a valid DNS name"))) }
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

fn ec_key() -> Result<PKey<Private>, CertError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn subject(common_name: &str) -> Result<X509Name, CertError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

fn base_builder(
    common_name: &str,
    key: &PKey<Private>,
    not_before: i64,
    not_after: i64,
) -> Result<X509Builder, CertError> {
    let name = subject(common_name)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_pubkey(key)?;
    // Back-date a minute so that a slightly slow peer clock accepts a fresh certificate.
    let start = Asn1Time::from_unix(not_before - 60)?;
    let end = Asn1Time::from_unix(not_after)?;
    builder.set_not_before(&start)?;
    builder.set_not_after(&end)?;
    Ok(builder)
}

fn generate_ca(common_name: &str, days: u32, now: i64) -> Result<CaState, CertError> {
    let key = ec_key()?;
    let mut builder = base_builder(common_name, &key, now, now + i64::from(days) * DAY)?;
    let issuer = subject(common_name)?;
    builder.set_issuer_name(&issuer)?;
    builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    builder.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().digital_signature().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok(CaState { key, cert: builder.build() })
}

fn unix_time(time: &openssl::asn1::Asn1TimeRef) -> Result<i64, CertError> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(time)?;
    Ok(i64::from(diff.days) * DAY + i64::from(diff.secs))
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("ca.key.pem")
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn load(dir: &Path) -> Result<Option<CaState>, CertError> {
    let (key_file, cert_file) = (key_path(dir), cert_path(dir));
    let read = |path: &Path| match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertError::Io { path: path.to_owned(), source }),
    };
    match (read(&key_file)?, read(&cert_file)?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(CertError::Corrupt { path: cert_file, reason: "missing while its key exists".into() }),
        (None, Some(_)) => {
            Err(CertError::Corrupt { path: key_file, reason: "missing while its certificate exists".into() })
        }
        (Some(key), Some(cert)) => {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&key_file)
                    .map_err(|source| CertError::Io { path: key_file.clone(), source })?
                    .permissions(),
            );
            if mode & 0o077 != 0 {
                return Err(CertError::Corrupt {
                    path: key_file,
                    reason: format!("mode {:o} lets others read the key (chmod 600)", mode & 0o777),
                });
            }
            let key = PKey::private_key_from_pem(&key)
                .map_err(|e| CertError::Corrupt { path: key_file.clone(), reason: e.to_string() })?;
            let cert = X509::from_pem(&cert)
                .map_err(|e| CertError::Corrupt { path: cert_file.clone(), reason: e.to_string() })?;
            let matches = cert.public_key().map(|pk| pk.public_eq(&key)).unwrap_or(false);
            if !matches {
                return Err(CertError::Corrupt { path: cert_file, reason: "does not match ca.key.pem".into() });
            }
            Ok(Some(CaState { key, cert }))
        }
    }
}

fn save(dir: &Path, state: &CaState) -> Result<(), CertError> {
    let key_file = key_path(dir);
    let cert_file = cert_path(dir);
    write_atomic(&key_file, &state.key.private_key_to_pem_pkcs8()?, 0o600)
        .map_err(|source| CertError::Io { path: key_file, source })?;
    write_atomic(&cert_file, &state.cert.to_pem()?, 0o644).map_err(|source| CertError::Io { path: cert_file, source })
}

fn read_extra_roots(path: &Path) -> Result<String, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Io { path: path.to_owned(), source })?;
    let certs = X509::stack_from_pem(&bytes)
        .map_err(|e| CertError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(CertError::Corrupt { path: path.to_owned(), reason: "holds no PEM certificate".into() });
    }
    let mut pem = String::new();
    for cert in certs {
        pem.push_str(&String::from_utf8(cert.to_pem()?).expect("PEM is ASCII"));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
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
        assert!(verify(&ca.trust_bundle().unwrap(), &issued.chain_pem));
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
        let bundle = ca.trust_bundle().unwrap();
        let again = DeviceCa::open(dir.path(), "dev1", &config, NOW + DAY).unwrap();
        assert_eq!(again.trust_bundle().unwrap(), bundle);
        // 80 % of 90 days have passed: renewed on open.
        let later = DeviceCa::open(dir.path(), "dev1", &config, NOW + 73 * DAY).unwrap();
        assert_ne!(later.trust_bundle().unwrap(), bundle);
        assert_eq!(later.not_after().unwrap(), NOW + 73 * DAY + 90 * DAY);
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
