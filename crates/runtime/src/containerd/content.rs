//! Writing blobs into containerd's content store, streamed in chunks and verified by digest.

use std::collections::HashMap;
use std::path::Path;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{WriteAction, WriteContentRequest};
use tokio::io::AsyncReadExt as _;

use super::Containerd;
use crate::error::RuntimeError;

/// Bytes per write message.
const CHUNK: usize = 1 << 20;

impl Containerd {
    /// Streams the file at `path` into the content store as `digest` (`size` bytes) with
    /// `labels`. A blob that is already present counts as written; a file whose content does
    /// not match `digest` is refused by containerd.
    pub(super) async fn write_blob(
        &self,
        path: &Path,
        digest: &str,
        size: u64,
        labels: HashMap<String, String>,
        lease: &str,
    ) -> Result<(), RuntimeError> {
        let file = tokio::fs::File::open(path).await.map_err(RuntimeError::io(path))?;
        let reference = format!("outpost-{}", digest.trim_start_matches("sha256:"));
        // Chunks are read as the stream is sent: a layer is never held in memory whole.
        // containerd checks the digest and size on commit.
        let commit = WriteContentRequest {
            action: WriteAction::Commit.into(),
            r#ref: reference.clone(),
            total: size as i64,
            offset: size as i64,
            expected: digest.to_owned(),
            labels,
            ..Default::default()
        };
        let chunks = futures::stream::unfold((file, 0u64, false), move |(mut file, offset, done)| {
            let reference = reference.clone();
            async move {
                if done {
                    return None;
                }
                let mut data = vec![0u8; CHUNK];
                match file.read(&mut data).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        data.truncate(n);
                        let message = WriteContentRequest {
                            action: WriteAction::Write.into(),
                            r#ref: reference,
                            total: size as i64,
                            offset: offset as i64,
                            data,
                            ..Default::default()
                        };
                        Some((message, (file, offset + n as u64, false)))
                    }
                }
            }
        });
        let messages = futures::StreamExt::chain(chunks, futures::stream::iter([commit]));
        let request = self.request(messages, Some(lease));
        let mut client = ContentClient::new(self.channel.clone());
        match client.write(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(status) if status.code() == tonic::Code::AlreadyExists => break,
                        Err(status) => return Err(RuntimeError::Containerd { operation: "content write", status }),
                    }
                }
                Ok(())
            }
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(RuntimeError::Containerd { operation: "content write", status }),
        }
    }
}
