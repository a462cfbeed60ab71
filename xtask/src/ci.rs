//! `cargo xtask ci`: installs what the tests need, then checks formatting, lints and tests.

use crate::util::{apt_install, cargo, pip_install, sh};

/// Debian packages the workspace needs to build: openssl-sys (tests), tss-esapi-sys,
/// containerd-client's protoc step. xtask itself needs none of them.
pub const BUILD_PACKAGES: &[&str] = &["pkg-config", "libssl-dev", "libtss2-dev", "protobuf-compiler"];

/// Debian packages the tests need: TPM, containers, a static busybox for test images, a
/// loopback image registry (with `htpasswd` for its users), Mosquitto and its clients (the
/// third-party MQTT clients the hub is tested with), `taskset` for benchmarks, curl as an
/// HTTPS client, RabbitMQ (the control plane's message broker), docker-compose (the fleet
/// test; the Docker engine itself is the machine's).
pub const TEST_PACKAGES: &[&str] = &[
    "swtpm",
    "swtpm-tools",
    "tpm2-tools",
    "containerd",
    "runc",
    "busybox-static",
    "docker-registry",
    "apache2-utils",
    "mosquitto",
    "mosquitto-clients",
    "util-linux",
    "curl",
    "rabbitmq-server",
    "docker-compose",
];

/// The official Azure IoT module SDK, used to prove workload API compatibility.
pub const AZURE_SDK: &str = "azure-iot-device==2.14.0";

/// paho-mqtt, a third-party MQTT client (3.1.1 and 5) the hub is tested with: the version
/// azure-iot-device pins (it comes with the SDK; installed here in case the SDK is not).
pub const PAHO: &str = "paho-mqtt==1.6.1";

/// Runs the whole CI pipeline.
pub fn run_ci() -> anyhow::Result<()> {
    apt_install(&[BUILD_PACKAGES, TEST_PACKAGES].concat())?;
    pip_install("azure.iot.device", AZURE_SDK)?;
    pip_install("paho.mqtt", PAHO)?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args(["clippy", "--workspace", "--all-targets", "--all-features", "--locked", "--", "-D", "warnings"]))?;
    // Tests that run the services as processes or containers need every program built, not
    // only those of their own crate.
    sh(cargo().args(["build", "--workspace", "--bins", "--locked"]))?;
    sh(cargo().args(["test", "--workspace", "--locked"]))?;
    // The images, end to end: pushed to a loopback registry, pulled and run by the agent.
    sh(cargo()
        .args(["run", "--quiet", "--locked", "--package", "xtask", "--features", "containers", "--"])
        .args(["images", "--debug", "--smoke"]))?;
    // The fleet under docker-compose: cloud, RabbitMQ and two devices running outpostd.
    sh(cargo()
        .args(["run", "--quiet", "--locked", "--package", "xtask", "--features", "containers", "--"])
        .args(["e2e"]))?;
    Ok(())
}

/// Entry point.
pub fn run() -> anyhow::Result<()> {
    run_ci()
}
