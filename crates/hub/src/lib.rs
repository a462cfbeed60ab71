//! outpost-hub: the device's message hub — an MQTT 3.1.1 and 5.0 broker that speaks IoT
//! Hub's dialect, routes messages between modules and upstream, and keeps every message it
//! acknowledged until it is delivered.
//!
//! - [`mqtt`]: the sans-IO protocol layer: a strict packet codec for both protocol versions
//!   and topic names and filters;
//! - [`broker`]: the broker's state machine (sessions, subscriptions, retained messages,
//!   wills, QoS flows), also without I/O;
//! - [`server`]: the tokio loops that move bytes between sockets and the broker;
//! - [`https`]: the HTTPS endpoint (direct methods between modules).

pub mod admin;
pub mod auth;
pub mod broker;
pub mod cloud;
pub mod config;
pub mod dialect;
pub mod https;
pub mod metrics;
pub mod mqtt;
pub mod routes;
pub mod server;
pub mod store;
pub mod tls;
pub mod twins;
pub mod uplink;

use tokio_util::sync::CancellationToken;

/// Why the hub stopped.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A listener failed.
    #[error("MQTT listener: {0}")]
    Listener(#[from] std::io::Error),
    /// A TLS listener cannot be bound.
    #[error("cannot listen on {bind}")]
    Bind {
        /// The address.
        bind: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The admin socket cannot be bound.
    #[error(transparent)]
    Admin(#[from] outpost_rpc::RpcError),
    /// The message store cannot be opened or read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The TLS certificate cannot be had.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// identityd could not tell the device's hub name.
    #[error("cannot get the device's identity from outpost-identityd at {path}: {reason}")]
    Identity {
        /// Its socket.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The cloud link's settings are unusable.
    #[error(transparent)]
    Cloud(#[from] outpost_upstream::ConfigError),
    /// `[cloud] ca_file` cannot be read.
    #[error("cannot read [cloud] ca_file {path}: {source}")]
    CloudCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl outpost_daemon::bootstrap::ExitCodeOf for HubError {
    fn exit_code(&self) -> outpost_daemon::ExitCode {
        outpost_daemon::ExitCode::IoError
    }
}

/// Serves MQTT on `listener` (and on TLS per the configuration) until `shutdown`.
pub async fn run(
    config: config::Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), HubError> {
    run_with_uplink(config, listener, None, shutdown).await
}

/// As [`run`], sending `$upstream` messages through `uplink` (none: they wait in the store
/// until they expire).
pub async fn run_with_uplink(
    config: config::Config,
    listener: tokio::net::TcpListener,
    uplink: Option<Box<dyn uplink::Uplink>>,
    shutdown: CancellationToken,
) -> Result<(), HubError> {
    let iothub = if config.identity.socket.as_os_str().is_empty() {
        None
    } else {
        let socket = config.identity.socket.clone();
        let failed = |reason: String| HubError::Identity { path: socket.clone(), reason };
        let channel = outpost_rpc::connect(&socket).await.map_err(|e| failed(e.to_string()))?;
        let device = outpost_proto::identity::v1::identity_client::IdentityClient::new(channel)
            .get_device(outpost_proto::identity::v1::GetDeviceRequest {})
            .await
            .map_err(|e| failed(e.message().to_owned()))?
            .into_inner();
        let verifier: std::sync::Arc<dyn auth::verify::TokenVerifier> =
            std::sync::Arc::new(auth::verify::IdentitydVerifier::new(socket));
        Some((device.hub_hostname, device.gateway_hostname, device.device_id, verifier))
    };
    // One server certificate (and acceptor) for MQTT over TLS and HTTPS.
    let wants_tls = config.mqtt.tls || config.https.enabled;
    let acceptor = match (&iothub, wants_tls) {
        (Some((_, gateway, _, _)), true) => {
            let mut names = tls::Names { common_name: gateway.clone(), dns: vec![gateway.clone()], ips: Vec::new() };
            for name in &config.mqtt.tls_names {
                if name.parse::<std::net::IpAddr>().is_ok() {
                    names.ips.push(name.clone());
                } else {
                    names.dns.push(name.clone());
                }
            }
            let (acceptor, renewal) =
                tls::acceptor(config.identity.socket.clone(), names, shutdown.child_token()).await?;
            tokio::spawn(renewal);
            Some(acceptor)
        }
        (None, true) => {
            tracing::warn!(
                "MQTT over TLS and HTTPS are off: their certificate comes from outpost-identityd ([identity] socket)"
            );
            None
        }
        (_, false) => None,
    };
    let bind = |bind: std::net::SocketAddr, acceptor: &tokio_rustls::TlsAcceptor| {
        let acceptor = acceptor.clone();
        async move {
            let listener =
                tokio::net::TcpListener::bind(bind).await.map_err(|source| HubError::Bind { bind, source })?;
            Ok::<_, HubError>((listener, acceptor))
        }
    };
    let tls = match &acceptor {
        Some(acceptor) if config.mqtt.tls => {
            let tls = bind(config.mqtt.tls_bind, acceptor).await?;
            tracing::info!(mqtts = %config.mqtt.tls_bind, "MQTT over TLS listener ready");
            Some(tls)
        }
        _ => None,
    };
    let https = match &acceptor {
        Some(acceptor) if config.https.enabled => {
            let https = bind(config.https.bind, acceptor).await?;
            tracing::info!(https = %config.https.bind, "HTTPS listener ready");
            Some(https)
        }
        _ => None,
    };
    let device = iothub.as_ref().map(|(_, _, device, _)| device.clone());
    let iothub = iothub.map(|(hub, _, _, verifier)| (hub, verifier));
    let authenticator = std::sync::Arc::new(auth::Authenticator::new(config.auth.clone(), iothub));
    let admin = if config.admin.socket.as_os_str().is_empty() {
        None
    } else {
        let socket = config.admin.socket.clone();
        let listener = outpost_rpc::bind(&socket, config.admin.socket_mode)?;
        Some((socket, listener, config.admin.principal.clone()))
    };
    let metrics = if config.metrics.enabled {
        let bind = config.metrics.bind;
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|source| HubError::Bind { bind, source })?;
        tracing::info!(metrics = %bind, "Prometheus metrics at /metrics");
        Some(listener)
    } else {
        None
    };
    let listeners = server::Listeners { plain: listener, tls, https, admin, metrics };
    let routes: Option<Box<dyn routes::RouteSource>> = if config.routes.deployment_file.as_os_str().is_empty() {
        None
    } else {
        let every = std::time::Duration::from_secs(config.routes.poll_secs.max(1));
        Some(Box::new(routes::DeploymentFile::new(config.routes.deployment_file.clone(), every)))
    };
    let store: Option<Box<dyn store::MessageStore>> = if config.store.dir.as_os_str().is_empty() {
        None
    } else {
        std::fs::create_dir_all(&config.store.dir).map_err(|e| store::StoreError::Backend {
            path: config.store.dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Some(Box::new(store::sled::SledStore::open(&config.store.dir)?))
    };
    let limits = broker::Limits { max_store_bytes: config.store.max_bytes, ..config.mqtt.limits() };
    let mut uplink = uplink;
    let mut companions: Vec<server::Companion> = Vec::new();
    match (config.cloud.url.is_empty(), &device) {
        (true, _) => {}
        (false, None) => {
            tracing::warn!("[cloud] url is set but the hub has no device ([identity] socket): no cloud link")
        }
        (false, Some(device)) => {
            let mut link_config = outpost_upstream::LinkConfig::new(
                config.cloud.url.clone(),
                config.cloud.vhost.clone(),
                device.clone(),
                outpost_core::topology::Component::Hub,
            );
            if !config.cloud.ca_file.as_os_str().is_empty() {
                let path = config.cloud.ca_file.clone();
                link_config.ca_pem =
                    Some(std::fs::read_to_string(&path).map_err(|source| HubError::CloudCa { path, source })?);
            }
            let tokens = std::sync::Arc::new(outpost_upstream::IdentitydTokens::new(&config.identity.socket));
            let link = outpost_upstream::Upstream::start(link_config, tokens, shutdown.child_token())?;
            let (upstream, downlinks, device) = (link.upstream, link.downlinks, device.clone());
            if uplink.is_none() {
                uplink = Some(Box::new(cloud::CloudUplink::new(upstream.clone())));
            }
            let state_file =
                (!config.store.dir.as_os_str().is_empty()).then(|| config.store.dir.join("cloud-reported.json"));
            let reported = cloud::ReportedSync::load(state_file);
            companions.push(Box::new(move |handle, stop| {
                Box::pin(cloud::serve(handle, upstream, downlinks, device, reported, stop))
            }));
            tracing::info!(url = %config.cloud.url, "following the cloud");
        }
    }
    let setup = server::Setup { limits, authenticator, routes, device, store, uplink, companions };
    Ok(server::serve(listeners, setup, shutdown).await?)
}
