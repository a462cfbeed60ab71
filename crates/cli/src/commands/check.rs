//! `outpost check`: the device check list, each check a small function returning a result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use outpost_identity::config::{Config as IdentityConfig, KeyStoreKind};
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::output::{self, Format};

/// Flags of `outpost check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The identity service's configuration file.
    #[arg(long, default_value = "/etc/outpost/identityd.toml")]
    identity_config: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    warnings_as_errors: bool,
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warning,
    Error,
    Skipped,
}

#[derive(Debug, Serialize)]
struct CheckResult {
    id: &'static str,
    description: &'static str,
    status: Status,
    detail: String,
}

fn result(id: &'static str, description: &'static str, outcome: Result<(Status, String), String>) -> CheckResult {
    let (status, detail) = outcome.unwrap_or_else(|e| (Status::Error, e));
    CheckResult { id, description, status, detail }
}

fn check_config(path: &Path) -> Result<(Status, String), String> {
    let config: IdentityConfig = outpost_daemon::load_config(path).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((Status::Ok, format!("{} is valid", path.display())))
}

fn check_keys(config: &IdentityConfig) -> Result<(Status, String), String> {
    match config.key_store.kind {
        KeyStoreKind::File => {
            let dir = config.paths.state_dir.join("keys");
            if !dir.exists() {
                return Ok((
                    Status::Warning,
                    format!("{} does not exist yet; outpost-identityd creates it on first start", dir.display()),
                ));
            }
            outpost_identity::keys::file::FileKeyStore::open(&dir).map_err(|e| e.to_string())?;
            Ok((Status::Ok, format!("file key store {} is private and readable", dir.display())))
        }
        KeyStoreKind::Tpm => {
            outpost_identity::open_key_store(config).map_err(|e| e.to_string())?;
            Ok((Status::Ok, format!("TPM reachable through {}", config.key_store.tcti)))
        }
    }
}

async fn check_socket(socket: &Path) -> Result<(Status, String), String> {
    let channel = outpost_rpc::connect(socket).await.map_err(|e| format!("{e}; is outpost-identityd running?"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok((Status::Ok, format!("{} answers and is serving", socket.display()))),
        other => Err(format!("{} answers but reports {other:?}", socket.display())),
    }
}

fn check_ca(config: &IdentityConfig) -> Result<(Status, String), String> {
    let path = config.paths.state_dir.join("certs/ca.pem");
    let Ok(pem) = std::fs::read(&path) else {
        return Ok((Status::Warning, format!("{} does not exist yet", path.display())));
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    let cert = pem.parse_x509().map_err(|e| format!("{}: {e}", path.display()))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let days = (cert.validity().not_after.timestamp() - now).div_euclid(86_400);
    match days {
        d if d < 0 => Err(format!("device CA {} has expired", path.display())),
        d if d < 7 => Ok((
            Status::Warning,
            format!("device CA expires in {d} days; it renews automatically at the configured threshold"),
        )),
        d => Ok((Status::Ok, format!("device CA valid for {d} more days"))),
    }
}

/// Runs every check and prints the results.
pub async fn run(args: CheckArgs, identity_socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let mut results =
        vec![result("identity-config", "identity service configuration is valid", check_config(&args.identity_config))];
    let config: Option<IdentityConfig> = outpost_daemon::load_config(&args.identity_config).ok();
    let skipped = || Ok((Status::Skipped, "configuration is invalid".to_owned()));
    results.push(result(
        "identity-keys",
        "key store is readable with private permissions",
        config.as_ref().map_or_else(skipped, check_keys),
    ));
    results.push(result(
        "identity-socket",
        "identity service answers on its socket",
        check_socket(identity_socket).await,
    ));
    results.push(result(
        "device-ca-expiry",
        "device CA certificate is valid",
        config.as_ref().map_or_else(skipped, check_ca),
    ));

    match format {
        Format::Json => output::json(&results)?,
        Format::Table => {
            for r in &results {
                let mark = match r.status {
                    Status::Ok => "ok  ",
                    Status::Warning => "warn",
                    Status::Error => "FAIL",
                    Status::Skipped => "skip",
                };
                println!("[{mark}] {:<18} {}", r.id, r.description);
                println!("       {}", r.detail);
            }
        }
    }
    let failed =
        results.iter().any(|r| r.status == Status::Error || (args.warnings_as_errors && r.status == Status::Warning));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
