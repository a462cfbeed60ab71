//! `cargo xtask ci`: installs what the tests need, then checks formatting, lints and tests.

use crate::util::{apt_install, cargo, pip_install, sh};

/// Debian packages the build and the tests need.
pub const SYSTEM_PACKAGES: &[&str] = &[
    // build: openssl-sys (tests), tss-esapi-sys, containerd-client's protoc step
    "pkg-config",
    "libssl-dev",
    "libtss2-dev",
    "protobuf-compiler",
    // tests: TPM, containers, a static busybox for test images
    "swtpm",
    "swtpm-tools",
    "tpm2-tools",
    "containerd",
    "runc",
    "busybox-static",
];

/// The official Azure IoT module SDK, used to prove workload API compatibility.
pub const AZURE_SDK: &str = "azure-iot-device==2.14.0";

/// Runs the whole CI pipeline.
pub fn run_ci() -> anyhow::Result<()> {
    apt_install(SYSTEM_PACKAGES)?;
    pip_install("azure.iot.device", AZURE_SDK)?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    sh(cargo().args(["test", "--workspace", "--locked"]))?;
    Ok(())
}

/// Entry point.
pub fn run() -> anyhow::Result<()> {
    run_ci()
}
