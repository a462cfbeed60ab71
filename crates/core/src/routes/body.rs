//! `$body` queries: `$body.a.b[0].c` reads the message body as a JSON object, as edgeHub
//! does, when `contentType` is `application/json` and `contentEncoding` is `utf-8`, `utf-16`
//! or `utf-32` (any case; UTF-16 and UTF-32 little-endian unless a byte-order mark says
//! otherwise). Any other body, one that does not decode, or JSON that is not an object makes
//! every query undefined.
//!
//! Following edgeHub, a query naming a member or index the JSON lacks is `null`, while one
//! that steps into a scalar, or ends on an object or array, is undefined.

use serde_json::Value as Json;

use super::message::{RouteMessage, eq_ignore_case, lookup, system};
use super::value::Value;

/// One step of a query: a member name and, optionally, an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    index: Option<usize>,
}

/// A parsed `$body` query: `name[index]` steps joined by `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BodyPath(Vec<Step>);

impl BodyPath {
    /// Parses what follows `$body.`, or says what is wrong with it.
    pub(super) fn parse(query: &str) -> Result<Self, &'static str> {
        query
            .split('.')
            .map(|step| {
                let (name, index) = match step.split_once('[') {
                    None => (step, None),
                    Some((name, rest)) => {
                        let digits = rest.strip_suffix(']').ok_or("an index is `[digits]` at the end of a step")?;
                        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err("an index is `[digits]` at the end of a step");
                        }
                        (name, Some(digits.parse().map_err(|_| "the index is too large")?))
                    }
                };
                if name.is_empty() {
                    return Err("every step needs a member name");
                }
                if name.contains(']') {
                    return Err("an index is `[digits]` at the end of a step");
                }
                Ok(Step { name: name.to_owned(), index })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The value at this path in `body` (the decoded body, if it is a JSON object).
    pub(super) fn query(&self, body: Option<&Json>) -> Value<'static> {
        let Some(mut node) = body else { return Value::Undefined };
        for step in &self.0 {
            let Json::Object(members) = node else { return Value::Undefined };
            let Some(member) = members.get(&step.name) else { return Value::Null };
            node = member;
            if let Some(index) = step.index {
                let Json::Array(items) = node else { return Value::Undefined };
                let Some(item) = items.get(index) else { return Value::Null };
                node = item;
            }
        }
        match node {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => n.as_f64().map_or(Value::Undefined, Value::number),
            Json::String(s) => Value::String(s.clone().into()),
            Json::Array(_) | Json::Object(_) => Value::Undefined,
        }
    }
}

/// The body as a JSON object, if its content type and encoding allow queries and it is one.
pub(super) fn decode(message: &RouteMessage) -> Option<Json> {
    let content_type = lookup(&message.system, system::CONTENT_TYPE)?;
    if !eq_ignore_case(content_type, "application/json") {
        return None;
    }
    let encoding = lookup(&message.system, system::CONTENT_ENCODING)?;
    let text = if eq_ignore_case(encoding, "utf-8") {
        let bytes = message.body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&message.body);
        std::str::from_utf8(bytes).ok()?.to_owned()
    } else if eq_ignore_case(encoding, "utf-16") {
        utf16(&message.body)?
    } else if eq_ignore_case(encoding, "utf-32") {
        utf32(&message.body)?
    } else {
        return None;
    };
    let json: Json = serde_json::from_str(&text).ok()?;
    json.is_object().then_some(json)
}

fn utf16(bytes: &[u8]) -> Option<String> {
    let (big_endian, bytes) = match bytes {
        [0xFE, 0xFF, rest @ ..] => (true, rest),
        [0xFF, 0xFE, rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
    });
    char::decode_utf16(units).collect::<Result<String, _>>().ok()
}

fn utf32(bytes: &[u8]) -> Option<String> {
    let (big_endian, bytes) = match bytes {
        [0x00, 0x00, 0xFE, 0xFF, rest @ ..] => (true, rest),
        [0xFF, 0xFE, 0x00, 0x00, rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if bytes.len() % 4 != 0 {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|quad| {
            let quad = [quad[0], quad[1], quad[2], quad[3]];
            char::from_u32(if big_endian { u32::from_be_bytes(quad) } else { u32::from_le_bytes(quad) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn paths_are_named_steps_with_optional_indexes() {
        assert!(BodyPath::parse("a.b[0].c").is_ok());
        for bad in
            ["", "a..b", "a.", "[0]", "a[]", "a[x]", "a[1:2]", "a[0][1]", "a[0]b", "a]", "a[99999999999999999999999]"]
        {
            assert!(BodyPath::parse(bad).is_err(), "{bad}");
        }
    }

    fn json_message(encoding: &str, body: Vec<u8>) -> RouteMessage {
        let mut message = RouteMessage::new(super::super::MessageSource::Telemetry { device: "d".into() });
        message.system.insert("contentType".into(), "application/json".into());
        message.system.insert("contentEncoding".into(), encoding.into());
        message.body = body;
        message
    }

    #[test]
    fn bodies_decode_in_the_three_encodings() {
        let text = r#"{"t":"é"}"#;
        let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
        let utf32le: Vec<u8> = text.chars().flat_map(|c| u32::from(c).to_le_bytes()).collect();
        let utf32be: Vec<u8> =
            [0, 0, 0xFE, 0xFF].into_iter().chain(text.chars().flat_map(|c| u32::from(c).to_be_bytes())).collect();
        let bom8: Vec<u8> = b"\xEF\xBB\xBF".iter().copied().chain(text.bytes()).collect();
        for (encoding, body) in
            [("UTF-8", bom8), ("utf-16", utf16le), ("Utf-16", utf16be), ("utf-32", utf32le), ("UTF-32", utf32be)]
        {
            let json = decode(&json_message(encoding, body)).unwrap();
            assert_eq!(json["t"], "é", "{encoding}");
        }
    }

    #[test]
    fn other_bodies_do_not_decode() {
        assert_eq!(decode(&json_message("utf-8", b"[1, 2]".to_vec())), None);
        assert_eq!(decode(&json_message("utf-8", b"{nope".to_vec())), None);
        assert_eq!(decode(&json_message("utf-8", b"{\"a\":\xFF}".to_vec())), None);
        assert_eq!(decode(&json_message("latin1", b"{}".to_vec())), None);
        assert_eq!(decode(&json_message("utf-16", b"{}x".to_vec())), None);
        assert_eq!(decode(&json_message("utf-32", b"{\0\0".to_vec())), None);
        let mut text_plain = json_message("utf-8", b"{}".to_vec());
        text_plain.system.insert("contentType".into(), "text/plain".into());
        assert_eq!(decode(&text_plain), None);
        text_plain.system.remove("contentType");
        assert_eq!(decode(&text_plain), None);
    }
}
