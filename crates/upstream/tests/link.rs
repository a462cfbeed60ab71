//! The upstream link against a real RabbitMQ node authenticated by an in-process
//! outpost-cloud: confirmed publishing, downlinks acknowledged or redelivered or dead-lettered,
//! sign-in refusal with backoff, broker restarts, token refreshes, and tokens from identityd.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lapin::options::BasicConsumeOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use outpost_cloud::amqp::topology::METHODS_QUEUE;
use outpost_cloud::registry::Credentials;
use outpost_cloud::service::now_ms;
use outpost_core::topology::{self, D2C_EXCHANGE, DEAD_LETTER_QUEUE, DownKind, UpKind};
use outpost_upstream::{
    ConnectError, IdentitydTokens, LinkState, PublishError, SEQ_HEADER, STATUS_HEADER, StaticTokens, Token, TokenError,
    UpMessage, Upstream,
};
use support::{TAP, confirming, connected, depth, get, send_down, sign, start, tap, tokens, wait_state, word};
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

fn telemetry(body: &'static [u8]) -> UpMessage {
    UpMessage {
        module: Some("sensor".into()),
        kind: UpKind::Telemetry,
        body: Bytes::from_static(body),
        ..UpMessage::default()
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn header<'a>(delivery: &'a lapin::message::Delivery, name: &str) -> Option<&'a AMQPValue> {
    delivery.properties.headers().as_ref().and_then(|h| h.inner().get(name))
}

