//! MQTT 5 properties: decoded into one struct, strictly (unknown identifiers, properties not
//! allowed in the packet, duplicates of single-valued ones and out-of-range values are
//! errors), and encoded back. In 3.1.1 packets they are absent and stay empty.

use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;
use super::wire::{Reader, put_binary, put_varint, varint_len};

/// Where a property list sits: each place allows its own identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// CONNECT.
    Connect,
    /// The will in CONNECT.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK and UNSUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

impl Place {
    fn allows(self, id: u8) -> bool {
        let allowed: &[u8] = match self {
            Self::Connect => &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
            Self::Will => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
            Self::ConnAck => {
                &[0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A]
            }
            Self::Publish => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26],
            Self::Ack | Self::SubAck => &[0x1F, 0x26],
            Self::Subscribe => &[0x0B, 0x26],
            Self::Unsubscribe => &[0x26],
            Self::Disconnect => &[0x11, 0x1C, 0x1F, 0x26],
            Self::Auth => &[0x15, 0x16, 0x1F, 0x26],
        };
        allowed.contains(&id)
    }
}

/// The property identifiers MQTT 5 defines.
const KNOWN: &[u8] = &[
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x21, 0x22,
    0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
];

/// Every MQTT 5 property; `None`/empty when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// 0x01: 0 bytes, 1 UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03.
    pub content_type: Option<String>,
    /// 0x08.
    pub response_topic: Option<String>,
    /// 0x09.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: one in SUBSCRIBE; any number in PUBLISH from the server.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12.
    pub assigned_client_identifier: Option<String>,
    /// 0x13: seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15.
    pub authentication_method: Option<String>,
    /// 0x16.
    pub authentication_data: Option<Bytes>,
    /// 0x17: 0 or 1.
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19: 0 or 1.
    pub request_response_information: Option<u8>,
    /// 0x1A.
    pub response_information: Option<String>,
    /// 0x1C.
    pub server_reference: Option<String>,
    /// 0x1F.
    pub reason_string: Option<String>,
    /// 0x21: not 0.
    pub receive_maximum: Option<u16>,
    /// 0x22.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: not 0.
    pub topic_alias: Option<u16>,
    /// 0x24: 0 or 1.
    pub maximum_qos: Option<u8>,
    /// 0x25: 0 or 1.
    pub retain_available: Option<u8>,
    /// 0x26, in order, repeats allowed.
    pub user_properties: Vec<(String, String)>,
    /// 0x27: not 0.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: 0 or 1.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: 0 or 1.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: 0 or 1.
    pub shared_subscription_available: Option<u8>,
}

fn once<T>(slot: &mut Option<T>, value: T, r: &Reader<'_>, name: &str) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(r.protocol(name, "appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn flag(r: &mut Reader<'_>, name: &str) -> Result<u8, DecodeError> {
    let value = r.u8(name)?;
    if value > 1 {
        return Err(r.protocol(name, format!("is {value}; only 0 and 1 are allowed")));
    }
    Ok(value)
}

fn nonzero_u16(r: &mut Reader<'_>, name: &str) -> Result<u16, DecodeError> {
    let value = r.u16(name)?;
    if value == 0 {
        return Err(r.protocol(name, "must not be 0"));
    }
    Ok(value)
}

