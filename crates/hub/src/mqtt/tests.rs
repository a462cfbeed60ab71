//! Codec tests: round trips of every packet in both versions, the strictness a broker needs
//! (each refusal with its kind), partial input, size limits, and rumqttc as an independent
//! oracle in both directions; property tests that random and mutated input never panics.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

const MAX: usize = 1 << 20;

pub(super) fn bytes_of(packet: &Packet, version: Version) -> BytesMut {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).unwrap();
    out
}

fn round_trip(packet: Packet, version: Version) {
    let bytes = bytes_of(&packet, version);
    let state = if matches!(packet, Packet::Connect(_)) { None } else { Some(version) };
    let (decoded, used) = decode(&bytes, state, MAX).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, packet, "{version:?}");
    for cut in 0..bytes.len() {
        assert_eq!(decode(&bytes[..cut], state, MAX).unwrap(), None, "a prefix of {cut} bytes is incomplete");
    }
}

fn user_props() -> Properties {
    Properties { user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())], ..Default::default() }
}

fn connect(version: Version) -> Packet {
    Packet::Connect(Box::new(Connect {
        version,
        client_id: "dev1/sensor".into(),
        clean_start: false,
        keep_alive: 60,
        username: Some("hub.example/dev1/sensor/?api-version=2018-06-30".into()),
        password: Some(Bytes::from_static(b"SharedAccessSignature sr=x&sig=y&se=1")),
        will: Some(Will {
            topic: "wills/dev1".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: if version == Version::V5 {
                Properties { will_delay_interval: Some(5), ..Default::default() }
            } else {
                Properties::default()
            },
        }),
        properties: if version == Version::V5 {
            Properties { session_expiry_interval: Some(3600), receive_maximum: Some(100), ..user_props() }
        } else {
            Properties::default()
        },
    }))
}

pub(super) fn every_packet(version: Version) -> Vec<Packet> {
    let v5 = version == Version::V5;
    let props = |p: Properties| if v5 { p } else { Properties::default() };
    let code = |c: u8| if v5 { c } else { 0 };
    vec![
        connect(version),
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: props(Properties { maximum_qos: Some(1), topic_alias_maximum: Some(10), ..Default::default() }),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: None,
            payload: Bytes::from_static(b"hello"),
            properties: props(Properties {
                message_expiry_interval: Some(30),
                content_type: Some("application/json".into()),
                ..user_props()
            }),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "devices/d/messages/events/".into(),
            packet_id: Some(7),
            payload: Bytes::new(),
            properties: props(Properties { subscription_identifiers: vec![1, 300], ..Default::default() }),
        }),
        Packet::PubAck(Ack::ok(1)),
        Packet::PubAck(Ack {
            packet_id: 2,
            code: code(0x10),
            properties: props(Properties { reason_string: Some("nobody".into()), ..Default::default() }),
        }),
        Packet::PubRec(Ack::ok(3)),
        Packet::PubRel(Ack::ok(4)),
        Packet::PubComp(Ack::ok(5)),
        Packet::Subscribe(Subscribe {
            packet_id: 6,
            filters: vec![
                ("a/+".into(), SubscriptionOptions::qos(QoS::AtLeastOnce)),
                (
                    "$share/g/b/#".into(),
                    SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: v5,
                        retain_as_published: v5,
                        retain_handling: if v5 { 2 } else { 0 },
                    },
                ),
            ],
            properties: props(Properties { subscription_identifiers: vec![9], ..Default::default() }),
        }),
        Packet::SubAck(SubAck { packet_id: 6, codes: vec![1, 0x80], properties: Properties::default() }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 8,
            filters: vec!["a/+".into()],
            properties: Properties::default(),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 8,
            codes: if v5 { vec![0, 0x11] } else { vec![] },
            properties: Properties::default(),
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect { code: code(0x04), properties: Properties::default() }),
    ]
}

#[test]
fn every_packet_round_trips_in_both_versions() {
    for version in [Version::V311, Version::V5] {
        for packet in every_packet(version) {
            round_trip(packet, version);
        }
    }
    round_trip(Packet::Auth(Auth { code: 0x18, properties: Properties::default() }), Version::V5);
}

