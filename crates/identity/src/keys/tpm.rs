//! A key store whose keys live in a TPM 2.0 and whose HMACs are computed inside it.
//!
//! - The storage root key (SRK) is re-created on every start as a primary key in the Owner
//!   hierarchy from one fixed template: ECC NIST P-256, SHA-256 name, AES-128-CFB for children,
//!   attributes restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda
//!   (`tpm2_createprimary -C o -g sha256 -G ecc256:null:aes128cfb -a <those>` makes the same key).
//!   A primary key follows from the hierarchy's seed and the template alone, so the same SRK
//!   comes back each time and blobs made under it stay loadable; nothing goes into TPM NV memory.
//! - Each key is a keyed-hash (HMAC-SHA256) object created under the SRK from caller-provided
//!   bytes, sent in a session salted with the SRK so they are encrypted on the bus.
//! - The TPM hands back a public part and a private part wrapped by the SRK. Both are kept in
//!   `{dir}/{id}.tpm` (mode 0600) as JSON `{"version":1,"public":"<base64 TPM2B_PUBLIC>",
//!   "private":"<base64 TPM2B_PRIVATE>"}`, the marshalled forms `tpm2_create -u/-r` write. The
//!   private part is encrypted and integrity-protected under this TPM's Owner seed: the file is
//!   useless off this TPM (or after a TPM clear), and the key bytes never leave the TPM again.
//! - Every blob is loaded at open and its handle cached, so an HMAC is one TPM2_HMAC command
//!   with a password session. The ESAPI [`Context`] is not `Sync`; it sits in a [`Mutex`].
//! - tss-esapi 7.x has no HMAC sequence commands: data over [`MAX_HMAC_DATA`] is refused.
//! - Each loaded key takes a TPM object slot, as does the SRK, and `create` needs a free one.
//!   Without a resource manager (bare swtpm, `/dev/tpm0`) there are about three: the SRK and
//!   two keys. Use `device:/dev/tpmrm0` (or tabrmd) in production.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::{SessionType, Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::handles::{KeyHandle, SessionHandle};
use tss_esapi::interface_types::{algorithm::HashingAlgorithm, algorithm::PublicAlgorithm, ecc::EccCurve};
use tss_esapi::interface_types::{resource_handles::Hierarchy, session_handles::AuthSession};
use tss_esapi::structures::{Digest, EccPoint, KeyedHashScheme, MaxBuffer, Private, Public, PublicBuilder};
use tss_esapi::structures::{PublicEccParametersBuilder, PublicKeyedHashParameters, SensitiveData};
use tss_esapi::structures::{SymmetricDefinition, SymmetricDefinitionObject};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, Error as TssError, TctiNameConf};

use super::{KeyError, KeyInit, KeyStore, check_id, check_private, random_key};
use outpost_daemon::atomic::write_atomic;

/// The longest message [`TpmKeyStore::hmac`] takes: one TPM2B_MAX_BUFFER.
pub const MAX_HMAC_DATA: usize = 1024;
/// SHA-256's block size, the longest HMAC key the TPM takes. A longer imported key is stored as
/// its SHA-256 digest, which by RFC 2104 gives the same HMACs.
const HMAC_BLOCK: usize = 64;
const BLOB_VERSION: u32 = 1;

/// The on-disk form of one key.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobFile {
    version: u32,
    public: String,
    private: String,
}

/// A [`KeyStore`] whose keys are TPM 2.0 keyed-hash objects; see the module docs.
pub struct TpmKeyStore {
    tcti: String,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    ctx: Context,
    srk: KeyHandle,
    keys: HashMap<String, KeyHandle>,
}

impl std::fmt::Debug for TpmKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<String> = self.lock().keys.keys().cloned().collect();
        ids.sort();
        f.debug_struct("TpmKeyStore").field("tcti", &self.tcti).field("dir", &self.dir).field("keys", &ids).finish()
    }
}

/// The stack's text for `e` plus the raw response code (the text alone may be "not recognized").
fn describe(e: &TssError) -> String {
    let (rc, code) = match e {
        TssError::Tss2Error(rc @ Tss2ResponseCode::FormatZero(c)) => (rc, c.to_string()),
        TssError::Tss2Error(rc @ Tss2ResponseCode::FormatOne(c)) => (rc, c.to_string()),
        _ => return e.to_string(),
    };
    let full = rc.kind() == Some(Tss2ResponseCodeKind::ObjectMemory);
    let hint = if full { "; no free object slot: use a resource manager (device:/dev/tpmrm0 or tabrmd)" } else { "" };
    format!("{e} ({}){hint}", code.to_lowercase())
}

