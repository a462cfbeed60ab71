//! MQTT over WebSockets (RFC 6455, server side) on the HTTPS listener, as IoT Hub and edgeHub
//! serve it at `/$iothub/websocket` with the `mqtt` subprotocol: the handshake's accept key,
//! a strict frame codec without I/O, and [`WsStream`], a byte stream over binary frames so the
//! MQTT connection code runs unchanged on top.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The path MQTT over WebSockets is served on.
pub const PATH: &str = "/$iothub/websocket";

/// RFC 6455's key GUID.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let digest =
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, format!("{}{GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Frame opcodes.
mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A frame from the client, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Payload of a binary (or continuation) frame.
    Data(Bytes),
    /// A ping, to be answered with its payload.
    Ping(Bytes),
    /// A pong (ignored).
    Pong,
    /// The client closes.
    Close,
}

/// Why the client's frames are refused (the connection closes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket: {0}")]
pub struct WsError(pub &'static str);

/// Decodes one frame from the front of `buf`; `None` until a whole frame is there. Client
/// frames must be masked (RFC 6455 5.1), MQTT travels in binary frames (text is refused),
/// control frames are short and unfragmented, data frames at most `max` bytes.
pub fn decode(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (buf[0], buf[1]);
    if first & 0x70 != 0 {
        return Err(WsError("reserved bits set (no extension was negotiated)"));
    }
    let (fin, opcode) = (first & 0x80 != 0, first & 0x0F);
    if second & 0x80 == 0 {
        return Err(WsError("client frames must be masked"));
    }
    let (length, header) = match second & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut long = [0u8; 8];
            long.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(long)).unwrap_or(usize::MAX), 10)
        }
        126 | 127 => return Ok(None),
        short => (usize::from(short), 2),
    };
    let control = opcode & 0x8 != 0;
    if control && (!fin || length > 125) {
        return Err(WsError("control frames must be whole and at most 125 bytes"));
    }
    if length > max {
        return Err(WsError("frame larger than the maximum packet size"));
    }
    if buf.len() < header + 4 + length {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[header..header + 4]);
    buf.advance(header + 4);
    let mut payload = buf.split_to(length);
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    let payload = payload.freeze();
    match opcode {
        op::BINARY | op::CONTINUATION => Ok(Some(Frame::Data(payload))),
        op::TEXT => Err(WsError("MQTT travels in binary frames, not text")),
        op::CLOSE => Ok(Some(Frame::Close)),
        op::PING => Ok(Some(Frame::Ping(payload))),
        op::PONG => Ok(Some(Frame::Pong)),
        _ => Err(WsError("unknown opcode")),
    }
}

/// Appends a server frame (unmasked, final) with `opcode` and `payload` to `out`.
pub fn encode(opcode: u8, payload: &[u8], out: &mut BytesMut) {
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
}

/// A byte stream over WebSocket binary frames: reads yield the payloads of the client's data
/// frames (pings are answered, a close ends the stream), each write goes out as one frame.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: S,
    max: usize,
    read: BytesMut,
    read_size: usize,
    data: Bytes,
    /// Frames encoded and not yet written.
    write: BytesMut,
    closed: bool,
}

impl<S> WsStream<S> {
    /// Frames over `inner`, refusing data frames over `max` bytes.
    pub fn new(inner: S, max: usize) -> Self {
        Self {
            inner,
            max,
            read: BytesMut::new(),
            read_size: 256,
            data: Bytes::new(),
            write: BytesMut::new(),
            closed: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> WsStream<S> {
    /// Writes out the frames waiting.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.write))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.data.is_empty() {
                let n = this.data.len().min(out.remaining());
                out.put_slice(&this.data.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            match decode(&mut this.read, this.max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
                Some(Frame::Data(payload)) => this.data = payload,
                Some(Frame::Ping(payload)) => {
                    encode(op::PONG, &payload, &mut this.write);
                    // Best effort now; writes and flushes finish the job.
                    let _ = this.poll_drain(cx);
                }
                Some(Frame::Pong) => {}
                Some(Frame::Close) => {
                    encode(op::CLOSE, &[], &mut this.write);
                    let _ = this.poll_drain(cx);
                    this.closed = true;
                }
                None => {
                    // As the MQTT connections' reads: small while idle, doubling when busy.
                    this.read.reserve(this.read_size);
                    let room = this.read.capacity() - this.read.len();
                    match ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.read))? {
                        0 => this.closed = true,
                        n if n >= room => this.read_size = (this.read_size * 2).min(64 * 1024),
                        _ => {}
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Frames already encoded go first: that is the backpressure.
        ready!(this.poll_drain(cx))?;
        encode(op::BINARY, buf, &mut this.write);
        // Start sending; what is left goes with the next write or flush.
        let _ = this.poll_drain(cx)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closed {
            self.closed = true;
            encode(op::CLOSE, &[], &mut self.write);
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn frames_are_decoded_strictly() {
        let mut buf = BytesMut::from(&masked(op::BINARY, true, b"\x10\x0c")[..]);
        assert_eq!(decode(&mut buf, 1024).unwrap(), Some(Frame::Data(Bytes::from_static(b"\x10\x0c"))));
        assert!(buf.is_empty());
        let long = vec![7u8; 300];
        let whole = masked(op::BINARY, true, &long);
        let mut buf = BytesMut::from(&whole[..10]);
        assert_eq!(decode(&mut buf, 1024).unwrap(), None, "partial");
        buf.extend_from_slice(&whole[10..]);
        assert_eq!(decode(&mut buf, 1024).unwrap(), Some(Frame::Data(Bytes::from(long))));
        let refused = |frame: Vec<u8>, max| decode(&mut BytesMut::from(&frame[..]), max).unwrap_err().0;
        assert!(refused(masked(op::TEXT, true, b"x"), 1024).contains("binary"));
        assert!(refused(masked(op::BINARY, true, &[0; 200]), 100).contains("maximum"));
        assert!(refused(masked(op::PING, false, b""), 1024).contains("control"));
        let mut unmasked = masked(op::BINARY, true, b"x");
        unmasked[1] &= 0x7F;
        assert!(refused(unmasked, 1024).contains("masked"));
        assert!(refused(vec![0xC2, 0x80, 0, 0, 0, 0], 1024).contains("reserved"));
    }

    #[tokio::test]
    async fn a_stream_carries_bytes_answers_pings_and_ends_on_close() {
        let (client, server) = tokio::io::duplex(4096);
        let mut stream = WsStream::new(server, 1024);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        stream.write_all(b"world").await.unwrap();
        stream.flush().await.unwrap();
        let mut input = masked(op::BINARY, false, b"hel");
        input.extend(masked(op::PING, true, b"p"));
        input.extend(masked(op::CONTINUATION, true, b"lo"));
        input.extend(masked(op::CLOSE, true, b""));
        client_write.write_all(&input).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        stream.flush().await.unwrap();
        let mut answer = [0u8; 12];
        client_read.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer[..7], [0x82, 5, b'w', b'o', b'r', b'l', b'd'], "data");
        assert_eq!(&answer[7..10], [0x8A, 1, b'p'], "pong");
        assert_eq!(&answer[10..], [0x88, 0], "close");
    }
}
