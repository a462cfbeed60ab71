//! The sample modules as processes, with the real workload API (an in-process identityd)
//! and Mosquitto standing in for the hub: readings on the sensor's output, the filter
//! forwarding only hot ones, a desired-property patch changing its threshold. Messages are
//! observed with mosquitto_sub and injected with mosquitto_pub (clients written by others).

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outpost_core::{DeviceId, ModuleId};
use outpost_testkit::Mosquitto;
use tokio_util::sync::CancellationToken;

struct Device {
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
    generations: std::collections::HashMap<String, String>,
}

impl Drop for Device {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn device(modules: &[&str]) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let config = outpost_identity::config::Config::under(dir.path(), DeviceId::new("dev1").unwrap(), "hub.example");
    let service = outpost_identity::open(&config).unwrap();
    let mut generations = std::collections::HashMap::new();
    for module in modules {
        let (identity, _) = service.create_module(&ModuleId::new(*module).unwrap(), "test").unwrap();
        generations.insert((*module).to_owned(), identity.generation_id.to_string());
    }
    let listener = outpost_rpc::bind(&config.paths.socket, 0o660).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(outpost_identity::run_owned(config, service, listener, shutdown.clone()));
    Device { dir, shutdown, generations }
}

struct Module(Child);

impl Drop for Module {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn module(device: &Device, binary: &str, name: &str, broker: &Mosquitto, extra: &[(&str, &str)]) -> Module {
    let socket = device.dir.path().join("run/mnt").join(name).join("workload.sock");
    let mut command = Command::new(binary);
    command
        .env("IOTEDGE_IOTHUBHOSTNAME", "hub.example")
        .env("IOTEDGE_DEVICEID", "dev1")
        .env("IOTEDGE_MODULEID", name)
        .env("IOTEDGE_MODULEGENERATIONID", &device.generations[name])
        .env("IOTEDGE_GATEWAYHOSTNAME", "127.0.0.1")
        .env("IOTEDGE_WORKLOADURI", format!("unix://{}", socket.display()))
        .env("IOTEDGE_APIVERSION", "2019-01-30")
        .env("OUTPOST_HUB_PORT", broker.port().to_string())
        .env("OUTPOST_HUB_TLS", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        command.env(k, v);
    }
    Module(command.spawn().unwrap())
}

/// Starts `mosquitto_sub` on `topic` for `count` messages; returns once it is subscribed.
fn watch(broker: &Mosquitto, id: &str, topic: &str, count: u32) -> Child {
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string(), "-i", id, "-q", "1", "-v", "-W", "60"])
        .args(["-C", &count.to_string(), "-t", topic])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    broker.wait_for_log(&format!("Sending SUBACK to {id}"), Duration::from_secs(20));
    child
}

fn lines(child: Child) -> Vec<(String, serde_json::Value)> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "mosquitto_sub timed out");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (topic, body) = l.split_once(' ').unwrap();
            (topic.to_owned(), serde_json::from_str(body).unwrap())
        })
        .collect()
}

fn publish(broker: &Mosquitto, topic: &str, body: &str) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string(), "-q", "1", "-t", topic, "-m", body])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensor_sends_readings_on_its_output_with_a_module_identity() {
    let device = device(&["sensor"]).await;
    let broker = Mosquitto::start();
    let watcher = watch(&broker, "watcher", "devices/dev1/modules/sensor/messages/events/#", 3);
    let _sensor = module(
        &device,
        env!("CARGO_BIN_EXE_simulated-temperature-sensor"),
        "sensor",
        &broker,
        &[("MessageCount", "3"), ("SendInterval", "0.05")],
    );
    let received = tokio::task::spawn_blocking(move || lines(watcher)).await.unwrap();
    assert_eq!(received.len(), 3);
    for (topic, body) in &received {
        assert!(topic.contains("%24.on=temperatureOutput"), "{topic}");
        assert!(topic.contains("%24.ct=application%2Fjson"), "{topic}");
        let t = body.pointer("/machine/temperature").and_then(|t| t.as_f64()).unwrap();
        assert!((21.0..=100.0).contains(&t), "{body}");
    }
    // IoT Hub's client id and user name; the password is a SAS token from the workload API.
    let log = broker.log();
    assert!(
        log.contains("as dev1/sensor") && log.contains("u'hub.example/dev1/sensor/?api-version=2018-06-30'"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_forwards_hot_readings_and_follows_its_desired_threshold() {
    let device = device(&["filter"]).await;
    let broker = Mosquitto::start();
    let _filter = module(&device, env!("CARGO_BIN_EXE_filter"), "filter", &broker, &[("TemperatureThreshold", "25")]);
    broker.wait_for_log("Sending SUBACK to dev1/filter", Duration::from_secs(20));
    // Three subscriptions (inputs, twin responses, desired patches).
    let watcher = watch(&broker, "watcher", "devices/dev1/modules/filter/messages/events/#", 2);
    let input = "devices/dev1/modules/filter/inputs/input1/%24.cdid=dev1&%24.cmid=sensor";
    let reading = |t: f64| serde_json::json!({"machine": {"temperature": t}}).to_string();
    publish(&broker, input, &reading(20.0));
    publish(&broker, input, "not json");
    publish(&broker, input, &reading(30.0));
    // A desired-property patch raises the threshold: 30 is no longer hot, 40 is.
    let tasks = tokio::task::spawn_blocking(move || lines(watcher));
    publish(
        &broker,
        "$iothub/twin/PATCH/properties/desired/?$version=2",
        r#"{"TemperatureThreshold": 35, "$version": 2}"#,
    );
    publish(&broker, input, &reading(30.0));
    publish(&broker, input, &reading(40.0));
    let received = tasks.await.unwrap();
    let temperatures: Vec<f64> =
        received.iter().map(|(_, b)| b.pointer("/machine/temperature").unwrap().as_f64().unwrap()).collect();
    assert_eq!(temperatures, [30.0, 40.0]);
    for (topic, _) in &received {
        assert!(topic.contains("%24.on=output1") && topic.contains("MessageType=Alert"), "{topic}");
    }
}
