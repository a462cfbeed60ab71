//! The encoder: a packet → its exact bytes for a connection speaking a version. v5-only
//! fields (properties, reason codes) are left out for 3.1.1.

use bytes::{BufMut, BytesMut};

use super::wire::{MAX_REMAINING_LENGTH, put_binary, put_varint};
use super::{Ack, Packet, Properties, QoS, Version};

/// A packet that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    #[error("{0} is longer than 65,535 bytes")]
    FieldTooLong(&'static str),
    /// The packet is longer than MQTT can express.
    #[error("packet of {0} bytes is longer than MQTT allows")]
    TooLarge(usize),
    /// A packet id is missing for QoS > 0, or present for QoS 0.
    #[error("PUBLISH packet identifier does not match its QoS")]
    PacketId,
}

fn field(value: &[u8], name: &'static str) -> Result<(), EncodeError> {
    if value.len() > u16::MAX as usize { Err(EncodeError::FieldTooLong(name)) } else { Ok(()) }
}

fn header(out: &mut BytesMut, first: u8, body: &[u8]) -> Result<(), EncodeError> {
    if body.len() > MAX_REMAINING_LENGTH as usize {
        return Err(EncodeError::TooLarge(body.len()));
    }
    out.reserve(5 + body.len());
    out.put_u8(first);
    put_varint(out, body.len() as u32);
    out.put_slice(body);
    Ok(())
}

fn ack(out: &mut BytesMut, first: u8, ack: &Ack, v5: bool) -> Result<(), EncodeError> {
    let mut body = BytesMut::with_capacity(4);
    body.put_u16(ack.packet_id);
    if v5 && (ack.code != 0 || !ack.properties.is_empty()) {
        body.put_u8(ack.code);
        if !ack.properties.is_empty() {
            ack.properties.encode(&mut body);
        }
    }
    header(out, first, &body)
}

/// Appends `packet`, as spoken by `version`, to `out`.
pub fn encode(packet: &Packet, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = version == Version::V5;
    let props = |body: &mut BytesMut, p: &Properties| {
        if v5 {
            p.encode(body);
        }
    };
    match packet {
        Packet::Publish(p) => {
            field(p.topic.as_bytes(), "topic name")?;
            if p.packet_id.is_some() != (p.qos != QoS::AtMostOnce) {
                return Err(EncodeError::PacketId);
            }
            let props_len = if v5 { p.properties.encoded_len() } else { 0 };
            let len = 2 + p.topic.len() + if p.packet_id.is_some() { 2 } else { 0 } + props_len + p.payload.len();
            if len > MAX_REMAINING_LENGTH as usize {
                return Err(EncodeError::TooLarge(len));
            }
            let first = 0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain);
            out.reserve(5 + len);
            out.put_u8(first);
            put_varint(out, len as u32);
            put_binary(out, p.topic.as_bytes());
            if let Some(id) = p.packet_id {
                out.put_u16(id);
            }
            if v5 {
                p.properties.encode(out);
            }
            out.put_slice(&p.payload);
            Ok(())
        }
        Packet::PubAck(a) => ack(out, 0x40, a, v5),
        Packet::PubRec(a) => ack(out, 0x50, a, v5),
        Packet::PubRel(a) => ack(out, 0x62, a, v5),
        Packet::PubComp(a) => ack(out, 0x70, a, v5),
        Packet::Connect(c) => {
            let mut body = BytesMut::new();
            put_binary(&mut body, b"MQTT");
            body.put_u8(c.version.level());
            let mut flags = u8::from(c.clean_start) << 1;
            if let Some(will) = &c.will {
                flags |= 0x04 | ((will.qos as u8) << 3) | (u8::from(will.retain) << 5);
            }
            if c.password.is_some() {
                flags |= 0x40;
            }
            if c.username.is_some() {
                flags |= 0x80;
            }
            body.put_u8(flags);
            body.put_u16(c.keep_alive);
            props(&mut body, &c.properties);
            field(c.client_id.as_bytes(), "client identifier")?;
            put_binary(&mut body, c.client_id.as_bytes());
            if let Some(will) = &c.will {
                props(&mut body, &will.properties);
                field(will.topic.as_bytes(), "will topic")?;
                put_binary(&mut body, will.topic.as_bytes());
                field(&will.payload, "will payload")?;
                put_binary(&mut body, &will.payload);
            }
            if let Some(username) = &c.username {
                field(username.as_bytes(), "user name")?;
                put_binary(&mut body, username.as_bytes());
            }
            if let Some(password) = &c.password {
                field(password, "password")?;
                put_binary(&mut body, password);
            }
            header(out, 0x10, &body)
        }
        Packet::ConnAck(c) => {
            let mut body = BytesMut::with_capacity(3);
            body.put_u8(u8::from(c.session_present));
            body.put_u8(c.code);
            props(&mut body, &c.properties);
            header(out, 0x20, &body)
        }
        Packet::Subscribe(s) => {
            let mut body = BytesMut::new();
            body.put_u16(s.packet_id);
            props(&mut body, &s.properties);
            for (filter, o) in &s.filters {
                field(filter.as_bytes(), "topic filter")?;
                put_binary(&mut body, filter.as_bytes());
                let mut options = o.qos as u8;
                if v5 {
                    options |= (u8::from(o.no_local) << 2) | (u8::from(o.retain_as_published) << 3);
                    options |= o.retain_handling << 4;
                }
                body.put_u8(options);
            }
            header(out, 0x82, &body)
        }
        Packet::SubAck(s) => {
            let mut body = BytesMut::with_capacity(3 + s.codes.len());
            body.put_u16(s.packet_id);
            props(&mut body, &s.properties);
            body.put_slice(&s.codes);
            header(out, 0x90, &body)
        }
        Packet::Unsubscribe(u) => {
            let mut body = BytesMut::new();
            body.put_u16(u.packet_id);
            props(&mut body, &u.properties);
            for filter in &u.filters {
                field(filter.as_bytes(), "topic filter")?;
                put_binary(&mut body, filter.as_bytes());
            }
            header(out, 0xa2, &body)
        }
        Packet::UnsubAck(u) => {
            let mut body = BytesMut::with_capacity(3 + u.codes.len());
            body.put_u16(u.packet_id);
            if v5 {
                u.properties.encode(&mut body);
                body.put_slice(&u.codes);
            }
            header(out, 0xb0, &body)
        }
        Packet::PingReq => header(out, 0xc0, &[]),
        Packet::PingResp => header(out, 0xd0, &[]),
        Packet::Disconnect(d) => {
            let mut body = BytesMut::new();
            if v5 && (d.code != 0 || !d.properties.is_empty()) {
                body.put_u8(d.code);
                d.properties.encode(&mut body);
            }
            header(out, 0xe0, &body)
        }
        Packet::Auth(a) => {
            let mut body = BytesMut::new();
            if a.code != 0 || !a.properties.is_empty() {
                body.put_u8(a.code);
                a.properties.encode(&mut body);
            }
            header(out, 0xf0, &body)
        }
    }
}