fn refused(bytes: &[u8], version: Option<Version>) -> DecodeError {
    decode(bytes, version, MAX).unwrap_err()
}

#[test]
fn violations_are_refused_with_their_kind() {
    let v4 = Some(Version::V311);
    let v5 = Some(Version::V5);
    let cases: Vec<(&str, Vec<u8>, Option<Version>, ErrorKind)> = vec![
        ("SUBSCRIBE with flags 0000", vec![0x80, 6, 0, 1, 0, 1, b'a', 0], v4, ErrorKind::Malformed),
        ("PUBACK with flags", vec![0x41, 2, 0, 1], v4, ErrorKind::Malformed),
        ("QoS 3 publish", vec![0x36, 5, 0, 1, b'a', 0, 1], v4, ErrorKind::Malformed),
        ("DUP on QoS 0", vec![0x38, 3, 0, 1, b'a'], v4, ErrorKind::Malformed),
        ("wildcard topic name", vec![0x30, 5, 0, 3, b'a', b'/', b'+'], v4, ErrorKind::TopicName),
        ("empty topic without alias", vec![0x30, 2, 0, 0], v4, ErrorKind::TopicName),
        ("packet id 0", vec![0x32, 5, 0, 1, b'a', 0, 0], v4, ErrorKind::Protocol),
        ("overlong remaining length", vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01], v4, ErrorKind::Malformed),
        ("trailing bytes in PUBACK (3.1.1)", vec![0x40, 3, 0, 1, 0], v4, ErrorKind::Malformed),
        ("SUBSCRIBE without filters", vec![0x82, 2, 0, 1], v4, ErrorKind::Protocol),
        ("reserved subscribe option bits (3.1.1)", vec![0x82, 6, 0, 1, 0, 1, b'a', 0x04], v4, ErrorKind::Malformed),
        ("retain handling 3", vec![0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30], v5, ErrorKind::Protocol),
        ("reserved packet type", vec![0x00, 0], v4, ErrorKind::Malformed),
        ("AUTH in 3.1.1", vec![0xf0, 0], v4, ErrorKind::Protocol),
        ("a second CONNECT", bytes_of(&connect(Version::V311), Version::V311).to_vec(), v4, ErrorKind::Protocol),
        ("PUBLISH before CONNECT", vec![0x30, 3, 0, 1, b'a'], None, ErrorKind::Protocol),
        ("truncated property", vec![0x30, 10, 0, 1, b'a', 6, 0x02, 0, 0, 0, 1, 0x02], v5, ErrorKind::Malformed),
        ("property not allowed in PUBLISH", vec![0x30, 7, 0, 1, b'a', 2, 0x21, 0, 1], v5, ErrorKind::Protocol),
        ("unknown property", vec![0x30, 6, 0, 1, b'a', 1, 0x7f], v5, ErrorKind::Malformed),
        ("invalid UTF-8 topic", vec![0x30, 4, 0, 2, 0xc3, 0x28], v4, ErrorKind::Malformed),
        ("NUL in topic", vec![0x30, 4, 0, 2, b'a', 0], v4, ErrorKind::Malformed),
    ];
    for (what, mut bytes, version, kind) in cases {
        // Fix up the remaining length so that each case is complete and only its fault shows.
        if bytes.len() >= 2 && bytes[1] < 0x80 {
            bytes[1] = (bytes.len() - 2) as u8;
        }
        let error = decode(&bytes, version, MAX).map(|p| p.map(|(p, _)| p));
        let Err(error) = error else { panic!("{what}: accepted as {error:?}") };
        assert_eq!(error.kind, kind, "{what}: {error}");
    }
    // Duplicate property proper (two message expiry intervals).
    let mut dup = vec![0x30, 0, 0, 1, b'a', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
    dup[1] = (dup.len() - 2) as u8;
    let error = refused(&dup, v5);
    assert_eq!(error.kind, ErrorKind::Protocol, "{error}");
    assert!(error.to_string().contains("appears twice"), "{error}");
}

