//! outpost-cloud: the fleet control plane.
//!
//! It keeps the device registry and the device and module twins in a [`store::CloudStore`]
//! (sled by default), serves operators the `outpost.cloud.v1` API over TLS with bearer
//! tokens ([`api`]), and answers RabbitMQ's HTTP auth backend ([`broker_auth`]) so that
//! devices sign in to the broker with SAS tokens signed by their own keys and reach only
//! their own queues and routing keys.
//!
//! [`open`] builds everything from configuration and fails with a reason before anything is
//! served; [`run`] serves until shutdown.

pub mod amqp;
pub mod api;
pub mod broker_auth;
pub mod calls;
pub mod config;
pub mod deployments;
pub mod error;
pub mod registry;
pub mod service;
pub mod store;
pub mod tls;
pub mod twin;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::Operators;
use crate::broker_auth::policy::Policy;
use crate::config::{Config, ConfigProblem};
use crate::service::Cloud;
use crate::store::{SledStore, StoreError};

/// The file, in the state dir, holding the generated broker service password.
pub const BROKER_SECRET_FILE: &str = "broker.secret";

/// Why the control plane cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigProblem),
    /// The state dir cannot be created or a state file cannot be read or written.
    #[error("cannot {action} {path}: {source}")]
    State {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operator tokens cannot be set up.
    #[error(transparent)]
    Operators(#[from] api::operators::OperatorsError),
    /// TLS cannot be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The system's random source failed.
    #[error("the system random source failed")]
    Random,
}

impl outpost_daemon::bootstrap::ExitCodeOf for StartError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        match self {
            Self::Config(_) => outpost_daemon::ExitCode::Config,
            _ => outpost_daemon::ExitCode::IoError,
        }
    }
}

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The API server failed.
    #[error("operator API failed: {0}")]
    Api(#[from] tonic::transport::Error),
}

impl outpost_daemon::bootstrap::ExitCodeOf for RunError {}

/// Everything opened and ready to serve.
#[derive(Debug)]
pub struct Opened {
    /// The operations.
    pub cloud: Arc<Cloud>,
    /// Who may call the API.
    pub operators: Arc<Operators>,
    /// The API's TLS identity; `None` for plaintext on loopback.
    pub tls: Option<tls::Identity>,
    /// The broker access policy.
    pub policy: Policy,
    /// The generated admin token's file, when operators are not configured.
    pub admin_token_file: Option<PathBuf>,
    /// The broker link's settings.
    pub link: amqp::LinkConfig,
    /// Registry events for the broker link.
    pub events: tokio::sync::mpsc::UnboundedReceiver<amqp::RegistryEvent>,
}

fn broker_secret(config: &Config) -> Result<String, StartError> {
    if let Some(password) = &config.broker_auth.service_password {
        return Ok(password.clone());
    }
    let path = config.cloud.state_dir.join(BROKER_SECRET_FILE);
    let state = |action, source| StartError::State { action, path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(secret) => Ok(secret.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 24];
            SystemRandom::new().fill(&mut bytes).map_err(|_| StartError::Random)?;
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            outpost_daemon::atomic::write_atomic(&path, format!("{secret}\n").as_bytes(), 0o600)
                .map_err(|e| state("write", e))?;
            Ok(secret)
        }
        Err(e) => Err(state("read", e)),
    }
}

fn create_dir(path: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(path).map_err(|source| StartError::State {
        action: "create",
        path: path.display().to_string(),
        source,
    })
}

/// Validates the configuration and opens the store, tokens, TLS identity and secrets.
pub fn open(config: &Config) -> Result<Opened, StartError> {
    config.validate()?;
    let state_dir = &config.cloud.state_dir;
    create_dir(state_dir)?;
    let store = SledStore::open(&state_dir.join("store"))?;
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let cloud = Arc::new(
        Cloud::new(Arc::new(store), &config.cloud.hub_hostname, config.cloud.token_skew_secs).with_events(events_tx),
    );
    let (operators, admin_token_file) = if config.api.operator.is_empty() {
        (Operators::generated_admin(state_dir)?, Some(state_dir.join(api::operators::ADMIN_TOKEN_FILE)))
    } else {
        (Operators::from_config(&config.api.operator), None)
    };
    let tls = if config.api.tls {
        Some(tls::identity(
            config.api.cert_file.as_deref(),
            config.api.key_file.as_deref(),
            &config.api.names,
            state_dir,
        )?)
    } else {
        None
    };
    let secret = broker_secret(config)?;
    let policy = Policy::new(&config.broker_auth.vhost, &config.broker_auth.service_user, secret.clone());
    let link = amqp::LinkConfig {
        url: config.amqp.url.clone(),
        vhost: config.broker_auth.vhost.clone(),
        user: config.broker_auth.service_user.clone(),
        password: secret,
        queue_type: config.amqp.queue_type,
        ca_pem: match &config.amqp.ca_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|source| StartError::State {
                action: "read",
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        },
    };
    Ok(Opened { cloud, operators: Arc::new(operators), tls, policy, admin_token_file, link, events })
}

/// The sockets the control plane serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The operator API.
    pub api: TcpListener,
    /// RabbitMQ's auth backend endpoint.
    pub broker_auth: TcpListener,
}

/// How often devices' activity is written to the store.
const ACTIVITY_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes devices' activity every [`ACTIVITY_FLUSH`] and once more at shutdown.
async fn flush_activity(cloud: Arc<Cloud>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(ACTIVITY_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let c = cloud.clone();
        match tokio::task::spawn_blocking(move || c.flush_activity()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write devices' activity; kept for the next round"),
            Err(e) => tracing::error!(error = %e, "the activity writer failed"),
        }
        if last {
            return;
        }
    }
}

/// Serves the API and the broker auth endpoint until `shutdown`.
pub async fn run(opened: Opened, listeners: Listeners, shutdown: CancellationToken) -> Result<(), RunError> {
    let Opened { cloud, operators, tls, policy, link, events, .. } = opened;
    let tls = tls.map(|identity| {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(identity.chain_pem, identity.key_pem))
    });
    let auth = tokio::spawn(broker_auth::serve(listeners.broker_auth, policy, cloud.clone(), shutdown.child_token()));
    let link = tokio::spawn(amqp::run(link, cloud.clone(), events, shutdown.child_token()));
    let activity = tokio::spawn(flush_activity(cloud.clone(), shutdown.child_token()));
    let result = api::serve(listeners.api, tls, cloud, operators, shutdown.clone()).await;
    // The API stopping (shutdown or failure) ends the others too.
    shutdown.cancel();
    for (name, task) in [("broker auth endpoint", auth), ("broker link", link), ("activity writer", activity)] {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "{name} failed");
        }
    }
    result.map_err(RunError::from)
}
