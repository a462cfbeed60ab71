//! Just enough AMQP 0.9.1 for a simulated device: sign in with PLAIN, open a channel,
//! publish without confirms. A connection is a socket and a few hundred bytes, so ten
//! thousand of them fit in one process (a full client keeps a thread and megabytes of
//! buffers per connection).

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;

fn short_string(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
    out
}

fn method(class: u16, method: u16, arguments: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(arguments.len() + 4);
    payload.extend_from_slice(&class.to_be_bytes());
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(arguments);
    payload
}

/// A signed-in connection with channel 1 open.
pub struct Device {
    stream: TcpStream,
    user: String,
}

async fn read_method(stream: &mut TcpStream) -> Result<(u16, u16, Vec<u8>), Error> {
    loop {
        let mut head = [0u8; 7];
        stream.read_exact(&mut head).await?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut payload = vec![0u8; size + 1];
        stream.read_exact(&mut payload).await?;
        if head[0] != FRAME_METHOD || size < 4 {
            continue;
        }
        let class = u16::from_be_bytes([payload[0], payload[1]]);
        let id = u16::from_be_bytes([payload[2], payload[3]]);
        if (class, id) == (10, 50) {
            // connection.close: reply code and text.
            let code = u16::from_be_bytes([payload[4], payload[5]]);
            let len = payload[6] as usize;
            let text = String::from_utf8_lossy(&payload[7..7 + len]).into_owned();
            return Err(format!("the broker closed the connection: {code} {text}").into());
        }
        payload.truncate(size);
        return Ok((class, id, payload));
    }
}

async fn expect(stream: &mut TcpStream, class: u16, id: u16) -> Result<Vec<u8>, Error> {
    let (c, m, payload) = read_method(stream).await?;
    if (c, m) != (class, id) {
        return Err(format!("expected method {class}.{id}, got {c}.{m}").into());
    }
    Ok(payload)
}

impl Device {
    /// Connects to `port` on loopback as `user` with `password` to `vhost`.
    pub async fn connect(port: u16, user: &str, password: &str, vhost: &str) -> Result<Self, Error> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        expect(&mut stream, 10, 10).await?; // connection.start
        let mut start_ok = Vec::new();
        start_ok.extend_from_slice(&0u32.to_be_bytes()); // client properties: empty table
        short_string(&mut start_ok, "PLAIN");
        let response = format!("\0{user}\0{password}");
        start_ok.extend_from_slice(&(response.len() as u32).to_be_bytes());
        start_ok.extend_from_slice(response.as_bytes());
        short_string(&mut start_ok, "en_US");
        stream.write_all(&frame(FRAME_METHOD, 0, &method(10, 11, &start_ok))).await?;
        expect(&mut stream, 10, 30).await?; // connection.tune
        let mut tune_ok = Vec::new();
        tune_ok.extend_from_slice(&1u16.to_be_bytes()); // one channel
        tune_ok.extend_from_slice(&4096u32.to_be_bytes()); // the smallest frames
        tune_ok.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats
        stream.write_all(&frame(FRAME_METHOD, 0, &method(10, 31, &tune_ok))).await?;
        let mut open = Vec::new();
        short_string(&mut open, vhost);
        short_string(&mut open, "");
        open.push(0);
        stream.write_all(&frame(FRAME_METHOD, 0, &method(10, 40, &open))).await?;
        expect(&mut stream, 10, 41).await?; // connection.open-ok
        stream.write_all(&frame(FRAME_METHOD, 1, &method(20, 10, &[0]))).await?;
        expect(&mut stream, 20, 11).await?; // channel.open-ok
        Ok(Self { stream, user: user.to_owned() })
    }

    /// Publishes `body` to `exchange` with `routing_key`, the device as `user_id`.
    pub async fn publish(&mut self, exchange: &str, routing_key: &str, body: &[u8]) -> Result<(), Error> {
        let mut publish = Vec::new();
        publish.extend_from_slice(&0u16.to_be_bytes());
        short_string(&mut publish, exchange);
        short_string(&mut publish, routing_key);
        publish.push(0);
        let mut header = Vec::new();
        header.extend_from_slice(&60u16.to_be_bytes()); // basic
        header.extend_from_slice(&0u16.to_be_bytes()); // weight
        header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        header.extend_from_slice(&0x0010u16.to_be_bytes()); // user-id present
        short_string(&mut header, &self.user);
        let mut out = frame(FRAME_METHOD, 1, &method(60, 40, &publish));
        out.extend_from_slice(&frame(FRAME_HEADER, 1, &header));
        out.extend_from_slice(&frame(FRAME_BODY, 1, body));
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Closes the connection politely (`connection.close`), not waiting for the answer.
    pub async fn close(mut self) {
        let mut close = Vec::new();
        close.extend_from_slice(&200u16.to_be_bytes());
        short_string(&mut close, "done");
        close.extend_from_slice(&0u16.to_be_bytes());
        close.extend_from_slice(&0u16.to_be_bytes());
        let _ = self.stream.write_all(&frame(FRAME_METHOD, 0, &method(10, 50, &close))).await;
    }
}
