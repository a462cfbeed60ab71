//! File-backed keys: one `{id}.key` file per key (base64, mode 0600) in a directory of mode
//! 0700 under the state directory. Files are written atomically and never overwritten;
//! a file with loose permissions or unreadable content stops the daemon with its path.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{KeyError, KeyInit, KeyStore, check_id, check_private, hmac_sha256, random_key};
use outpost_daemon::atomic::write_atomic;

/// The longest key accepted (IoT Hub keys are 16–64 bytes).
const MAX_KEY_LEN: usize = 128;

/// Keys kept in files under one directory.
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
    keys: RwLock<HashMap<String, Vec<u8>>>,
}

impl FileKeyStore {
    /// Opens (creating if needed) the key directory `dir` and loads every key in it.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: dir.to_owned(), source };
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        }
        let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode();
        check_private(dir, mode, 0o700)?;
        let mut keys = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".key")) else {
                continue;
            };
            let id = id.to_owned();
            keys.insert(id, read_key(&path)?);
        }
        Ok(Self { dir: dir.to_owned(), keys: RwLock::new(keys) })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    fn key(&self, id: &str) -> Result<Vec<u8>, KeyError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(id).cloned().ok_or_else(|| KeyError::NotFound(id.to_owned()))
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(KeyError::Corrupt { path: path.to_owned(), reason: "not a regular file".into() });
    }
    check_private(path, meta.permissions().mode(), 0o600)?;
    let text = std::fs::read_to_string(path)
        .map_err(|_| KeyError::Corrupt { path: path.to_owned(), reason: "not UTF-8 text".into() })?;
    let key = BASE64
        .decode(text.trim())
        .map_err(|e| KeyError::Corrupt { path: path.to_owned(), reason: format!("not base64 ({e})") })?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(KeyError::Corrupt {
            path: path.to_owned(),
            reason: format!("key is {} bytes; expected 1 to {MAX_KEY_LEN}", key.len()),
        });
    }
    Ok(key)
}

impl KeyStore for FileKeyStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn ensure(&self, id: &str, init: KeyInit) -> Result<(), KeyError> {
        check_id(id)?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.contains_key(id) {
            return Ok(());
        }
        let key = match init {
            KeyInit::Generate => random_key()?,
            KeyInit::Import(bytes) if bytes.is_empty() || bytes.len() > MAX_KEY_LEN => {
                return Err(KeyError::Corrupt {
                    path: self.path(id),
                    reason: format!("imported key is {} bytes; expected 1 to {MAX_KEY_LEN}", bytes.len()),
                });
            }
            KeyInit::Import(bytes) => bytes,
        };
        let path = self.path(id);
        if path.exists() {
            // Appeared since we loaded: never overwrite, read what is there.
            keys.insert(id.to_owned(), read_key(&path)?);
            return Ok(());
        }
        let mut text = BASE64.encode(&key);
        text.push('\n');
        write_atomic(&path, text.as_bytes(), 0o600).map_err(|source| KeyError::Io { path, source })?;
        keys.insert(id.to_owned(), key);
        Ok(())
    }

    fn contains(&self, id: &str) -> bool {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    fn hmac(&self, id: &str, data: &[u8]) -> Result<[u8; 32], KeyError> {
        hmac_sha256(&self.key(id)?, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        (dir, keys)
    }

    #[test]
    fn generated_keys_persist_with_private_modes() {
        let (_tmp, dir) = store_dir();
        let store = FileKeyStore::open(&dir).unwrap();
        store.ensure("master", KeyInit::Generate).unwrap();
        let mac = store.hmac("master", b"x").unwrap();
        let mode = std::fs::metadata(dir.join("master.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        let reopened = FileKeyStore::open(&dir).unwrap();
        assert_eq!(reopened.hmac("master", b"x").unwrap(), mac);
        reopened.ensure("master", KeyInit::Generate).unwrap();
        assert_eq!(reopened.hmac("master", b"x").unwrap(), mac, "ensure never replaces a key");
    }

    #[test]
    fn imported_keys_sign_like_the_reference() {
        let (_tmp, dir) = store_dir();
        let store = FileKeyStore::open(&dir).unwrap();
        store.ensure("device", KeyInit::Import(b"Jefe".to_vec())).unwrap();
        assert_eq!(store.hmac("device", b"abc").unwrap(), hmac_sha256(b"Jefe", b"abc").unwrap());
        assert!(matches!(store.hmac("nope", b"abc"), Err(KeyError::NotFound(_))));
    }

    #[test]
    fn loose_permissions_refuse_to_start_and_name_the_file() {
        let (_tmp, dir) = store_dir();
        FileKeyStore::open(&dir).unwrap().ensure("master", KeyInit::Generate).unwrap();
        let file = dir.join("master.key");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = FileKeyStore::open(&dir).unwrap_err();
        assert!(matches!(&err, KeyError::Permissions { path, .. } if path == &file), "{err}");

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(FileKeyStore::open(&dir), Err(KeyError::Permissions { .. })));
    }

    #[test]
    fn corrupt_key_files_refuse_to_start_and_are_left_untouched() {
        let (_tmp, dir) = store_dir();
        FileKeyStore::open(&dir).unwrap();
        let file = dir.join("master.key");
        write_atomic(&file, b"%%% not base64 %%%", 0o600).unwrap();
        let err = FileKeyStore::open(&dir).unwrap_err();
        assert!(err.to_string().contains(&file.display().to_string()), "{err}");
        assert!(matches!(err, KeyError::Corrupt { .. }));
        assert_eq!(std::fs::read(&file).unwrap(), b"%%% not base64 %%%");

        write_atomic(&file, b"\n", 0o600).unwrap();
        assert!(matches!(FileKeyStore::open(&dir), Err(KeyError::Corrupt { .. })));
    }
}
