//! outpost-hub against MQTT clients written by others: mosquitto_pub/mosquitto_sub (3.1.1
//! and 5) and paho-mqtt (Python, 3.1.1 and 5), plus raw sockets for protocol violations.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use outpost_hub::config::Config;
use tokio_util::sync::CancellationToken;

struct Hub {
    addr: SocketAddr,
    shutdown: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Anonymous clients may use every topic; no identity service.
fn open_config() -> Config {
    let mut config = Config::default();
    config.admin.socket = "".into();
    config.metrics.enabled = false;
    config.store.dir = "".into();
    config.routes.deployment_file = "".into();
    config.identity.socket = "".into();
    config.auth.allow_anonymous = true;
    config.auth.anonymous_publish = vec!["#".into()];
    config.auth.anonymous_subscribe = vec!["#".into()];
    config
}

fn hub() -> Hub {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    runtime.spawn(outpost_hub::run(open_config(), listener, shutdown.clone()));
    Hub { addr, shutdown, runtime: Some(runtime) }
}

impl Hub {
    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn sub(&self, args: &[&str]) -> Child {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port(), "-W", "30"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn publish(&self, args: &[&str]) -> Output {
        let out =
            Command::new("mosquitto_pub").args(["-h", "127.0.0.1", "-p", &self.port()]).args(args).output().unwrap();
        assert!(out.status.success(), "mosquitto_pub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Publishes `message` on `topic` until `sub` has received `count` messages and exited
    /// (the subscription's start is not observable from outside).
    fn publish_until(&self, sub: Child, version: &str, qos: &str, topic: &str, message: &str) -> String {
        let mut sub = sub;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sub.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "mosquitto_sub never got {message:?}");
            self.publish(&["-V", version, "-q", qos, "-t", topic, "-m", message]);
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = sub.wait_with_output().unwrap();
        assert!(out.status.success(), "mosquitto_sub failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn mosquitto_clients_exchange_messages_in_both_versions_and_all_qos() {
    let hub = hub();
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("t/{version}/{qos}");
            let sub = hub.sub(&["-V", version, "-q", qos, "-C", "1", "-v", "-t", "t/#"]);
            let got = hub.publish_until(sub, version, qos, &topic, "hello");
            assert_eq!(got.trim(), format!("{topic} hello"), "{version} QoS {qos}");
        }
    }
}

#[test]
fn retained_messages_and_wills_work_with_mosquitto_clients() {
    let hub = hub();
    hub.publish(&["-V", "mqttv5", "-q", "1", "-r", "-t", "status/dev1", "-m", "online"]);
    let out = hub.sub(&["-V", "mqttv311", "-C", "1", "-v", "-t", "status/+"]).wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "status/dev1 online");

    // A client with a will dies without DISCONNECT: its will is published.
    let watcher = hub.sub(&["-V", "mqttv311", "-C", "1", "-v", "-t", "wills/#"]);
    let mut doomed = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &hub.port(), "-t", "ready/doomed", "--will-topic", "wills/doomed"])
        .args(["--will-payload", "gone", "-i", "doomed"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it receives a message it is connected and subscribed; then it dies.
    let stdout = doomed.stdout.take().unwrap();
    let (seen_tx, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = seen_tx.send(line);
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the doomed client never connected");
        hub.publish(&["-t", "ready/doomed", "-m", "ping"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let out = watcher.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "wills/doomed gone");
}

#[test]
fn persistent_sessions_keep_qos1_messages_for_absent_clients() {
    let hub = hub();
    // Subscribe with a persistent session (a retained message makes it return at once), then
    // leave; clear the retained message (QoS 0: not queued for the absent session).
    hub.publish(&["-q", "1", "-r", "-t", "jobs/retained", "-m", "warm-up"]);
    let first = hub.sub(&["-V", "mqttv311", "-q", "1", "-c", "-i", "keeper", "-C", "1", "-t", "jobs/#"]);
    assert!(first.wait_with_output().unwrap().status.success());
    hub.publish(&["-q", "0", "-r", "-n", "-t", "jobs/retained"]);
    for n in 1..=3 {
        hub.publish(&["-V", "mqttv311", "-q", "1", "-t", &format!("jobs/{n}"), "-m", &format!("job {n}")]);
    }
    let out = hub
        .sub(&["-V", "mqttv311", "-q", "1", "-c", "-i", "keeper", "-C", "3", "-t", "jobs/#"])
        .wait_with_output()
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["job 1", "job 2", "job 3"]);
}

fn raw(hub: &Hub, bytes: &[u8]) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(hub.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn protocol_violations_close_the_connection_and_others_carry_on() {
    let hub = hub();
    let connect = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    // SUBSCRIBE with fixed-header flags 0000 after a good CONNECT: CONNACK, then closed.
    let mut bad = connect.to_vec();
    bad.extend_from_slice(&[0x80, 6, 0, 1, 0, 1, b'a', 0]);
    assert_eq!(raw(&hub, &bad), vec![0x20, 2, 0, 0], "CONNACK, then the connection is closed");
    // MQTT 3.1 (MQIsdp): refused with return code 1.
    let mut v31 = vec![0x10, 14, 0, 6];
    v31.extend_from_slice(b"MQIsdp");
    v31.extend_from_slice(&[3, 0x02, 0, 60, 0, 0]);
    assert_eq!(raw(&hub, &v31), vec![0x20, 2, 0, 1]);
    // v5: an oversize packet gets DISCONNECT 0x95 with a reason string.
    let mut v5 = vec![0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0];
    v5.extend_from_slice(&[0x30, 0x80, 0x80, 0x80, 0x01]);
    let answer = raw(&hub, &v5);
    assert_eq!(answer[0], 0x20, "CONNACK first");
    let disconnect = &answer[answer[1] as usize + 2..];
    assert_eq!((disconnect[0], disconnect[2]), (0xe0, 0x95), "{answer:?}");
    // The broker still serves.
    hub.publish(&["-q", "1", "-t", "still/here", "-m", "yes"]);
}

#[test]
fn paho_clients_in_both_versions() {
    let hub = hub();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/paho_clients.py");
    let out = Command::new("python3").arg(script).arg(hub.port()).output().unwrap();
    assert!(
        out.status.success(),
        "paho-mqtt:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