fn tpm_err(operation: &'static str) -> impl FnOnce(TssError) -> KeyError {
    move |e| KeyError::Tpm { operation, message: describe(&e) }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Corrupt { path: path.to_owned(), reason: reason.into() }
}

/// The SRK template: restricted decryption ECC P-256, AES-128-CFB, SHA-256 name, no DA.
fn srk_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new().with_fixed_tpm(true).with_fixed_parent(true);
    let attributes = attributes.with_sensitive_data_origin(true).with_user_with_auth(true).with_no_da(true);
    let attributes = attributes.with_restricted(true).with_decrypt(true).build()?;
    let aes = SymmetricDefinitionObject::AES_128_CFB;
    let params = PublicEccParametersBuilder::new_restricted_decryption_key(aes, EccCurve::NistP256).build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// An HMAC-SHA256 key whose bytes come from the caller (so no `sensitive_data_origin`).
fn hmac_key_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new().with_fixed_tpm(true).with_fixed_parent(true);
    let attributes = attributes.with_user_with_auth(true).with_no_da(true).with_sign_encrypt(true).build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::HMAC_SHA_256))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

/// Marshals a TPM2B: a big-endian u16 size, then the bytes (TPM structures are far below 64 KiB).
fn tpm2b(body: &[u8]) -> Vec<u8> {
    [&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes()[..], body].concat()
}

/// The body of a marshalled TPM2B, which must fill `bytes` exactly.
fn tpm2b_body<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    match bytes {
        [hi, lo, body @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == body.len() => Ok(body),
        _ => Err(format!("{what}: TPM2B size does not match its length")),
    }
}

fn encode_blob(public: &Public, private: &Private) -> Result<Vec<u8>, KeyError> {
    let public = B64.encode(tpm2b(&public.marshall().map_err(tpm_err("marshal public area"))?));
    let blob = BlobFile { version: BLOB_VERSION, public, private: B64.encode(tpm2b(private)) };
    let json =
        serde_json::to_string_pretty(&blob).map_err(|e| KeyError::Tpm { operation: "encode", message: e.to_string() });
    Ok(format!("{}\n", json?).into_bytes())
}

fn decode_blob(bytes: &[u8]) -> Result<(Public, Private), String> {
    let blob: BlobFile = serde_json::from_slice(bytes).map_err(|e| format!("not a TPM key blob: {e}"))?;
    if blob.version != BLOB_VERSION {
        return Err(format!("unknown version {}", blob.version));
    }
    let public = B64.decode(&blob.public).map_err(|e| format!("public: {e}"))?;
    let private = B64.decode(&blob.private).map_err(|e| format!("private: {e}"))?;
    let area = tpm2b_body(&public, "public")?;
    let public = Public::unmarshall(area).map_err(|e| format!("public: {e}"))?;
    if public.marshall().ok().as_deref() != Some(area) {
        return Err("public: not one canonical TPMT_PUBLIC".into());
    }
    if !matches!(public, Public::KeyedHash { .. }) {
        return Err("public: not a keyed-hash object".into());
    }
    let private = Private::try_from(tpm2b_body(&private, "private")?.to_vec()).map_err(|e| format!("private: {e}"))?;
    Ok((public, private))
}

/// Reads and parses a blob file, which must be a regular file with mode 0600 (or stricter).
fn read_blob(path: &Path) -> Result<(Public, Private), KeyError> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(corrupt(path, "not a regular file"));
    }
    check_private(path, meta.permissions().mode(), 0o600)?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    decode_blob(&bytes).map_err(|reason| corrupt(path, reason))
}

