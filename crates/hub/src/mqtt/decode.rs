//! The strict decoder: bytes → one packet, or `None` when more bytes are needed, or an error
//! that says what was wrong and what kind of violation it is. The declared size is checked
//! against the limit before the packet is buffered whole.

use bytes::Bytes;

use super::properties::{Place, Properties};
use super::topic::validate_name;
use super::wire::Reader;
use super::{
    Ack, Auth, ConnAck, Connect, DecodeError, Disconnect, ErrorKind, Packet, Publish, QoS, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe, Version, Will,
};

const NAMES: [&str; 16] = [
    "reserved",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// Decodes the packet at the start of `buf` on a connection speaking `version` (`None`
/// before its CONNECT: only a CONNECT is accepted then). Returns the packet and the bytes it
/// took, or `None` if `buf` holds only part of it. Packets larger than `max_size` bytes
/// (fixed header included) are refused as soon as their header says so.
pub fn decode(buf: &[u8], version: Option<Version>, max_size: usize) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut remaining: usize = 0;
    let mut header = 1;
    loop {
        if header > 4 {
            return Err(DecodeError::new(ErrorKind::Malformed, "packet", "remaining length longer than 4 bytes"));
        }
        let Some(&byte) = buf.get(header) else { return Ok(None) };
        remaining |= usize::from(byte & 0x7f) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let total = header + remaining;
    if total > max_size {
        let name = NAMES[usize::from(first >> 4)];
        return Err(DecodeError::new(
            ErrorKind::TooLarge,
            name,
            format!("{total} bytes; at most {max_size} are accepted"),
        ));
    }
    if buf.len() < total {
        return Ok(None);
    }
    let packet = parse(first, &buf[header..total], version)?;
    Ok(Some((packet, total)))
}

fn parse(first: u8, body: &[u8], version: Option<Version>) -> Result<Packet, DecodeError> {
    let kind = first >> 4;
    let flags = first & 0x0f;
    let name = NAMES[usize::from(kind)];
    let mut r = Reader::new(body, name);
    match (version, kind) {
        (None, 1) => {}
        (None, _) => return Err(r.protocol("packet", "the first packet must be CONNECT")),
        (Some(_), 1) => return Err(r.protocol("packet", "a second CONNECT")),
        _ => {}
    }
    let expected_flags = match kind {
        3 => flags,
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags != expected_flags {
        return Err(r.malformed("fixed header", format!("flags are {flags:04b}, must be {expected_flags:04b}")));
    }
    let v5 = version == Some(Version::V5);
    let packet = match kind {
        1 => Packet::Connect(Box::new(connect(&mut r)?)),
        2 => {
            let ack_flags = r.u8("acknowledge flags")?;
            if ack_flags & 0xfe != 0 {
                return Err(r.malformed("acknowledge flags", "reserved bits are set"));
            }
            let code = r.u8("return code")?;
            let properties = if v5 { Properties::decode(&mut r, Place::ConnAck)? } else { Properties::default() };
            Packet::ConnAck(ConnAck { session_present: ack_flags & 1 == 1, code, properties })
        }
        3 => Packet::Publish(publish(&mut r, flags, v5)?),
        4..=7 => {
            let ack = ack(&mut r, v5)?;
            match kind {
                4 => Packet::PubAck(ack),
                5 => Packet::PubRec(ack),
                6 => Packet::PubRel(ack),
                _ => Packet::PubComp(ack),
            }
        }
        8 => Packet::Subscribe(subscribe(&mut r, v5)?),
        9 => {
            let packet_id = packet_id(&mut r)?;
            let properties = if v5 { Properties::decode(&mut r, Place::SubAck)? } else { Properties::default() };
            let codes = r.rest().to_vec();
            if codes.is_empty() {
                return Err(r.protocol("return codes", "none"));
            }
            Packet::SubAck(SubAck { packet_id, codes, properties })
        }
        10 => {
            let packet_id = packet_id(&mut r)?;
            let properties = if v5 { Properties::decode(&mut r, Place::Unsubscribe)? } else { Properties::default() };
            let mut filters = Vec::new();
            while !r.is_empty() {
                filters.push(r.string("topic filter")?.to_owned());
            }
            if filters.is_empty() {
                return Err(r.protocol("topic filters", "none; at least one is required"));
            }
            Packet::Unsubscribe(Unsubscribe { packet_id, filters, properties })
        }
        11 => {
            let packet_id = packet_id(&mut r)?;
            let (properties, codes) = if v5 {
                (Properties::decode(&mut r, Place::SubAck)?, r.rest().to_vec())
            } else {
                (Properties::default(), Vec::new())
            };
            Packet::UnsubAck(UnsubAck { packet_id, codes, properties })
        }
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => {
            let mut disconnect = Disconnect::default();
            if v5 && !r.is_empty() {
                disconnect.code = r.u8("reason code")?;
                if !r.is_empty() {
                    disconnect.properties = Properties::decode(&mut r, Place::Disconnect)?;
                }
            }
            Packet::Disconnect(disconnect)
        }
        15 if v5 => {
            let mut auth = Auth::default();
            if !r.is_empty() {
                auth.code = r.u8("reason code")?;
                auth.properties = Properties::decode(&mut r, Place::Auth)?;
            }
            Packet::Auth(auth)
        }
        15 => return Err(r.protocol("packet", "AUTH exists only in MQTT 5")),
        _ => return Err(r.malformed("fixed header", "packet type 0 is reserved")),
    };
    r.finish()?;
    Ok(packet)
}

fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let id = r.u16("packet identifier")?;
    if id == 0 {
        return Err(r.protocol("packet identifier", "must not be 0"));
    }
    Ok(id)
}

fn connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
    let name = r.string("protocol name")?;
    let level = r.u8("protocol level")?;
    let version = match (name, level) {
        ("MQTT", 4) => Version::V311,
        ("MQTT", 5) => Version::V5,
        _ => {
            return Err(DecodeError::new(
                ErrorKind::UnsupportedVersion,
                "CONNECT",
                format!("protocol {name:?} level {level}; this broker speaks MQTT 3.1.1 (4) and 5"),
            ));
        }
    };
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(r.malformed("connect flags", "the reserved bit is set"));
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos = QoS::from_bits((flags >> 3) & 0x03).ok_or_else(|| r.malformed("connect flags", "will QoS 3"))?;
    let will_retain = flags & 0x20 != 0;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(r.malformed("connect flags", "will QoS or retain set without a will"));
    }
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if version == Version::V311 && has_password && !has_username {
        return Err(r.malformed("connect flags", "a password without a user name"));
    }
    let keep_alive = r.u16("keep alive")?;
    let properties =
        if version == Version::V5 { Properties::decode(r, Place::Connect)? } else { Properties::default() };
    let client_id = r.string("client identifier")?.to_owned();
    let will = if will_flag {
        let properties =
            if version == Version::V5 { Properties::decode(r, Place::Will)? } else { Properties::default() };
        let topic = r.string("will topic")?.to_owned();
        validate_name(&topic).map_err(|e| r.malformed("will topic", e))?;
        let payload = Bytes::copy_from_slice(r.binary("will payload")?);
        Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if has_username { Some(r.string("user name")?.to_owned()) } else { None };
    let password = if has_password { Some(Bytes::copy_from_slice(r.binary("password")?)) } else { None };
    Ok(Connect { version, client_id, clean_start: flags & 0x02 != 0, keep_alive, username, password, will, properties })
}

