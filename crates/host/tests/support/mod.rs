//! What the outpostd tests share: where the workspace's programs are, and free ports.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

/// Where cargo put this workspace's binaries (beside the test's own directory), checked to
/// hold every program outpostd runs.
pub fn bin_dir() -> PathBuf {
    let dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_owned();
    for program in ["outpost-identityd", "outpost-agent", "outpost-hub", "outpost-watchdog", "outpost-logger"] {
        assert!(
            dir.join(program).exists(),
            "{program} is not built in {}: run `cargo build --workspace --bins`",
            dir.display()
        );
    }
    dir
}

/// A TCP port on loopback nobody listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
