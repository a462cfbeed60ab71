//! Queues, sans I/O: route priorities and time-to-live on module inputs and on the upstream
//! queue, MQTT 5 message expiry, and the store limit refusing publishes instead of dropping
//! what was accepted.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use outpost_core::routes::Route;

use super::*;
use crate::mqtt::SubscriptionOptions;
use crate::routes::HubRoute;
use crate::store::DEFAULT_PRIORITY;

fn route(text: &str, priority: u8, ttl_secs: Option<u32>) -> HubRoute {
    HubRoute { route: Route::parse("r", text).unwrap(), priority, ttl_secs }
}

fn module(b: &mut Broker, conn: ConnId, name: &str, version: Version, out: &mut Vec<Action>) {
    let connect = Connect {
        version,
        client_id: format!("dev1/{name}"),
        clean_start: false,
        keep_alive: 60,
        username: None,
        password: None,
        will: None,
        properties: Properties { session_expiry_interval: Some(3600), ..Default::default() },
    };
    let access = Access::Module { device: "dev1".into(), module: name.into() };
    b.connect(conn, connect, access, out);
}

fn v5(client_id: &str, clean: bool, session_expiry: Option<u32>) -> Packet {
    Packet::Connect(Box::new(Connect {
        version: Version::V5,
        client_id: client_id.into(),
        clean_start: clean,
        keep_alive: 60,
        username: None,
        password: None,
        will: None,
        properties: Properties { session_expiry_interval: session_expiry, ..Default::default() },
    }))
}

fn output(name: &str, qos: QoS, id: Option<u16>, body: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: format!("devices/dev1/modules/sensor/messages/events/%24.on={name}"),
        packet_id: id,
        payload: Bytes::copy_from_slice(body.as_bytes()),
        properties: Properties::default(),
    })
}

fn bodies(actions: &[Action], to: ConnId) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(c, Packet::Publish(p)) if *c == to => Some(String::from_utf8_lossy(&p.payload).into_owned()),
            _ => None,
        })
        .collect()
}

fn handle(b: &mut Broker, conn: ConnId, packet: Packet) -> Vec<Action> {
    let mut out = Vec::new();
    b.handle(conn, packet, &mut out);
    out
}

const INPUT: &str = "INTO BrokeredEndpoint(\"/modules/filter/inputs/in\")";

fn sensor_broker() -> Broker {
    let mut b = Broker::new(Limits::default());
    b.set_device(Some("dev1".into()));
    b.set_routes(vec![
        route(&format!("FROM /messages/modules/sensor/outputs/low {INPUT}"), 5, None),
        route(&format!("FROM /messages/modules/sensor/outputs/high {INPUT}"), 0, None),
        route(&format!("FROM /messages/modules/sensor/outputs/short {INPUT}"), 1, Some(10)),
        route(&format!("FROM /messages/modules/sensor/outputs/* WHERE $body.x = 1 {INPUT}"), 9, None),
    ]);
    b.set_now(1_000);
    module(&mut b, 1, "sensor", Version::V311, &mut Vec::new());
    for (n, name) in ["low", "high", "short", "low"].iter().enumerate() {
        handle(&mut b, 1, output(name, QoS::AtLeastOnce, Some(n as u16 + 1), &format!("{name}{n}")));
    }
    b
}

#[test]
fn inputs_drain_by_priority_then_arrival_and_expire_by_route_ttl() {
    let mut b = sensor_broker();
    b.set_now(1_005);
    let mut out = Vec::new();
    module(&mut b, 2, "filter", Version::V311, &mut out);
    assert_eq!(bodies(&out, 2), ["high1", "short2", "low0", "low3"]);

    let mut b = sensor_broker();
    b.set_now(1_010);
    let mut out = Vec::new();
    module(&mut b, 2, "filter", Version::V311, &mut out);
    assert_eq!(bodies(&out, 2), ["high1", "low0", "low3"], "the 10 s route TTL passed");
    assert_eq!(b.counters().expired, 1);

    // The deployment's TTL applies to routes without their own; the sweep drops what no one
    // drains.
    let mut b = sensor_broker();
    b.set_ttl(Some(60));
    handle(&mut b, 1, output("low", QoS::AtLeastOnce, Some(9), "late"));
    b.set_now(1_061);
    b.expire();
    let mut out = Vec::new();
    module(&mut b, 2, "filter", Version::V311, &mut out);
    assert_eq!(bodies(&out, 2), ["high1", "low0", "low3"], "kept forever before the TTL was set");
}

