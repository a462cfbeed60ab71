//! Binding Unix socket files: restrictive modes, stale files replaced, live ones kept.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::error::RpcError;

/// Binds `path` with permission bits `mode` (e.g. `0o660`).
///
/// The socket is bound under a temporary name, given its mode and then renamed into place,
/// so there is no moment when it is reachable with looser permissions. A leftover socket
/// from a dead process is replaced; a socket some live process still serves is not
/// (`RpcError::InUse`), nor is anything that is not a socket.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, RpcError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| RpcError::CreateDir { path: dir.to_owned(), source })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(RpcError::InUse { path: path.to_owned() });
            }
        }
        Ok(_) => return Err(RpcError::NotASocket { path: path.to_owned() }),
        Err(_) => {}
    }
    let bind_err = |source| RpcError::Bind { path: path.to_owned(), source };
    let tmp = temporary_name(path);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    std::fs::rename(&tmp, path).map_err(bind_err)?;
    Ok(listener)
}

fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_get_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.sock");
        let _l = bind(&path, 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn stale_sockets_are_replaced_but_live_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let live = bind(&path, 0o660).unwrap();
        assert!(matches!(bind(&path, 0o660), Err(RpcError::InUse { .. })));
        drop(live);
        assert!(bind(&path, 0o660).is_ok(), "a dead socket file is replaced");
    }

    #[tokio::test]
    async fn regular_files_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(bind(&path, 0o660), Err(RpcError::NotASocket { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }
}