#[test]
fn connect_flags_and_versions_are_checked() {
    let mut mqtt31 = vec![0x10, 14, 0, 6];
    mqtt31.extend_from_slice(b"MQIsdp");
    mqtt31.extend_from_slice(&[3, 0x02, 0, 60, 0, 0]);
    let error = refused(&mqtt31, None);
    assert_eq!(error.kind, ErrorKind::UnsupportedVersion);
    assert_eq!(error.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
    let base = |flags: u8| {
        let mut b = vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60, 0, 0];
        b[1] = (b.len() - 2) as u8;
        b
    };
    assert!(decode(&base(0x02), None, MAX).unwrap().is_some());
    assert_eq!(refused(&base(0x03), None).kind, ErrorKind::Malformed, "reserved bit");
    assert_eq!(refused(&base(0x08), None).kind, ErrorKind::Malformed, "will QoS without will");
    assert_eq!(refused(&base(0x20), None).kind, ErrorKind::Malformed, "will retain without will");
    assert_eq!(refused(&base(0x40), None).kind, ErrorKind::Malformed, "password without user name");
}

#[test]
fn oversize_packets_are_refused_before_they_are_buffered() {
    // Only the header has arrived: its declared size is enough to refuse.
    let header = [0x30, 0x80, 0x80, 0x10];
    let error = decode(&header, Some(Version::V311), 1024).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TooLarge);
    assert!(error.to_string().contains("at most 1024"), "{error}");
}

#[test]
fn rumqttc_reads_what_we_write_and_we_read_what_it_writes() {
    use rumqttc::mqttbytes::v4;
    // Ours → rumqttc.
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "devices/d/modules/m/messages/events/%24.on=out".into(),
        packet_id: Some(42),
        payload: Bytes::from_static(b"{\"t\":21}"),
        properties: Properties::default(),
    });
    let mut buf = bytes_of(&ours, Version::V311);
    match v4::Packet::read(&mut buf, MAX).unwrap() {
        v4::Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_str(), p.pkid, &p.payload[..]),
                ("devices/d/modules/m/messages/events/%24.on=out", 42, &b"{\"t\":21}"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    // rumqttc → ours.
    let mut connect = v4::Connect::new("dev1/m");
    connect.keep_alive = 30;
    connect.login = Some(v4::Login::new("hub/dev1/m/?api-version=2018-06-30", "token"));
    let mut buf = BytesMut::new();
    connect.write(&mut buf).unwrap();
    let (packet, _) = decode(&buf, None, MAX).unwrap().unwrap();
    let Packet::Connect(c) = packet else { panic!("{packet:?}") };
    assert_eq!(
        (c.client_id.as_str(), c.keep_alive, c.username.as_deref()),
        ("dev1/m", 30, Some("hub/dev1/m/?api-version=2018-06-30"))
    );
    let mut buf = BytesMut::new();
    let mut subscribe = v4::Subscribe::new("a/#", rumqttc::mqttbytes::QoS::AtLeastOnce);
    subscribe.pkid = 5;
    subscribe.write(&mut buf).unwrap();
    let (packet, _) = decode(&buf, Some(Version::V311), MAX).unwrap().unwrap();
    let Packet::Subscribe(s) = packet else { panic!("{packet:?}") };
    assert_eq!(s.filters, vec![("a/#".to_owned(), SubscriptionOptions::qos(QoS::AtLeastOnce))]);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), v5 in any::<bool>(), connected in any::<bool>()) {
        let version = connected.then_some(if v5 { Version::V5 } else { Version::V311 });
        let _ = decode(&bytes, version, 1 << 16);
    }

    #[test]
    fn mutated_packets_never_panic(index in 0usize..17, at in any::<prop::sample::Index>(), byte in any::<u8>(), v5 in any::<bool>()) {
        let version = if v5 { Version::V5 } else { Version::V311 };
        let packets = every_packet(version);
        let packet = &packets[index % packets.len()];
        let mut bytes = bytes_of(packet, version).to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let state = if matches!(packet, Packet::Connect(_)) { None } else { Some(version) };
        if let Ok(Some((decoded, used))) = decode(&bytes, state, 1 << 16) {
            // Whatever decodes must encode again to something that decodes the same.
            let again = bytes_of(&decoded, version);
            prop_assert!(used <= bytes.len());
            let (redecoded, _) = decode(&again, state, 1 << 16).unwrap().unwrap();
            prop_assert_eq!(redecoded, decoded);
        }
    }
}
