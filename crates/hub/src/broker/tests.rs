//! Broker scenarios, sans I/O: connections are numbers, packets go in, actions come out.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::*;
use crate::mqtt::{SubscriptionOptions, Will};

fn connect(id: &str, clean: bool, version: Version) -> Packet {
    Packet::Connect(Box::new(Connect {
        version,
        client_id: id.into(),
        clean_start: clean,
        keep_alive: 60,
        username: None,
        password: None,
        will: None,
        properties: if version == Version::V5 && !clean {
            Properties { session_expiry_interval: Some(3600), ..Default::default() }
        } else {
            Properties::default()
        },
    }))
}

fn publish(topic: &str, qos: QoS, id: Option<u16>, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        properties: Properties::default(),
    })
}

fn subscribe(filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(filter.into(), SubscriptionOptions::qos(qos))],
        properties: Properties::default(),
    })
}

fn run(broker: &mut Broker, conn: ConnId, packet: Packet) -> Vec<Action> {
    let mut out = Vec::new();
    broker.handle(conn, packet, &mut out);
    out
}

fn deliveries(actions: &[Action], to: ConnId) -> Vec<Publish> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(c, Packet::Publish(p)) if *c == to => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn qos1_is_delivered_acknowledged_and_queued_while_offline() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("sub", false, Version::V311));
    run(&mut b, 1, subscribe("t/#", QoS::AtLeastOnce));
    run(&mut b, 2, connect("pub", true, Version::V311));
    let out = run(&mut b, 2, publish("t/a", QoS::AtLeastOnce, Some(5), "one"));
    assert!(out.contains(&Action::Send(2, Packet::PubAck(Ack::ok(5)))));
    let got = deliveries(&out, 1);
    assert_eq!(got.len(), 1);
    let first_id = got[0].packet_id.unwrap();

    // The subscriber goes away without acknowledging; more messages arrive.
    let mut out = Vec::new();
    b.closed(1, &mut out);
    run(&mut b, 2, publish("t/b", QoS::AtLeastOnce, Some(6), "two"));
    run(&mut b, 2, publish("t/c", QoS::AtMostOnce, None, "lost: QoS 0 while offline"));

    // It comes back: session present, the unacknowledged one again with DUP, then the queue.
    let out = run(&mut b, 3, connect("sub", false, Version::V311));
    assert!(matches!(&out[0], Action::Send(3, Packet::ConnAck(ConnAck { session_present: true, code: 0, .. }))));
    let got = deliveries(&out, 3);
    assert_eq!(
        got.iter().map(|p| (&p.payload[..], p.dup)).collect::<Vec<_>>(),
        [(&b"one"[..], true), (&b"two"[..], false)]
    );
    assert_eq!(got[0].packet_id, Some(first_id));
}

#[test]
fn clean_sessions_forget_and_subscriptions_go_with_them() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("c", true, Version::V311));
    run(&mut b, 1, subscribe("t", QoS::AtLeastOnce));
    let mut out = Vec::new();
    b.closed(1, &mut out);
    run(&mut b, 2, connect("p", true, Version::V311));
    let out = run(&mut b, 2, publish("t", QoS::AtLeastOnce, Some(1), "x"));
    assert!(deliveries(&out, 1).is_empty());
    let out = run(&mut b, 3, connect("c", true, Version::V311));
    assert!(matches!(&out[0], Action::Send(3, Packet::ConnAck(ConnAck { session_present: false, .. }))));
}

#[test]
fn retained_messages_reach_later_subscribers_and_empty_payloads_clear_them() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("p", true, Version::V311));
    let mut retained = publish("status/dev1", QoS::AtLeastOnce, Some(1), "online");
    if let Packet::Publish(p) = &mut retained {
        p.retain = true;
    }
    run(&mut b, 1, retained);
    run(&mut b, 2, connect("s", true, Version::V311));
    let out = run(&mut b, 2, subscribe("status/+", QoS::AtMostOnce));
    let got = deliveries(&out, 2);
    assert_eq!((got.len(), got[0].retain, got[0].qos), (1, true, QoS::AtMostOnce));
    let mut clear = publish("status/dev1", QoS::AtMostOnce, None, "");
    if let Packet::Publish(p) = &mut clear {
        p.retain = true;
    }
    run(&mut b, 1, clear);
    assert_eq!(b.retained_count(), 0);
}