/// Publishes until confirmed, retrying what is retryable; how many attempts failed.
async fn publish_until_confirmed(upstream: &Upstream, message: UpMessage) -> usize {
    let mut failures = 0;
    loop {
        match upstream.publish(message.clone()).await {
            Ok(()) => return failures,
            Err(error) if error.is_retryable() => failures += 1,
            Err(error) => panic!("not retryable: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_carry_the_device_as_sender_and_their_properties() {
    let harness = start().await;
    let credentials = harness.device("dev.1").await;
    let service = harness.service().await;
    let channel = tap(&service, &[UpKind::Telemetry, UpKind::MethodResponse]).await;
    let shutdown = CancellationToken::new();
    let link =
        Upstream::start(harness.config("dev.1"), tokens(credentials, "dev.1", counter()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;

    let message = UpMessage {
        message_id: Some("m-1".into()),
        correlation_id: Some("c-1".into()),
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        headers: vec![("color".into(), "red".into())],
        seq: Some(42),
        ..telemetry(b"{\"t\":21}")
    };
    link.upstream.publish(message).await.unwrap();

    let delivery = get(&channel, TAP).await;
    assert_eq!(delivery.routing_key.as_str(), "dev%2E1.sensor.telemetry");
    assert_eq!(delivery.exchange.as_str(), D2C_EXCHANGE);
    assert_eq!(delivery.data, b"{\"t\":21}");
    let properties = &delivery.properties;
    assert_eq!(properties.user_id().as_ref().map(ShortString::as_str), Some("dev.1"));
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(properties.message_id().as_ref().map(ShortString::as_str), Some("m-1"));
    assert_eq!(properties.correlation_id().as_ref().map(ShortString::as_str), Some("c-1"));
    assert_eq!(properties.content_type().as_ref().map(ShortString::as_str), Some("application/json"));
    assert_eq!(properties.content_encoding().as_ref().map(ShortString::as_str), Some("utf-8"));
    assert_eq!(header(&delivery, "color"), Some(&AMQPValue::LongString(LongString::from("red"))));
    assert_eq!(header(&delivery, SEQ_HEADER), Some(&AMQPValue::LongLongInt(42)));

    // A method response from the device itself, with its status.
    let response = UpMessage {
        module: None,
        kind: UpKind::MethodResponse,
        correlation_id: Some("call-9".into()),
        status: Some(200),
        body: Bytes::from_static(b"{}"),
        ..UpMessage::default()
    };
    link.upstream.publish(response.clone()).await.unwrap();
    let delivery = get(&channel, TAP).await;
    assert_eq!(delivery.routing_key.as_str(), topology::up_key("dev.1", None, UpKind::MethodResponse));
    assert_eq!(header(&delivery, STATUS_HEADER), Some(&AMQPValue::LongInt(200)));

    // Mandatory publishing: with nothing bound for the key, the broker returns the message.
    for queue in [METHODS_QUEUE, TAP] {
        channel
            .queue_unbind(queue.into(), D2C_EXCHANGE.into(), "*.*.method-response".into(), FieldTable::default())
            .await
            .unwrap();
    }
    match link.upstream.publish(response).await {
        Err(PublishError::Unroutable { routing_key, reply_code: 312, .. }) => {
            assert_eq!(routing_key, "dev%2E1.$device.method-response");
        }
        other => panic!("an unroutable message was not refused: {other:?}"),
    }
    // The link is still up after a returned message.
    link.upstream.publish(telemetry(b"after")).await.unwrap();
    assert!(link.upstream.state().borrow().is_connected());

    // Shutting down ends the downlinks and refuses publishing.
    let (upstream, mut downlinks) = (link.upstream, link.downlinks);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), link.task).await.unwrap().unwrap();
    assert!(downlinks.recv().await.is_none());
    assert!(matches!(upstream.publish(telemetry(b"late")).await, Err(PublishError::Shutdown)));
    assert!(matches!(*upstream.state().borrow(), LinkState::Stopped));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ten_thousand_messages_is_confirmed() {
    let harness = start().await;
    let credentials = harness.device("batch").await;
    let shutdown = CancellationToken::new();
    let service = harness.service().await;
    let channel = tap(&service, &[UpKind::Telemetry]).await;
    let link =
        Upstream::start(harness.config("batch"), tokens(credentials, "batch", counter()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;

    const COUNT: usize = 10_000;
    let messages: Vec<UpMessage> = (0..COUNT)
        .map(|i| UpMessage { message_id: Some(format!("m{i}")), ..telemetry(b"{\"temperature\":21.5}") })
        .collect();
    let started = Instant::now();
    let results = link.upstream.publish_batch(messages).await;
    let elapsed = started.elapsed();
    eprintln!(
        "publish_batch: {COUNT} messages confirmed in {elapsed:?} ({:.0} messages/s)",
        COUNT as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(results.len(), COUNT);
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());

    // All there, once each, in order.
    assert_eq!(depth(&channel, TAP).await, COUNT as u32);
    let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    let consumer = channel.basic_consume(TAP.into(), "check".into(), no_ack, FieldTable::default()).await.unwrap();
    let ids: Vec<String> =
        consumer.take(COUNT).map(|d| d.unwrap().properties.message_id().as_ref().unwrap().to_string()).collect().await;
    assert!(ids.iter().enumerate().all(|(i, id)| *id == format!("m{i}")), "out of order");

    shutdown.cancel();
    link.task.await.unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downlinks_are_redelivered_after_a_reconnection_until_acknowledged() {
    let harness = start().await;
    let credentials = harness.device("dev-r").await;
    let shutdown = CancellationToken::new();
    let mut link =
        Upstream::start(harness.config("dev-r"), tokens(credentials, "dev-r", counter()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;
    let service = harness.service().await;
    let channel = confirming(&service).await;
    send_down(&channel, "dev-r", word(DownKind::DesiredPatch), Some("sensor"), b"{\"$version\":2}").await;

    let first = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    assert_eq!(first.kind, DownKind::DesiredPatch);
    assert_eq!(first.module.as_deref(), Some("sensor"));
    assert_eq!(first.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(first.body, Bytes::from_static(b"{\"$version\":2}"));
    assert!(!first.redelivered);

    // Not acknowledged, the connection drops: the link reconnects and the message comes again.
    let mut state = link.upstream.state();
    harness.ctl(&["close_all_user_connections", "dev-r", "test: drop the link"]);
    wait_state(&mut state, Duration::from_secs(10), |s| !s.is_connected()).await;
    wait_state(&mut state, Duration::from_secs(30), LinkState::is_connected).await;
    let again = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    assert!(again.redelivered);
    assert_eq!(again.body, first.body);
    // The first copy's connection is gone: acknowledging it fails; the second one succeeds.
    assert!(first.ack().await.is_err());
    again.ack().await.unwrap();

    // Acknowledged: another reconnection brings nothing back.
    harness.ctl(&["close_all_user_connections", "dev-r", "test: drop the link again"]);
    wait_state(&mut state, Duration::from_secs(10), |s| !s.is_connected()).await;
    wait_state(&mut state, Duration::from_secs(30), LinkState::is_connected).await;
    assert!(tokio::time::timeout(Duration::from_secs(2), link.downlinks.recv()).await.is_err());
    // And the link still receives what comes next.
    send_down(&channel, "dev-r", word(DownKind::Twin), None, b"{}").await;
    let twin = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    assert_eq!((twin.kind, twin.module.as_deref(), twin.redelivered), (DownKind::Twin, None, false));
    twin.ack().await.unwrap();

    shutdown.cancel();
    link.task.await.unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_unknown_downlinks_are_dead_lettered() {
    let harness = start().await;
    let credentials = harness.device("dev-x").await;
    let shutdown = CancellationToken::new();
    let mut link =
        Upstream::start(harness.config("dev-x"), tokens(credentials, "dev-x", counter()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;
    let service = harness.service().await;
    let channel = confirming(&service).await;
    send_down(&channel, "dev-x", "firmware-blob", None, b"unknown").await;
    send_down(&channel, "dev-x", word(DownKind::MethodRequest), Some("m"), b"not json").await;

    // The unknown kind never reaches the consumer; the method request does, and is refused.
    let call = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    assert_eq!(call.kind, DownKind::MethodRequest);
    call.reject("payload is not JSON").await.unwrap();

    let reader = service.create_channel().await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let dead = get(&reader, DEAD_LETTER_QUEUE).await;
        let Some(AMQPValue::FieldArray(deaths)) = header(&dead, "x-death") else {
            panic!("no x-death header: {:?}", dead.properties.headers())
        };
        let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else { panic!("empty x-death") };
        assert_eq!(death.inner().get("reason"), Some(&AMQPValue::LongString(LongString::from("rejected"))));
        assert_eq!(
            death.inner().get("queue"),
            Some(&AMQPValue::LongString(LongString::from(
                topology::device_queue("dev-x", topology::Component::Agent).as_str()
            )))
        );
        bodies.push(dead.data);
    }
    bodies.sort();
    assert_eq!(bodies, [b"not json".to_vec(), b"unknown".to_vec()]);
    // Nothing is left for the device.
    assert_eq!(depth(&reader, &topology::device_queue("dev-x", topology::Component::Agent)).await, 0);

    shutdown.cancel();
    link.task.await.unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_keeps_the_link_connecting_with_backoff() {
    let harness = start().await;
    harness.device("dev-w").await;
    let wrong = Credentials::generate().unwrap();
    let issued = counter();
    let shutdown = CancellationToken::new();
    let link =
        Upstream::start(harness.config("dev-w"), tokens(wrong, "dev-w", issued.clone()), shutdown.clone()).unwrap();
    let mut state = link.upstream.state();
    wait_state(&mut state, Duration::from_secs(10), |s| matches!(s, LinkState::Connecting { last_error: Some(_), .. }))
        .await;
    let before = issued.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = issued.load(Ordering::SeqCst) - before;
    // 0.5 s, 1 s, 2 s (±20 %): two or three more attempts in 3 s, never a hot loop.
    assert!((1..=4).contains(&attempts), "{attempts} attempts in 3 s");
    match &*state.borrow() {
        LinkState::Connecting { attempt, last_error: Some(error) } => {
            assert!(error.is_sign_in_refused(), "{error}");
            assert!(*attempt >= 3, "attempt {attempt}");
        }
        other => panic!("{other:?}"),
    }

    // Publishing waits for a connection; shutting down ends the wait.
    let upstream = link.upstream.clone();
    let waiting = tokio::spawn(async move { upstream.publish(telemetry(b"x")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    shutdown.cancel();
    assert!(matches!(waiting.await.unwrap(), Err(PublishError::Shutdown)));
    link.task.await.unwrap();

    // An expired token is refused the same way.
    let credentials = harness.device("dev-e").await;
    let expired = Token { secret: sign(&credentials, "dev-e", now_ms() / 1000 - 3600), expiry_unix_secs: 0 };
    let shutdown = CancellationToken::new();
    let link = Upstream::start(harness.config("dev-e"), Arc::new(StaticTokens(expired)), shutdown.clone()).unwrap();
    wait_state(
        &mut link.upstream.state(),
        Duration::from_secs(10),
        |s| matches!(s, LinkState::Connecting { last_error: Some(e), .. } if e.is_sign_in_refused()),
    )
    .await;
    shutdown.cancel();
    link.task.await.unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_comes_back_by_itself_after_a_broker_restart() {
    let mut harness = start().await;
    let credentials = harness.device("dev-b").await;
    // The tap is durable and its messages persistent: they outlive the restart.
    tap(&harness.service().await, &[UpKind::Telemetry]).await;
    let shutdown = CancellationToken::new();
    let mut link =
        Upstream::start(harness.config("dev-b"), tokens(credentials, "dev-b", counter()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;
    link.upstream.publish(telemetry(b"before")).await.unwrap();

    let mut state = link.upstream.state();
    tokio::task::block_in_place(|| harness.rabbit.stop());
    wait_state(&mut state, Duration::from_secs(10), |s| matches!(s, LinkState::Connecting { last_error: Some(_), .. }))
        .await;
    // A publish while the broker is down waits for the link to come back.
    let upstream = link.upstream.clone();
    let during = tokio::spawn(async move { publish_until_confirmed(&upstream, telemetry(b"during")).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| harness.rabbit.start_again());
    wait_state(&mut state, Duration::from_secs(90), LinkState::is_connected).await;
    tokio::time::timeout(Duration::from_secs(30), during).await.unwrap().unwrap();
    link.upstream.publish(telemetry(b"after")).await.unwrap();

    let service = harness.service().await;
    let channel = service.create_channel().await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(get(&channel, TAP).await.data);
    }
    assert_eq!(bodies, [b"before".to_vec(), b"during".to_vec(), b"after".to_vec()]);

    // Downlinks flow again too.
    let sender = confirming(&service).await;
    send_down(&sender, "dev-b", word(DownKind::Message), Some("m"), b"hello").await;
    let message = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    message.ack().await.unwrap();

    shutdown.cancel();
    link.task.await.unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_refreshed_without_dropping_the_link() {
    let harness = start().await;
    let credentials = harness.device("dev-t").await;
    let issued = counter();
    let service = harness.service().await;
    let channel = tap(&service, &[UpKind::Telemetry]).await;
    let mut config = harness.config("dev-t");
    config.token_ttl_secs = 4;
    let shutdown = CancellationToken::new();
    let mut link = Upstream::start(config, tokens(credentials, "dev-t", issued.clone()), shutdown.clone()).unwrap();
    connected(&link.upstream).await;

    // Any drop of the link after this point is a failure.
    let mut state = link.upstream.state();
    let dropped = tokio::spawn(async move {
        loop {
            if state.changed().await.is_err() {
                return false;
            }
            if matches!(*state.borrow(), LinkState::Connecting { .. }) {
                return true;
            }
        }
    });

    let sender = confirming(&service).await;
    let started = Instant::now();
    let (mut published, mut failures, mut received) = (0u32, 0, 0);
    while started.elapsed() < Duration::from_secs(14) {
        // Small batches and single messages, and a downlink now and then.
        let batch: Vec<UpMessage> = (0..20).map(|_| telemetry(b"b")).collect();
        for result in link.upstream.publish_batch(batch.clone()).await {
            match result {
                Ok(()) => published += 1,
                Err(error) => {
                    assert!(error.is_retryable(), "{error}");
                    failures += 1;
                    failures += publish_until_confirmed(&link.upstream, telemetry(b"b")).await;
                    published += 1;
                }
            }
        }
        failures += publish_until_confirmed(&link.upstream, telemetry(b"s")).await;
        published += 1;
        if published % 105 == 0 {
            send_down(&sender, "dev-t", word(DownKind::DesiredPatch), None, b"{}").await;
            let patch = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
            patch.ack().await.unwrap();
            received += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tokens = issued.load(Ordering::SeqCst);
    eprintln!("{tokens} tokens, {published} messages confirmed, {failures} retried, {received} downlinks");
    assert!(tokens >= 4, "only {tokens} tokens issued in 14 s of 4 s tokens");
    assert!(received >= 1);
    assert!(!dropped.is_finished(), "the link dropped during a token refresh");
    assert!(depth(&channel, TAP).await >= published);

    // Replaced connections are closed: one is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.connections_of("dev-t") != 1 {
        assert!(Instant::now() < deadline, "{} connections of dev-t", harness.connections_of("dev-t"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A downlink left unacknowledged across a refresh comes back once its connection closes.
    send_down(&sender, "dev-t", word(DownKind::DesiredPatch), None, b"held").await;
    let held = tokio::time::timeout(Duration::from_secs(10), link.downlinks.recv()).await.unwrap().unwrap();
    let again = tokio::time::timeout(Duration::from_secs(20), link.downlinks.recv()).await.unwrap().unwrap();
    assert!(again.redelivered && again.body == held.body);
    again.ack().await.unwrap();
    drop(held);

    shutdown.cancel();
    link.task.await.unwrap();
    dropped.abort();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signs_in_with_tokens_issued_by_identityd() {
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let harness = start().await;
    let cloud = harness.cloud.clone();
    tokio::task::spawn_blocking(move || {
        let credentials = Some(Credentials::symmetric(KEY, "").unwrap());
        cloud.create_device(outpost_cloud::service::NewDevice { id: "dev-i".into(), credentials, ..Default::default() })
    })
    .await
    .unwrap()
    .unwrap();
    // identityd of the device, with the same key, on a temporary socket.
    let dir = tempfile::tempdir().unwrap();
    let mut config = outpost_identity::config::Config::under(
        dir.path(),
        outpost_core::DeviceId::new("dev-i").unwrap(),
        support::HUB,
    );
    config.device.key = Some(KEY.to_owned());
    let service = outpost_identity::open(&config).unwrap();
    let listener = outpost_rpc::bind(&config.paths.socket, config.management.socket_mode).unwrap();
    let identityd_stop = CancellationToken::new();
    let identityd =
        tokio::spawn(outpost_identity::run_owned(config.clone(), service, listener, identityd_stop.clone()));

    let shutdown = CancellationToken::new();
    let tokens = Arc::new(IdentitydTokens::new(&config.paths.socket));
    let link = Upstream::start(harness.config("dev-i"), tokens, shutdown.clone()).unwrap();
    connected(&link.upstream).await;
    link.upstream.publish(telemetry(b"from identityd")).await.unwrap();
    shutdown.cancel();
    link.task.await.unwrap();

    // No identityd: the link says why it cannot connect.
    let shutdown = CancellationToken::new();
    let missing = Arc::new(IdentitydTokens::new(&dir.path().join("nothing.sock")));
    let link = Upstream::start(harness.config("dev-i"), missing, shutdown.clone()).unwrap();
    wait_state(&mut link.upstream.state(), Duration::from_secs(10), |s| {
        matches!(s, LinkState::Connecting { last_error: Some(e), .. }
            if matches!(&**e, ConnectError::Token { source: TokenError::Unreachable { .. }, .. }))
    })
    .await;
    shutdown.cancel();
    link.task.await.unwrap();
    identityd_stop.cancel();
    identityd.await.unwrap().unwrap();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sign_in_over_amqps_trusting_a_private_ca() {
    let harness = support::start_with(true).await;
    let credentials = harness.device("tls-dev").await;
    let url = format!("amqps://127.0.0.1:{}", harness.rabbit.tls_port().unwrap());

    // Without the CA, the broker's certificate is not trusted: the link keeps trying, saying why.
    let mut untrusted =
        outpost_upstream::LinkConfig::new(url.clone(), support::VHOST, "tls-dev", topology::Component::Agent);
    untrusted.ca_pem = None;
    let shutdown = CancellationToken::new();
    let link = Upstream::start(untrusted, support::tokens(credentials.clone(), "tls-dev", counter()), shutdown.clone())
        .unwrap();
    let mut state = link.upstream.state();
    support::wait_state(&mut state, Duration::from_secs(30), |s| {
        matches!(s, LinkState::Connecting { last_error: Some(_), .. })
    })
    .await;
    shutdown.cancel();

    let mut trusted = outpost_upstream::LinkConfig::new(url, support::VHOST, "tls-dev", topology::Component::Agent);
    trusted.ca_pem = harness.ca_pem.clone();
    let shutdown = CancellationToken::new();
    let link = Upstream::start(trusted, support::tokens(credentials, "tls-dev", counter()), shutdown.clone()).unwrap();
    support::connected(&link.upstream).await;
    link.upstream.publish(telemetry(b"over tls")).await.unwrap();
    shutdown.cancel();
    harness.stop().await;
}
