//! MQTT's primitive encodings: big-endian integers, variable byte integers, length-prefixed
//! UTF-8 strings and binary data — read strictly (every malformation is an error naming the
//! field), written exactly.

use bytes::{BufMut, BytesMut};

use super::{DecodeError, ErrorKind};

/// A cursor over one packet's bytes (after the fixed header).
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, which belong to a packet of type `packet` (for error messages).
    pub fn new(bytes: &'a [u8], packet: &'static str) -> Self {
        Self { bytes, at: 0, packet }
    }

    /// A malformed-packet error about `field`.
    pub fn malformed(&self, field: &str, what: impl std::fmt::Display) -> DecodeError {
        DecodeError::new(ErrorKind::Malformed, self.packet, format!("{field}: {what}"))
    }

    /// A protocol error about `field`.
    pub fn protocol(&self, field: &str, what: impl std::fmt::Display) -> DecodeError {
        DecodeError::new(ErrorKind::Protocol, self.packet, format!("{field}: {what}"))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("packet", format!("{} unexpected bytes at the end", self.remaining())))
        }
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.malformed(field, format!("needs {n} bytes, {} left", self.remaining())));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    /// The rest of the packet.
    pub fn rest(&mut self) -> &'a [u8] {
        let slice = &self.bytes[self.at..];
        self.at = self.bytes.len();
        slice
    }

    /// One byte.
    pub fn u8(&mut self, field: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A two-byte integer.
    pub fn u16(&mut self, field: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A four-byte integer.
    pub fn u32(&mut self, field: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A variable byte integer (at most four bytes, minimally encoded or not).
    pub fn varint(&mut self, field: &str) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8(field)?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed(field, "variable byte integer longer than 4 bytes"))
    }

    /// Two-byte length, then that many bytes.
    pub fn binary(&mut self, field: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(field)? as usize;
        self.take(len, field)
    }

    /// A UTF-8 string: well-formed and without U+0000, as the spec requires.
    pub fn string(&mut self, field: &str) -> Result<&'a str, DecodeError> {
        let bytes = self.binary(field)?;
        let text = std::str::from_utf8(bytes).map_err(|e| self.malformed(field, format!("invalid UTF-8 ({e})")))?;
        if text.contains('\0') {
            return Err(self.malformed(field, "contains U+0000"));
        }
        Ok(text)
    }
}

/// Writes a variable byte integer.
pub fn put_varint(out: &mut BytesMut, mut value: u32) {
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if value == 0 {
            return;
        }
    }
}

/// Bytes a variable byte integer takes.
pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a length-prefixed string or binary.
pub fn put_binary(out: &mut BytesMut, bytes: &[u8]) {
    // Lengths are checked by the packet builders (65,535 at most).
    out.put_u16(bytes.len().min(u16::MAX as usize) as u16);
    out.put_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
}

/// The largest remaining length MQTT can express.
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for value in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_REMAINING_LENGTH] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(Reader::new(&out, "test").varint("v").unwrap(), value);
        }
        let error = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x01], "test").varint("v").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Malformed);
    }

    #[test]
    fn strings_must_be_utf8_without_nul() {
        assert!(Reader::new(&[0, 2, 0xc3, 0x28], "t").string("s").is_err());
        assert!(Reader::new(&[0, 1, 0], "t").string("s").is_err());
        assert!(Reader::new(&[0, 5, b'a'], "t").string("s").is_err(), "truncated");
        assert_eq!(Reader::new(&[0, 2, b'o', b'k'], "t").string("s").unwrap(), "ok");
    }
}
