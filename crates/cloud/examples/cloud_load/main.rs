//! Simulated devices for `cargo xtask bench cloud`: registers COUNT devices through the
//! operator API (all with one given key), signs each in to RabbitMQ with its own SAS token
//! (authenticated by outpost-cloud), then has each publish telemetry every INTERVAL seconds
//! for SECONDS. Prints `connected N S` once every device is in, then one JSON line.
//!
//! Usage: `cloud_load API TOKEN_FILE AMQP_PORT HUB COUNT INTERVAL SECONDS`

mod amqp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::DeviceId;
use outpost_core::sas::{SasToken, TokenScope};
use outpost_core::topology::{self, D2C_EXCHANGE, UpKind};
use outpost_proto::cloud::v1 as pb;
use ring::hmac;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The key every simulated device is registered with.
const KEY: [u8; 32] = [7; 32];
/// Sign-ins in flight at once (RabbitMQ asks the cloud for each).
const CONCURRENT_SIGN_INS: usize = 64;

fn token(hub: &str, device: &str) -> Result<String, Error> {
    let scope = TokenScope::Device { hub: hub.into(), device: DeviceId::new(device)? };
    let expiry = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 3600;
    let mut token = SasToken::new(scope, expiry, vec![0]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &KEY);
    token.signature = hmac::sign(&key, token.string_to_sign().as_bytes()).as_ref().to_vec();
    Ok(token.to_string())
}

async fn register(api: &str, admin: &str, count: usize) -> Result<(), Error> {
    let channel = tonic::transport::Endpoint::from_shared(api.to_owned())?.connect().await?;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {admin}").parse()?;
    let mut registry =
        pb::registry_client::RegistryClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
    for i in 0..count {
        let request = pb::CreateDeviceRequest {
            device_id: format!("sim-{i:05}"),
            authentication: Some(pb::Authentication {
                kind: Some(pb::authentication::Kind::SymmetricKey(pb::SymmetricKey {
                    primary_key: BASE64.encode(KEY),
                    secondary_key: BASE64.encode(KEY),
                })),
            }),
            tags_json: r#"{"sim": true}"#.into(),
            disabled: false,
        };
        match registry.create_device(request).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => return Err(status.into()),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| Error::from(format!("argument {} is missing", i + 1)));
    let (api, token_file, amqp_port, hub) = (arg(0)?, arg(1)?, arg(2)?, arg(3)?);
    let count: usize = arg(4)?.parse()?;
    let interval = Duration::from_secs_f64(arg(5)?.parse()?);
    let seconds: u64 = arg(6)?.parse()?;
    let admin = std::fs::read_to_string(token_file)?.trim().to_owned();

    let registered = Instant::now();
    register(&api, &admin, count).await?;
    let register_seconds = registered.elapsed().as_secs_f64();

    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SIGN_INS));
    let mut sign_ins = tokio::task::JoinSet::new();
    let port: u16 = amqp_port.parse()?;
    for i in 0..count {
        let device = format!("sim-{i:05}");
        let password = token(&hub, &device)?;
        let permit = semaphore.clone().acquire_owned().await?;
        sign_ins.spawn(async move {
            let connected = amqp::Device::connect(port, &device, &password, "outpost").await;
            drop(permit);
            connected.map(|connection| (device, connection))
        });
    }
    let (mut devices, mut failures) = (Vec::with_capacity(count), 0u64);
    while let Some(result) = sign_ins.join_next().await {
        match result {
            Ok(Ok(device)) => devices.push(device),
            Ok(Err(e)) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("sign-in failed: {e}");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    println!("connected {} {connect_seconds:.3}", devices.len());

    let published = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut senders = tokio::task::JoinSet::new();
    let spread = interval.as_secs_f64() / devices.len().max(1) as f64;
    for (n, (device, mut connection)) in devices.into_iter().enumerate() {
        let published = published.clone();
        senders.spawn(async move {
            // Spread the devices over the interval so the load is even.
            tokio::time::sleep(Duration::from_secs_f64(spread * n as f64)).await;
            let key = topology::up_key(&device, Some("sensor"), UpKind::Telemetry);
            let mut tick = tokio::time::interval(interval);
            while Instant::now() < deadline {
                tick.tick().await;
                if connection.publish(D2C_EXCHANGE, &key, br#"{"temperature": 21.5}"#).await.is_ok() {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }
            connection.close().await;
        });
    }
    while senders.join_next().await.is_some() {}
    let published = published.load(Ordering::Relaxed);
    println!(
        "{{\"devices\": {count}, \"connected\": {}, \"failures\": {failures}, \"register_seconds\": {register_seconds:.3}, \
         \"connect_seconds\": {connect_seconds:.3}, \"published\": {published}, \"hold_seconds\": {seconds}}}",
        count as u64 - failures
    );
    Ok(())
}
