//! `outpost identity list|show|create|delete|token`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use outpost_proto::identity::v1 as pb;
use outpost_proto::identity::v1::identity_client::IdentityClient;
use serde::Serialize;

use crate::output::{self, Format};

/// Module identity commands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// List module identities.
    List,
    /// Show one module identity.
    Show {
        /// The module id.
        module: String,
    },
    /// Create a module identity (returns the existing one if present).
    Create {
        /// The module id.
        module: String,
    },
    /// Delete a module identity; a new one with the same id gets a new generation id.
    Delete {
        /// The module id.
        module: String,
    },
    /// Issue a SAS token for a module, or for the device with `--device`.
    Token {
        /// The module id.
        #[arg(required_unless_present = "device")]
        module: Option<String>,
        /// Issue the device's own token.
        #[arg(long, conflicts_with = "module")]
        device: bool,
        /// Lifetime in seconds (default: the service's configured default).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
    },
}

#[derive(Serialize)]
struct ModuleRow {
    module_id: String,
    generation_id: String,
    managed_by: String,
    created_at: i64,
    workload_socket: String,
}

impl From<pb::ModuleIdentity> for ModuleRow {
    fn from(m: pb::ModuleIdentity) -> Self {
        Self {
            module_id: m.module_id,
            generation_id: m.generation_id,
            managed_by: m.managed_by,
            created_at: m.created_at,
            workload_socket: m.workload_socket,
        }
    }
}

fn print_modules(rows: Vec<ModuleRow>, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::json(&rows),
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![r.module_id.clone(), r.generation_id.clone(), r.managed_by.clone(), r.workload_socket.clone()]
                })
                .collect();
            output::table(&["MODULE", "GENERATION", "MANAGED BY", "WORKLOAD SOCKET"], &cells);
            Ok(())
        }
    }
}

/// Runs an identity subcommand against the service on `socket`.
pub async fn run(cmd: IdentityCommand, socket: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let channel = outpost_rpc::connect(socket)
        .await
        .with_context(|| format!("is outpost-identityd running? (socket {})", socket.display()))?;
    let mut client = IdentityClient::new(channel);
    match cmd {
        IdentityCommand::List => {
            let modules = client.list_modules(pb::ListModulesRequest {}).await?.into_inner().modules;
            print_modules(modules.into_iter().map(ModuleRow::from).collect(), format)?;
        }
        IdentityCommand::Show { module } => {
            let m = client.get_module(pb::GetModuleRequest { module_id: module }).await?.into_inner();
            print_modules(vec![m.into()], format)?;
        }
        IdentityCommand::Create { module } => {
            let m = client
                .create_module(pb::CreateModuleRequest { module_id: module, managed_by: "operator".into() })
                .await?
                .into_inner();
            print_modules(vec![m.into()], format)?;
        }
        IdentityCommand::Delete { module } => {
            client.delete_module(pb::DeleteModuleRequest { module_id: module.clone() }).await?;
            match format {
                Format::Json => output::json(&serde_json::json!({ "deleted": module }))?,
                Format::Table => println!("deleted module identity {module}"),
            }
        }
        IdentityCommand::Token { module, device: _, ttl } => {
            let module_id = module.unwrap_or_default();
            let token = client.issue_token(pb::IssueTokenRequest { module_id, ttl_secs: ttl }).await?.into_inner();
            match format {
                Format::Json => output::json(&serde_json::json!({ "token": token.token, "expiry": token.expiry }))?,
                Format::Table => println!("{}", token.token),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