#[test]
fn wills_are_published_on_abnormal_close_only() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 9, connect("watcher", true, Version::V311));
    run(&mut b, 9, subscribe("wills/#", QoS::AtMostOnce));
    for (conn, normal) in [(1, true), (2, false)] {
        let mut c = connect(&format!("dev{conn}"), true, Version::V311);
        if let Packet::Connect(c) = &mut c {
            c.will = Some(Will {
                topic: format!("wills/dev{conn}"),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::default(),
            });
        }
        run(&mut b, conn, c);
        let mut out = Vec::new();
        if normal {
            out = run(&mut b, conn, Packet::Disconnect(Disconnect::default()));
        } else {
            b.closed(conn, &mut out);
        }
        let got = deliveries(&out, 9);
        assert_eq!(got.len(), usize::from(!normal), "normal disconnect: {normal}");
    }
}

#[test]
fn delayed_wills_wait_and_are_dropped_when_the_client_returns() {
    let mut b = Broker::new(Limits::default());
    b.set_now(100);
    run(&mut b, 9, connect("watcher", true, Version::V5));
    run(&mut b, 9, subscribe("wills/#", QoS::AtMostOnce));
    let with_will = |persistent: bool| {
        let mut c = connect("dev", !persistent, Version::V5);
        if let Packet::Connect(c) = &mut c {
            c.will = Some(Will {
                topic: "wills/dev".into(),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties { will_delay_interval: Some(10), ..Default::default() },
            });
        }
        c
    };
    let fired = |b: &mut Broker, now: u64| {
        b.set_now(now);
        let mut out = Vec::new();
        b.fire_wills(&mut out);
        deliveries(&out, 9)
    };
    // Gone at 100, back at 106: nothing is published.
    run(&mut b, 1, with_will(true));
    let mut out = Vec::new();
    b.closed(1, &mut out);
    assert!(deliveries(&out, 9).is_empty(), "delayed");
    assert!(fired(&mut b, 105).is_empty());
    b.set_now(106);
    run(&mut b, 2, with_will(true));
    assert!(fired(&mut b, 111).is_empty(), "cancelled by the return");
    // Gone at 111 for good: published at 121, without the will-only property.
    b.closed(2, &mut out);
    assert!(fired(&mut b, 120).is_empty());
    let will = fired(&mut b, 121);
    assert_eq!(will.len(), 1);
    assert_eq!(will[0].properties.will_delay_interval, None);
    // A session that ends with its connection sends the will at once.
    run(&mut b, 3, with_will(false));
    let mut out = Vec::new();
    b.closed(3, &mut out);
    assert_eq!(deliveries(&out, 9).len(), 1, "the session ended");
}

#[test]
fn qos2_is_routed_once_however_often_it_is_resent() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("s", true, Version::V311));
    run(&mut b, 1, subscribe("t", QoS::ExactlyOnce));
    run(&mut b, 2, connect("p", true, Version::V311));
    let first = run(&mut b, 2, publish("t", QoS::ExactlyOnce, Some(7), "x"));
    let again = run(&mut b, 2, publish("t", QoS::ExactlyOnce, Some(7), "x"));
    assert_eq!(deliveries(&first, 1).len(), 1);
    assert_eq!(deliveries(&again, 1).len(), 0);
    assert!(again.contains(&Action::Send(2, Packet::PubRec(Ack::ok(7)))));
    let out = run(&mut b, 2, Packet::PubRel(Ack::ok(7)));
    assert!(out.contains(&Action::Send(2, Packet::PubComp(Ack::ok(7)))));
    // Outgoing QoS 2: PUBREC → PUBREL → PUBCOMP.
    let id = deliveries(&first, 1)[0].packet_id.unwrap();
    let out = run(&mut b, 1, Packet::PubRec(Ack::ok(id)));
    assert!(out.contains(&Action::Send(1, Packet::PubRel(Ack::ok(id)))));
    run(&mut b, 1, Packet::PubComp(Ack::ok(id)));
}

#[test]
fn a_second_connection_takes_the_session_over() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("same", false, Version::V5));
    let out = run(&mut b, 2, connect("same", false, Version::V5));
    assert!(
        out.iter().any(|a| matches!(a, Action::Send(1, Packet::Disconnect(d)) if d.code == reason::SESSION_TAKEN_OVER))
    );
    assert!(out.contains(&Action::Close(1)));
    assert!(matches!(
        out.iter().find(|a| matches!(a, Action::Send(2, _))),
        Some(Action::Send(2, Packet::ConnAck(ConnAck { session_present: true, .. })))
    ));
    assert_eq!(b.connected(), 1);
}