#[test]
fn a_message_two_routes_send_to_one_endpoint_goes_once_at_the_higher_priority() {
    let mut b = Broker::new(Limits::default());
    b.set_device(Some("dev1".into()));
    b.set_routes(vec![
        route("FROM /messages/* INTO $upstream", 3, None),
        route("FROM /messages/modules/sensor/outputs/alert INTO $upstream", 0, Some(5)),
    ]);
    b.set_now(100);
    module(&mut b, 1, "sensor", Version::V311, &mut Vec::new());
    for (n, name) in ["a", "b", "alert", "c"].iter().enumerate() {
        handle(&mut b, 1, output(name, QoS::AtLeastOnce, Some(n as u16 + 1), name));
    }
    assert_eq!(b.upstream_depths(), BTreeMap::from([(0, 1), (3, 3)]));

    // A batch never mixes priorities; a failed batch comes back first.
    let batch = b.upstream_take(10);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].1.publish.payload, Bytes::from_static(b"alert"));
    assert!(batch[0].1.publish.topic.contains("%24.cmid=sensor"), "{}", batch[0].1.publish.topic);
    assert_eq!(batch[0].1.expires_at, Some(105));
    b.upstream_failed(&[batch[0].0]);
    let again = b.upstream_take(10);
    assert_eq!(again, batch);
    b.upstream_done(&[again[0].0]);
    let rest: Vec<_> = b.upstream_take(10).into_iter().map(|(_, m)| m.publish.payload).collect();
    assert_eq!(rest, [Bytes::from_static(b"a"), Bytes::from_static(b"b"), Bytes::from_static(b"c")]);
    assert_eq!(b.counters().routed_upstream, 4);
    assert_eq!(b.counters().upstream_sent, 1);

    // Expired messages are never handed over.
    handle(&mut b, 1, output("alert", QoS::AtLeastOnce, Some(9), "stale"));
    b.set_now(106);
    assert!(b.upstream_take(10).is_empty());
    assert_eq!(b.counters().expired, 1);
}

