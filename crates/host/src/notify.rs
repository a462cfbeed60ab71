//! systemd's service notifications (`sd_notify`): `READY=1` once the services are up,
//! `WATCHDOG=1` at half of `WATCHDOG_USEC` while outpostd's loop is alive, `STOPPING=1`.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` to systemd, if it is listening.
pub fn notify(state: &str) {
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET")
        && let Err(e) = send(&socket, state)
    {
        tracing::debug!(error = %e, state, "cannot notify systemd");
    }
}

/// Sends `state` to the notification socket `socket` (a path, or `@name` for an abstract one).
pub fn send(socket: &OsStr, state: &str) -> std::io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    if let Some(name) = socket.as_encoded_bytes().strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        datagram.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        datagram.send_to(state.as_bytes(), std::path::Path::new(socket))?;
    }
    Ok(())
}

/// How often to send `WATCHDOG=1`, if systemd's watchdog is on for this service.
pub fn watchdog_interval() -> Option<Duration> {
    interval_from(std::env::var("WATCHDOG_USEC").ok().as_deref(), std::env::var("WATCHDOG_PID").ok().as_deref())
}

fn interval_from(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    let usec: u64 = usec?.parse().ok()?;
    if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn the_watchdog_interval_is_half_of_systemds() {
        assert_eq!(interval_from(Some("20000000"), None), Some(Duration::from_secs(10)));
        let me = std::process::id().to_string();
        assert_eq!(interval_from(Some("2000000"), Some(&me)), Some(Duration::from_secs(1)));
        assert_eq!(interval_from(Some("2000000"), Some("1")), None);
        assert_eq!(interval_from(None, None), None);
        assert_eq!(interval_from(Some("0"), None), None);
    }
}