fn publish(r: &mut Reader<'_>, flags: u8, v5: bool) -> Result<Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or_else(|| r.malformed("fixed header", "QoS 3"))?;
    if dup && qos == QoS::AtMostOnce {
        return Err(r.malformed("fixed header", "DUP set on a QoS 0 message"));
    }
    let topic = r.string("topic name")?.to_owned();
    let packet_id = if qos == QoS::AtMostOnce { None } else { Some(packet_id(r)?) };
    let properties = if v5 { Properties::decode(r, Place::Publish)? } else { Properties::default() };
    if topic.is_empty() && properties.topic_alias.is_none() {
        return Err(DecodeError::new(ErrorKind::TopicName, "PUBLISH", "empty topic name"));
    }
    if !topic.is_empty() {
        validate_name(&topic).map_err(|e| DecodeError::new(ErrorKind::TopicName, "PUBLISH", e.to_string()))?;
    }
    let payload = Bytes::copy_from_slice(r.rest());
    Ok(Publish { dup, qos, retain: flags & 0x01 != 0, topic, packet_id, payload, properties })
}

fn ack(r: &mut Reader<'_>, v5: bool) -> Result<Ack, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut ack = Ack::ok(packet_id);
    if v5 && !r.is_empty() {
        ack.code = r.u8("reason code")?;
        if !r.is_empty() {
            ack.properties = Properties::decode(r, Place::Ack)?;
        }
    }
    Ok(ack)
}

fn subscribe(r: &mut Reader<'_>, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v5 { Properties::decode(r, Place::Subscribe)? } else { Properties::default() };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?.to_owned();
        let options = r.u8("subscription options")?;
        let reserved = if v5 { 0xc0 } else { 0xfc };
        if options & reserved != 0 {
            return Err(r.malformed("subscription options", format!("reserved bits set in {options:08b}")));
        }
        let qos = QoS::from_bits(options & 0x03).ok_or_else(|| r.malformed("subscription options", "QoS 3"))?;
        let retain_handling = (options >> 4) & 0x03;
        if retain_handling == 3 {
            return Err(r.protocol("subscription options", "retain handling 3"));
        }
        filters.push((
            filter,
            SubscriptionOptions {
                qos,
                no_local: options & 0x04 != 0,
                retain_as_published: options & 0x08 != 0,
                retain_handling,
            },
        ));
    }
    if filters.is_empty() {
        return Err(r.protocol("topic filters", "none; at least one is required"));
    }
    Ok(Subscribe { packet_id, filters, properties })
}