#[test]
fn a_full_store_refuses_publishes_and_keeps_what_it_accepted() {
    let limits = Limits { max_store_bytes: 300, ..Limits::default() };
    let mut b = Broker::new(limits);
    b.set_device(Some("dev1".into()));
    b.set_routes(vec![route("FROM /messages/* INTO $upstream", 0, None)]);
    let mut out = Vec::new();
    module(&mut b, 1, "sensor", Version::V5, &mut out);
    module(&mut b, 2, "old", Version::V311, &mut out);
    let body = "x".repeat(60);
    let mut accepted = 0;
    for id in 1..10 {
        let out = handle(&mut b, 1, output("o", QoS::AtLeastOnce, Some(id), &body));
        match out.as_slice() {
            [Action::Send(1, Packet::PubAck(ack))] if ack.code == reason::SUCCESS => accepted += 1,
            [Action::Send(1, Packet::PubAck(ack))] => {
                assert_eq!(ack.code, reason::QUOTA_EXCEEDED);
                assert!(ack.properties.reason_string.as_deref().unwrap().contains("store is full"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!((2..9).contains(&accepted), "{accepted}");
    assert_eq!(b.upstream_depths()[&0], accepted, "nothing accepted was dropped");
    assert_eq!(b.counters().refused_store_full, 9 - accepted as u64);

    // 3.1.1 cannot refuse a publish: the connection closes and the client keeps it.
    let old = Packet::Publish(Publish {
        topic: "devices/dev1/modules/old/messages/events/".into(),
        ..match output("o", QoS::AtLeastOnce, Some(1), "x") {
            Packet::Publish(p) => p,
            _ => unreachable!(),
        }
    });
    assert!(handle(&mut b, 2, old).contains(&Action::Close(2)));
    // QoS 0 telemetry is dropped and counted.
    handle(&mut b, 1, output("o", QoS::AtMostOnce, None, &body));
    assert_eq!(b.counters().dropped_store_full, 1);

    // Once the uplink has taken some, there is room again.
    let sent: Vec<u64> = b.upstream_take(100).into_iter().map(|(seq, _)| seq).collect();
    b.upstream_done(&sent);
    let out = handle(&mut b, 1, output("o", QoS::AtLeastOnce, Some(20), &body));
    assert!(out.contains(&Action::Send(1, Packet::PubAck(Ack::ok(20)))), "{out:?}");
    assert_eq!(
        b.store_usage().0,
        (body.len() + "devices/dev1/modules/sensor/messages/events/%24.on=o&%24.cdid=dev1&%24.cmid=sensor".len())
            as u64
    );
}

#[test]
fn mqtt5_message_expiry_counts_down_while_queued() {
    let mut b = Broker::new(Limits::default());
    b.set_now(500);
    let mut out = Vec::new();
    b.handle(1, v5("sub", true, Some(600)), &mut out);
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![("t/#".into(), SubscriptionOptions::qos(QoS::AtLeastOnce))],
        properties: Properties::default(),
    };
    b.handle(1, Packet::Subscribe(subscribe), &mut out);
    b.closed(1, &mut out);
    b.handle(2, v5("pub", true, None), &mut out);
    for (id, expiry) in [(1, Some(10)), (2, Some(3)), (3, None)] {
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: format!("t/{id}"),
            packet_id: Some(id),
            payload: Bytes::new(),
            properties: Properties { message_expiry_interval: expiry, ..Default::default() },
        };
        b.handle(2, Packet::Publish(publish), &mut out);
    }
    b.set_now(504);
    let mut out = Vec::new();
    b.handle(3, v5("sub", false, Some(600)), &mut out);
    let got: Vec<(String, Option<u32>)> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send(3, Packet::Publish(p)) => Some((p.topic.clone(), p.properties.message_expiry_interval)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [("t/1".to_owned(), Some(6)), ("t/3".to_owned(), None)]);
    assert_eq!(b.counters().expired, 1);
    assert_eq!(DEFAULT_PRIORITY, 10);
}

#[test]
fn stored_messages_wait_by_header_and_are_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = || {
        let mut b = Broker::new(Limits::default());
        b.attach_store(Box::new(crate::store::sled::SledStore::open(dir.path()).unwrap())).unwrap();
        b.set_device(Some("dev1".into()));
        b.set_routes(vec![
            route(&format!("FROM /messages/modules/sensor/outputs/low {INPUT}"), 5, None),
            route(&format!("FROM /messages/modules/sensor/outputs/high {INPUT}"), 0, None),
            route("FROM /messages/* INTO $upstream", 1, None),
        ]);
        b.set_now(1_000);
        b
    };
    {
        let mut b = broker();
        module(&mut b, 1, "sensor", Version::V311, &mut Vec::new());
        for (n, name) in ["low", "high", "low"].iter().enumerate() {
            handle(&mut b, 1, output(name, QoS::AtLeastOnce, Some(n as u16 + 1), &format!("{name}{n}")));
        }
        b.commit().unwrap();
        let session = &b.sessions["dev1/filter"];
        assert!(session.queue.values().all(Waiting::is_stored), "only headers in memory");
        assert!(b.upstream_waiting());
    }
    let mut b = broker();
    assert!(b.store_usage().0 > 0);
    let mut out = Vec::new();
    module(&mut b, 2, "filter", Version::V311, &mut out);
    assert_eq!(bodies(&out, 2), ["high1", "low0", "low2"]);
    let upstream: Vec<Bytes> = b.upstream_take(10).into_iter().map(|(_, m)| m.publish.payload).collect();
    assert_eq!(upstream.len(), 3, "read back from the store");
}