#[test]
fn bad_requests_get_the_right_answers() {
    let mut b = Broker::new(Limits::default());
    // 3.1.1: an empty client id needs a clean session.
    let out = run(&mut b, 1, connect("", false, Version::V311));
    assert_eq!(
        out,
        vec![
            Action::Send(
                1,
                Packet::ConnAck(ConnAck { session_present: false, code: 2, properties: Properties::default() })
            ),
            Action::Close(1)
        ]
    );
    // v5: an id is assigned.
    let out = run(&mut b, 2, connect("", true, Version::V5));
    let Action::Send(2, Packet::ConnAck(ack)) = &out[0] else { panic!("{out:?}") };
    assert!(ack.properties.assigned_client_identifier.as_deref().unwrap().starts_with("outpost-auto-"));
    // Publishing to a $ topic closes with 0x90 in v5.
    let out = run(&mut b, 2, publish("$SYS/x", QoS::AtMostOnce, None, ""));
    assert!(matches!(&out[0], Action::Send(2, Packet::Disconnect(d)) if d.code == reason::TOPIC_NAME_INVALID));
    // Invalid filters fail alone.
    run(&mut b, 3, connect("s", true, Version::V311));
    let out = run(
        &mut b,
        3,
        Packet::Subscribe(Subscribe {
            packet_id: 4,
            filters: vec![
                ("a/#/b".into(), SubscriptionOptions::qos(QoS::AtLeastOnce)),
                ("ok/+".into(), SubscriptionOptions::qos(QoS::AtLeastOnce)),
            ],
            properties: Properties::default(),
        }),
    );
    assert_eq!(
        out,
        vec![Action::Send(
            3,
            Packet::SubAck(SubAck { packet_id: 4, codes: vec![0x80, 1], properties: Properties::default() })
        )]
    );
}

#[test]
fn v5_topic_aliases_stand_for_their_topic() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("s", true, Version::V5));
    run(&mut b, 1, subscribe("long/topic/name", QoS::AtMostOnce));
    run(&mut b, 2, connect("p", true, Version::V5));
    let mut first = publish("long/topic/name", QoS::AtMostOnce, None, "1");
    let mut second = publish("", QoS::AtMostOnce, None, "2");
    for p in [&mut first, &mut second] {
        if let Packet::Publish(p) = p {
            p.properties.topic_alias = Some(3);
        }
    }
    let out1 = run(&mut b, 2, first);
    let out2 = run(&mut b, 2, second);
    assert_eq!(deliveries(&out1, 1)[0].topic, "long/topic/name");
    assert_eq!(deliveries(&out2, 1)[0].topic, "long/topic/name");
    let out = run(&mut b, 2, {
        let mut p = publish("", QoS::AtMostOnce, None, "3");
        if let Packet::Publish(p) = &mut p {
            p.properties.topic_alias = Some(9);
        }
        p
    });
    assert!(matches!(&out[0], Action::Send(2, Packet::Disconnect(d)) if d.code == reason::PROTOCOL_ERROR));
}

#[test]
fn direct_methods_reach_listening_clients_and_their_answers_come_back() {
    let mut b = Broker::new(Limits::default());
    run(&mut b, 1, connect("dev1/target", false, Version::V311));
    let payload = Bytes::from_static(b"{\"x\":1}");
    let mut out = Vec::new();
    let refused = b.invoke(7, "dev1/target", "reboot", payload.clone(), &mut out);
    assert!(matches!(refused, Err(methods::CallRefused::NotListening(_))), "{refused:?}");
    let refused = b.invoke(7, "dev1/absent", "reboot", payload.clone(), &mut out);
    assert!(matches!(refused, Err(methods::CallRefused::NotConnected(_))), "{refused:?}");

    run(&mut b, 1, subscribe("$iothub/methods/POST/#", QoS::AtLeastOnce));
    b.invoke(0x2a, "dev1/target", "reboot", payload.clone(), &mut out).unwrap();
    let request = deliveries(&out, 1);
    assert_eq!(request.len(), 1);
    assert_eq!(request[0].topic, "$iothub/methods/POST/reboot/?$rid=2a");
    assert_eq!(request[0].qos, QoS::AtMostOnce, "never stored");
    assert_eq!(request[0].payload, payload);

    // Only the target's answer to that rid counts.
    run(&mut b, 2, connect("other", true, Version::V311));
    let out = run(&mut b, 2, publish("$iothub/methods/res/200/?$rid=2a", QoS::AtMostOnce, None, "{}"));
    assert!(!out.iter().any(|a| matches!(a, Action::MethodAnswer { .. })));
    let out = run(&mut b, 1, publish("$iothub/methods/res/201/?$rid=2a", QoS::AtLeastOnce, Some(3), "{\"ok\":true}"));
    assert!(out.contains(&Action::MethodAnswer {
        call: 0x2a,
        status: 201,
        payload: Bytes::from_static(b"{\"ok\":true}")
    }));
    assert!(out.contains(&Action::Send(1, Packet::PubAck(Ack::ok(3)))));
    assert_eq!(b.pending_calls(), 0);

    // A forgotten (timed-out) call's late answer is ignored.
    b.invoke(8, "dev1/target", "slow", Bytes::new(), &mut Vec::new()).unwrap();
    b.forget_call(8);
    let out = run(&mut b, 1, publish("$iothub/methods/res/200/?$rid=8", QoS::AtMostOnce, None, ""));
    assert!(!out.iter().any(|a| matches!(a, Action::MethodAnswer { .. })));
}