impl TpmKeyStore {
    /// Connects to the TPM named by `tcti` (e.g. `device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`), re-creates the SRK and loads every `{id}.tpm` blob in
    /// `dir`, which is created with mode 0700 if missing.
    pub fn open(tcti: &str, dir: &Path) -> Result<Self, KeyError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
        check_private(dir, std::fs::metadata(dir).map_err(io_err(dir))?.permissions().mode(), 0o700)?;
        let mut blobs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            let id = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tpm"));
            if let Some(id) = id.filter(|id| check_id(id).is_ok()) {
                blobs.push((id.to_owned(), read_blob(&path)?, path));
            }
        }

        let conf = TctiNameConf::from_str(tcti)
            .map_err(|e| KeyError::Tpm { operation: "parse TCTI", message: format!("{tcti:?}: {e}") })?;
        let mut ctx = Context::new(conf)
            .map_err(|e| KeyError::Tpm { operation: "connect", message: format!("{tcti}: {}", describe(&e)) })?;
        ctx.set_sessions((Some(AuthSession::Password), None, None));
        let template = srk_template().map_err(tpm_err("build SRK template"))?;
        let srk = ctx.create_primary(Hierarchy::Owner, template, None, None, None, None);
        let mut inner =
            Inner { ctx, srk: srk.map_err(tpm_err("create storage root key"))?.key_handle, keys: HashMap::new() };
        for (id, (public, private), path) in blobs {
            let handle = inner.load_file(&path, public, private)?;
            inner.keys.insert(id, handle);
        }
        Ok(TpmKeyStore { tcti: tcti.to_owned(), dir: dir.to_owned(), inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every field stays consistent across a panic: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Loads a blob read from `path`. A TPM parameter error (integrity, size, ...) means it is
    /// damaged or was made by another TPM; anything else is reported as a TPM failure.
    fn load_file(&mut self, path: &Path, public: Public, private: Private) -> Result<KeyHandle, KeyError> {
        self.ctx.load(self.srk, private, public).map_err(|e| match e {
            TssError::Tss2Error(Tss2ResponseCode::FormatOne(_)) => {
                corrupt(path, format!("the TPM refused to load it ({}); was it made by another TPM?", describe(&e)))
            }
            e => tpm_err("load key")(e),
        })
    }

    /// Creates an HMAC key from `material` under the SRK, in a session salted with the SRK so
    /// that `material` is encrypted on its way to the TPM.
    fn create(&mut self, material: Vec<u8>) -> Result<(Public, Private), KeyError> {
        let template = hmac_key_template().map_err(tpm_err("build key template"))?;
        let sensitive = SensitiveData::try_from(material).map_err(tpm_err("wrap key bytes"))?;
        let srk = self.srk;
        let (kind, aes, sha256) = (SessionType::Hmac, SymmetricDefinition::AES_128_CFB, HashingAlgorithm::Sha256);
        let session = self
            .ctx
            .execute_without_session(|ctx| ctx.start_auth_session(Some(srk), None, None, kind, aes, sha256))
            .map_err(tpm_err("start salted session"))?
            .ok_or_else(|| KeyError::Tpm { operation: "start salted session", message: "no session".into() })?;
        let (attributes, mask) = SessionAttributesBuilder::new().with_decrypt(true).with_continue_session(true).build();
        let created = self.ctx.tr_sess_set_attributes(session, attributes, mask).and_then(|()| {
            self.ctx
                .execute_with_session(Some(session), |ctx| ctx.create(srk, template, None, Some(sensitive), None, None))
        });
        let flushed = self.ctx.execute_without_session(|ctx| ctx.flush_context(SessionHandle::from(session).into()));
        let created = created.map_err(tpm_err("create key"))?;
        flushed.map_err(tpm_err("flush session"))?;
        Ok((created.out_public, created.out_private))
    }
}

impl KeyStore for TpmKeyStore {
    fn kind(&self) -> &'static str {
        "tpm"
    }

    fn ensure(&self, id: &str, init: KeyInit) -> Result<(), KeyError> {
        check_id(id)?;
        let mut inner = self.lock();
        if inner.keys.contains_key(id) {
            return Ok(());
        }
        let path = self.dir.join(format!("{id}.tpm"));
        if std::fs::symlink_metadata(&path).is_ok() {
            // Written since open: use it, never replace it.
            let (public, private) = read_blob(&path)?;
            let handle = inner.load_file(&path, public, private)?;
            inner.keys.insert(id.to_owned(), handle);
            return Ok(());
        }
        let material = match init {
            KeyInit::Generate => random_key()?,
            KeyInit::Import(bytes) if bytes.is_empty() => {
                return Err(KeyError::Tpm { operation: "import key", message: "the key is empty".into() });
            }
            KeyInit::Import(bytes) if bytes.len() > HMAC_BLOCK => super::sha256(&bytes).to_vec(),
            KeyInit::Import(bytes) => bytes,
        };
        let (public, private) = inner.create(material)?;
        let blob = encode_blob(&public, &private)?;
        let srk = inner.srk;
        let handle = inner.ctx.load(srk, private, public).map_err(tpm_err("load new key"))?;
        if let Err(e) = write_atomic(&path, &blob, 0o600) {
            let _ = inner.ctx.execute_without_session(|ctx| ctx.flush_context(handle.into()));
            return Err(io_err(&path)(e));
        }
        inner.keys.insert(id.to_owned(), handle);
        Ok(())
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().keys.contains_key(id)
    }

    fn hmac(&self, id: &str, data: &[u8]) -> Result<[u8; 32], KeyError> {
        check_id(id)?;
        if data.len() > MAX_HMAC_DATA {
            let message = format!("{} bytes is more than the {MAX_HMAC_DATA} one TPM command takes", data.len());
            return Err(KeyError::Tpm { operation: "HMAC", message });
        }
        let buffer = MaxBuffer::try_from(data.to_vec()).map_err(tpm_err("HMAC"))?;
        let mut inner = self.lock();
        let handle = *inner.keys.get(id).ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
        let digest = inner.ctx.hmac(handle.into(), buffer, HashingAlgorithm::Sha256).map_err(tpm_err("HMAC"))?;
        let len = digest.value().len();
        digest.value().try_into().map_err(|_| KeyError::Tpm { operation: "HMAC", message: format!("got {len} bytes") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hmac_sha256;
    use outpost_testkit::Swtpm;

    /// A temporary directory and a not yet existing key directory in it.
    fn key_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        (tmp, dir)
    }

    #[test]
    fn generated_keys_persist_and_are_never_replaced() {
        let (tpm, (_tmp, dir)) = (Swtpm::start(), key_dir());
        let store = TpmKeyStore::open(&tpm.tcti(), &dir).unwrap();
        assert_eq!(store.kind(), "tpm");
        assert!(!store.contains("k"));
        store.ensure("k", KeyInit::Generate).unwrap();
        assert!(store.contains("k") && format!("{store:?}").contains("\"k\""));
        let mac = store.hmac("k", b"data").unwrap();
        assert_eq!(store.hmac("k", b"data").unwrap(), mac);
        assert_ne!(store.hmac("k", b"datb").unwrap(), mac);
        assert!(matches!(store.hmac("nope", b"x"), Err(KeyError::NotFound(_))));
        assert!(matches!(store.ensure("../x", KeyInit::Generate), Err(KeyError::BadId(_))));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&dir.join("k.tpm"))), (0o700, 0o600));
        let blob = std::fs::read(dir.join("k.tpm")).unwrap();
        store.ensure("k", KeyInit::Import(b"other".to_vec())).unwrap();
        assert_eq!(store.hmac("k", b"data").unwrap(), mac);
        drop(store);

        let store = TpmKeyStore::open(&tpm.tcti(), &dir).unwrap();
        assert!(store.contains("k"));
        assert_eq!(store.hmac("k", b"data").unwrap(), mac);
        store.ensure("k", KeyInit::Generate).unwrap();
        assert_eq!(store.hmac("k", b"data").unwrap(), mac);
        assert_eq!(std::fs::read(dir.join("k.tpm")).unwrap(), blob);
    }

    #[test]
    fn imported_keys_match_software_hmac() {
        let (tpm, (_tmp, dir)) = (Swtpm::start(), key_dir());
        let store = TpmKeyStore::open(&tpm.tcti(), &dir).unwrap();
        store.ensure("jefe", KeyInit::Import(b"Jefe".to_vec())).unwrap();
        let mac = store.hmac("jefe", b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // A key longer than a block (imported hashed) and the longest message.
        let (key, data): (Vec<u8>, _) = ((0..131).collect(), vec![0x5a; MAX_HMAC_DATA]);
        store.ensure("long", KeyInit::Import(key.clone())).unwrap();
        assert_eq!(store.hmac("long", &data).unwrap(), hmac_sha256(&key, &data).unwrap());
        assert!(matches!(store.hmac("long", &[0; MAX_HMAC_DATA + 1]), Err(KeyError::Tpm { .. })));
        assert!(matches!(store.ensure("bad", KeyInit::Import(vec![])), Err(KeyError::Tpm { .. })));
        assert!(!dir.join("bad.tpm").exists());
    }

    #[test]
    fn bad_blobs_and_modes_fail_open_and_are_left_alone() {
        let (tpm, (_tmp, dir)) = (Swtpm::start(), key_dir());
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let path = dir.join("k.tpm");
        let open_err = || TpmKeyStore::open(&tpm.tcti(), &dir).unwrap_err();

        write_atomic(&path, b"garbage", 0o600).unwrap();
        let err = open_err();
        assert!(matches!(&err, KeyError::Corrupt { path: p, .. } if *p == path), "{err:?}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"garbage");

        // A well-formed blob from another TPM: its seed differs, so this TPM refuses it.
        let (other, (_other_tmp, other_dir)) = (Swtpm::start(), key_dir());
        TpmKeyStore::open(&other.tcti(), &other_dir).unwrap().ensure("k", KeyInit::Generate).unwrap();
        let foreign = std::fs::read(other_dir.join("k.tpm")).unwrap();
        write_atomic(&path, &foreign, 0o600).unwrap();
        let err = open_err();
        assert!(matches!(&err, KeyError::Corrupt { path: p, .. } if *p == path), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), foreign);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(open_err(), KeyError::Permissions { path: p, mode: 0o644, .. } if p == path));
        std::fs::remove_file(&path).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(open_err(), KeyError::Permissions { path: p, .. } if p == dir));
    }
}
