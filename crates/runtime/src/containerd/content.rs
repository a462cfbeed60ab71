//! Writing blobs into containerd's content store, streamed in chunks and verified by digest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{AbortRequest, InfoRequest, WriteAction, WriteContentRequest};
use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::Containerd;
use crate::error::RuntimeError;

/// Bytes per write message.
const CHUNK: usize = 1 << 20;

/// A blob's bytes as they arrive (from a file or a registry).
pub(crate) type Chunks = BoxStream<'static, std::io::Result<Bytes>>;

/// Called with the number of bytes each write message carries.
pub(crate) type OnBytes = Arc<dyn Fn(u64) + Send + Sync>;

/// What a blob write needs besides its bytes.
pub(crate) struct BlobWrite<'a> {
    /// `sha256:…`; containerd refuses content that does not hash to it.
    pub digest: &'a str,
    /// Its size in bytes.
    pub size: u64,
    /// Labels (garbage collection references).
    pub labels: HashMap<String, String>,
    /// The lease the write happens under.
    pub lease: &'a str,
}

struct Writer {
    chunks: Chunks,
    /// The source has ended (sources need not be polled again after that).
    ended: bool,
    offset: u64,
    commit: Option<WriteContentRequest>,
    failure: Arc<Mutex<Option<std::io::Error>>>,
    on_bytes: Option<OnBytes>,
}

impl Writer {
    /// The next message: up to [`CHUNK`] bytes gathered from the source, then the commit.
    /// A failing source ends the stream without a commit (containerd then discards the
    /// write) and leaves its error in `failure`.
    async fn next(mut self) -> Option<(WriteContentRequest, Self)> {
        let mut buffer = BytesMut::new();
        while buffer.len() < CHUNK && !self.ended {
            match self.chunks.next().await {
                Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                Some(Err(error)) => {
                    *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                    return None;
                }
                None => self.ended = true,
            }
        }
        if buffer.is_empty() {
            let commit = self.commit.take()?;
            return Some((commit, self));
        }
        let commit = self.commit.as_ref()?;
        let len = buffer.len() as u64;
        let message = WriteContentRequest {
            action: WriteAction::Write.into(),
            r#ref: commit.r#ref.clone(),
            total: commit.total,
            offset: self.offset as i64,
            data: buffer.to_vec(),
            ..Default::default()
        };
        self.offset += len;
        if let Some(on_bytes) = &self.on_bytes {
            on_bytes(len);
        }
        Some((message, self))
    }
}

impl Containerd {
    /// Whether the content store has `digest`.
    pub(crate) async fn has_content(&self, digest: &str) -> Result<bool, RuntimeError> {
        match ContentClient::new(self.channel.clone())
            .info(self.request(InfoRequest { digest: digest.to_owned() }, None))
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(RuntimeError::Containerd { operation: "content info", status }),
        }
    }

    /// Streams `chunks` into the content store. A blob that is already present counts as
    /// written; content that does not match the digest or size is refused by containerd.
    pub(crate) async fn write_content(
        &self,
        chunks: Chunks,
        blob: BlobWrite<'_>,
        on_bytes: Option<OnBytes>,
    ) -> Result<(), RuntimeError> {
        let reference = format!("outpost-{}", blob.digest.trim_start_matches("sha256:"));
        let mut client = ContentClient::new(self.channel.clone());
        // An earlier attempt cut short may have left a partial write under this ref.
        let _ = client.abort(self.request(AbortRequest { r#ref: reference.clone() }, None)).await;
        let failure = Arc::new(Mutex::new(None));
        let writer = Writer {
            chunks,
            ended: false,
            offset: 0,
            commit: Some(WriteContentRequest {
                action: WriteAction::Commit.into(),
                r#ref: reference,
                total: blob.size as i64,
                offset: blob.size as i64,
                expected: blob.digest.to_owned(),
                labels: blob.labels,
                ..Default::default()
            }),
            failure: failure.clone(),
            on_bytes,
        };
        let messages = futures::stream::unfold(writer, Writer::next);
        let result = match client.write(self.request(messages, Some(blob.lease))).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break Ok(()),
                        Err(status) if status.code() == tonic::Code::AlreadyExists => break Ok(()),
                        Err(status) => break Err(RuntimeError::Containerd { operation: "content write", status }),
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(RuntimeError::Containerd { operation: "content write", status }),
        };
        if let Some(error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(RuntimeError::Source { digest: blob.digest.to_owned(), source: error });
        }
        result
    }

    /// Streams the file at `path` into the content store.
    pub(super) async fn write_file(&self, path: &Path, blob: BlobWrite<'_>) -> Result<(), RuntimeError> {
        let file = tokio::fs::File::open(path).await.map_err(RuntimeError::io(path))?;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, CHUNK).boxed();
        self.write_content(chunks, blob, None).await
    }

    /// Writes `bytes` into the content store.
    pub(super) async fn write_bytes(&self, bytes: Bytes, blob: BlobWrite<'_>) -> Result<(), RuntimeError> {
        self.write_content(futures::stream::iter([Ok(bytes)]).boxed(), blob, None).await
    }
}