impl Properties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Reads a property list (its length, then the properties) allowed at `place`.
    pub fn decode(r: &mut Reader<'_>, place: Place) -> Result<Self, DecodeError> {
        let len = r.varint("property length")? as usize;
        let bytes = r.take(len, "properties")?;
        let mut r = Reader::new(bytes, place_name(place));
        let mut p = Properties::default();
        while !r.is_empty() {
            let id = r.varint("property identifier")?;
            let id = u8::try_from(id).map_err(|_| r.malformed("property identifier", format!("{id} is unknown")))?;
            if !KNOWN.contains(&id) {
                return Err(r.malformed("property identifier", format!("0x{id:02X} is unknown")));
            }
            if !place.allows(id) {
                return Err(r.protocol("properties", format!("property 0x{id:02X} is not allowed here")));
            }
            match id {
                0x01 => {
                    let v = flag(&mut r, "payload format indicator")?;
                    once(&mut p.payload_format_indicator, v, &r, "payload format indicator")?
                }
                0x02 => {
                    let v = r.u32("message expiry interval")?;
                    once(&mut p.message_expiry_interval, v, &r, "message expiry interval")?
                }
                0x03 => {
                    let v = r.string("content type")?.to_owned();
                    once(&mut p.content_type, v, &r, "content type")?
                }
                0x08 => {
                    let v = r.string("response topic")?.to_owned();
                    if v.contains(['+', '#']) {
                        return Err(r.protocol("response topic", "contains a wildcard"));
                    }
                    once(&mut p.response_topic, v, &r, "response topic")?
                }
                0x09 => {
                    let v = Bytes::copy_from_slice(r.binary("correlation data")?);
                    once(&mut p.correlation_data, v, &r, "correlation data")?
                }
                0x0B => {
                    let v = r.varint("subscription identifier")?;
                    if v == 0 {
                        return Err(r.protocol("subscription identifier", "must not be 0"));
                    }
                    if place == Place::Subscribe && !p.subscription_identifiers.is_empty() {
                        return Err(r.protocol("subscription identifier", "appears twice"));
                    }
                    p.subscription_identifiers.push(v);
                }
                0x11 => {
                    let v = r.u32("session expiry interval")?;
                    once(&mut p.session_expiry_interval, v, &r, "session expiry interval")?
                }
                0x12 => {
                    let v = r.string("assigned client identifier")?.to_owned();
                    once(&mut p.assigned_client_identifier, v, &r, "assigned client identifier")?
                }
                0x13 => {
                    let v = r.u16("server keep alive")?;
                    once(&mut p.server_keep_alive, v, &r, "server keep alive")?
                }
                0x15 => {
                    let v = r.string("authentication method")?.to_owned();
                    once(&mut p.authentication_method, v, &r, "authentication method")?
                }
                0x16 => {
                    let v = Bytes::copy_from_slice(r.binary("authentication data")?);
                    once(&mut p.authentication_data, v, &r, "authentication data")?
                }
                0x17 => {
                    let v = flag(&mut r, "request problem information")?;
                    once(&mut p.request_problem_information, v, &r, "request problem information")?
                }
                0x18 => {
                    let v = r.u32("will delay interval")?;
                    once(&mut p.will_delay_interval, v, &r, "will delay interval")?
                }
                0x19 => {
                    let v = flag(&mut r, "request response information")?;
                    once(&mut p.request_response_information, v, &r, "request response information")?
                }
                0x1A => {
                    let v = r.string("response information")?.to_owned();
                    once(&mut p.response_information, v, &r, "response information")?
                }
                0x1C => {
                    let v = r.string("server reference")?.to_owned();
                    once(&mut p.server_reference, v, &r, "server reference")?
                }
                0x1F => {
                    let v = r.string("reason string")?.to_owned();
                    once(&mut p.reason_string, v, &r, "reason string")?
                }
                0x21 => {
                    let v = nonzero_u16(&mut r, "receive maximum")?;
                    once(&mut p.receive_maximum, v, &r, "receive maximum")?
                }
                0x22 => {
                    let v = r.u16("topic alias maximum")?;
                    once(&mut p.topic_alias_maximum, v, &r, "topic alias maximum")?
                }
                0x23 => {
                    let v = nonzero_u16(&mut r, "topic alias")?;
                    once(&mut p.topic_alias, v, &r, "topic alias")?
                }
                0x24 => {
                    let v = flag(&mut r, "maximum QoS")?;
                    once(&mut p.maximum_qos, v, &r, "maximum QoS")?
                }
                0x25 => {
                    let v = flag(&mut r, "retain available")?;
                    once(&mut p.retain_available, v, &r, "retain available")?
                }
                0x26 => {
                    let key = r.string("user property name")?.to_owned();
                    let value = r.string("user property value")?.to_owned();
                    p.user_properties.push((key, value));
                }
                0x27 => {
                    let v = r.u32("maximum packet size")?;
                    if v == 0 {
                        return Err(r.protocol("maximum packet size", "must not be 0"));
                    }
                    once(&mut p.maximum_packet_size, v, &r, "maximum packet size")?
                }
                0x28 => {
                    let v = flag(&mut r, "wildcard subscription available")?;
                    once(&mut p.wildcard_subscription_available, v, &r, "wildcard subscription available")?
                }
                0x29 => {
                    let v = flag(&mut r, "subscription identifier available")?;
                    once(&mut p.subscription_identifier_available, v, &r, "subscription identifier available")?
                }
                0x2A => {
                    let v = flag(&mut r, "shared subscription available")?;
                    once(&mut p.shared_subscription_available, v, &r, "shared subscription available")?
                }
                _ => return Err(r.malformed("property identifier", format!("0x{id:02X} is unknown"))),
            }
        }
        Ok(p)
    }

    fn body(&self) -> BytesMut {
        let mut out = BytesMut::new();
        let byte = |out: &mut BytesMut, id: u8, v: Option<u8>| {
            if let Some(v) = v {
                out.put_u8(id);
                out.put_u8(v);
            }
        };
        let short = |out: &mut BytesMut, id: u8, v: Option<u16>| {
            if let Some(v) = v {
                out.put_u8(id);
                out.put_u16(v);
            }
        };
        let long = |out: &mut BytesMut, id: u8, v: Option<u32>| {
            if let Some(v) = v {
                out.put_u8(id);
                out.put_u32(v);
            }
        };
        let text = |out: &mut BytesMut, id: u8, v: &Option<String>| {
            if let Some(v) = v {
                out.put_u8(id);
                put_binary(out, v.as_bytes());
            }
        };
        let data = |out: &mut BytesMut, id: u8, v: &Option<Bytes>| {
            if let Some(v) = v {
                out.put_u8(id);
                put_binary(out, v);
            }
        };
        byte(&mut out, 0x01, self.payload_format_indicator);
        long(&mut out, 0x02, self.message_expiry_interval);
        text(&mut out, 0x03, &self.content_type);
        text(&mut out, 0x08, &self.response_topic);
        data(&mut out, 0x09, &self.correlation_data);
        for id in &self.subscription_identifiers {
            out.put_u8(0x0B);
            put_varint(&mut out, *id);
        }
        long(&mut out, 0x11, self.session_expiry_interval);
        text(&mut out, 0x12, &self.assigned_client_identifier);
        short(&mut out, 0x13, self.server_keep_alive);
        text(&mut out, 0x15, &self.authentication_method);
        data(&mut out, 0x16, &self.authentication_data);
        byte(&mut out, 0x17, self.request_problem_information);
        long(&mut out, 0x18, self.will_delay_interval);
        byte(&mut out, 0x19, self.request_response_information);
        text(&mut out, 0x1A, &self.response_information);
        text(&mut out, 0x1C, &self.server_reference);
        text(&mut out, 0x1F, &self.reason_string);
        short(&mut out, 0x21, self.receive_maximum);
        short(&mut out, 0x22, self.topic_alias_maximum);
        short(&mut out, 0x23, self.topic_alias);
        byte(&mut out, 0x24, self.maximum_qos);
        byte(&mut out, 0x25, self.retain_available);
        for (k, v) in &self.user_properties {
            out.put_u8(0x26);
            put_binary(&mut out, k.as_bytes());
            put_binary(&mut out, v.as_bytes());
        }
        long(&mut out, 0x27, self.maximum_packet_size);
        byte(&mut out, 0x28, self.wildcard_subscription_available);
        byte(&mut out, 0x29, self.subscription_identifier_available);
        byte(&mut out, 0x2A, self.shared_subscription_available);
        out
    }

    /// Writes the property length and the properties.
    pub fn encode(&self, out: &mut BytesMut) {
        let body = self.body();
        put_varint(out, body.len() as u32);
        out.put_slice(&body);
    }

    /// Bytes [`Properties::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let len = self.body().len();
        varint_len(len as u32) + len
    }
}

fn place_name(place: Place) -> &'static str {
    match place {
        Place::Connect => "CONNECT properties",
        Place::Will => "will properties",
        Place::ConnAck => "CONNACK properties",
        Place::Publish => "PUBLISH properties",
        Place::Ack => "acknowledgement properties",
        Place::Subscribe => "SUBSCRIBE properties",
        Place::SubAck => "SUBACK/UNSUBACK properties",
        Place::Unsubscribe => "UNSUBSCRIBE properties",
        Place::Disconnect => "DISCONNECT properties",
        Place::Auth => "AUTH properties",
    }
}