#[test]
fn a_v5_clients_receive_maximum_bounds_its_deliveries_in_flight() {
    let mut b = Broker::new(Limits::default());
    let mut c = connect("slow", true, Version::V5);
    if let Packet::Connect(c) = &mut c {
        c.properties.receive_maximum = Some(2);
    }
    run(&mut b, 1, c);
    run(&mut b, 1, subscribe("t", QoS::AtLeastOnce));
    run(&mut b, 2, connect("pub", true, Version::V311));
    let mut sent = Vec::new();
    for id in 1..=5 {
        sent.extend(deliveries(&run(&mut b, 2, publish("t", QoS::AtLeastOnce, Some(id), "m")), 1));
    }
    assert_eq!(sent.len(), 2, "two in flight at most");
    let more = run(&mut b, 1, Packet::PubAck(Ack::ok(sent[0].packet_id.unwrap())));
    assert_eq!(deliveries(&more, 1).len(), 1, "one acknowledged, one more sent");
}

#[test]
fn reported_properties_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let twin_client = |b: &mut Broker, conn: ConnId| {
        let mut out = Vec::new();
        let connect = match connect("dev1/filter", true, Version::V311) {
            Packet::Connect(c) => *c,
            _ => unreachable!(),
        };
        b.connect(conn, connect, Access::Module { device: "dev1".into(), module: "filter".into() }, &mut out);
        run(b, conn, subscribe("$iothub/twin/res/#", QoS::AtMostOnce));
    };
    {
        let mut b = Broker::new(Limits::default());
        b.attach_store(Box::new(crate::store::sled::SledStore::open(dir.path()).unwrap())).unwrap();
        b.set_device(Some("dev1".into()));
        twin_client(&mut b, 1);
        let patch = "$iothub/twin/PATCH/properties/reported/?$rid=1";
        let out = run(&mut b, 1, publish(patch, QoS::AtMostOnce, None, r#"{"seen": 7}"#));
        assert!(deliveries(&out, 1)[0].topic.starts_with("$iothub/twin/res/204/"), "{out:?}");
        b.commit().unwrap();
    }
    let mut b = Broker::new(Limits::default());
    b.attach_store(Box::new(crate::store::sled::SledStore::open(dir.path()).unwrap())).unwrap();
    b.set_device(Some("dev1".into()));
    twin_client(&mut b, 2);
    let out = run(&mut b, 2, publish("$iothub/twin/GET/?$rid=2", QoS::AtMostOnce, None, ""));
    let twin: serde_json::Value = serde_json::from_slice(&deliveries(&out, 2)[0].payload).unwrap();
    assert_eq!(twin["reported"]["seen"], 7, "{twin}");
    assert_eq!(twin["reported"]["$version"], 2, "{twin}");
}

#[test]
fn qos2_receptions_beyond_the_receive_maximum_close_the_connection() {
    let mut b = Broker::new(Limits { max_inflight: 2, ..Limits::default() });
    run(&mut b, 1, connect("eager", true, Version::V5));
    for id in 1..=2 {
        let out = run(&mut b, 1, publish("t", QoS::ExactlyOnce, Some(id), "m"));
        assert!(out.contains(&Action::Send(1, Packet::PubRec(Ack::ok(id)))));
    }
    // A resend of one awaiting release is fine; a third is one too many.
    assert!(!run(&mut b, 1, publish("t", QoS::ExactlyOnce, Some(2), "m")).contains(&Action::Close(1)));
    let out = run(&mut b, 1, publish("t", QoS::ExactlyOnce, Some(3), "m"));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Send(1, Packet::Disconnect(d)) if d.code == reason::RECEIVE_MAXIMUM_EXCEEDED))
    );
    assert!(out.contains(&Action::Close(1)));
}
