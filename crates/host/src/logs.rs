//! Services' output files (`{log_dir}/{service}.log`): reading the last lines, following
//! new ones, and size-based rotation. The writers (a child process, containerd's shim)
//! append with O_APPEND, so rotation copies the file aside and truncates it in place.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

/// The last `tail` lines of `path` (all of them for 0), and the offset where they end.
pub fn tail(path: &Path, tail: usize) -> std::io::Result<(Vec<String>, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let end = bytes.len() as u64;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let skip = if tail == 0 { 0 } else { lines.len().saturating_sub(tail) };
    Ok((lines.into_iter().skip(skip).collect(), end))
}

/// Sends the lines appended to `path` after `offset` until `lines` is closed; starts again
/// from the top when the file is truncated (rotated).
pub async fn follow(path: PathBuf, mut offset: u64, lines: mpsc::Sender<String>) {
    let mut partial = String::new();
    loop {
        if lines.is_closed() {
            return;
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0;
            partial.clear();
        }
        if len > offset {
            let mut chunk = Vec::new();
            let read = std::fs::File::open(&path).and_then(|mut f| {
                f.seek(SeekFrom::Start(offset))?;
                f.take(len - offset).read_to_end(&mut chunk)
            });
            if read.is_ok() {
                offset += chunk.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(newline) = partial.find('\n') {
                    let line: String = partial.drain(..=newline).collect();
                    if lines.send(line.trim_end_matches('\n').to_owned()).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rotates `path` when it is larger than `max_bytes`: `.1` … `.{keep-1}` hold older output.
pub fn rotate_if_large(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<bool> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(false) };
    if meta.len() <= max_bytes || keep < 2 {
        return Ok(false);
    }
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    for n in (1..keep - 1).rev() {
        let _ = std::fs::rename(numbered(n), numbered(n + 1));
    }
    std::fs::copy(path, numbered(1))?;
    std::fs::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        assert_eq!(tail(&path, 5).unwrap().0, Vec::<String>::new());
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2).unwrap(), (vec!["b".to_owned(), "c".to_owned()], 6));
        assert_eq!(tail(&path, 0).unwrap().0.len(), 3);
        assert!(!rotate_if_large(&path, 100, 3).unwrap());
        assert!(rotate_if_large(&path, 2, 3).unwrap());
        assert_eq!(std::fs::read_to_string(dir.path().join("hub.log.1")).unwrap(), "a\nb\nc\n");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        std::fs::write(&path, "d\n").unwrap();
        assert!(rotate_if_large(&path, 1, 3).unwrap());
        assert_eq!(std::fs::read_to_string(dir.path().join("hub.log.2")).unwrap(), "a\nb\nc\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("hub.log.1")).unwrap(), "d\n");
    }

    #[tokio::test]
    async fn follow_sends_appended_lines_and_survives_truncation() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.log");
        std::fs::write(&path, "old\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(follow(path.clone(), 4, tx));
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"new 1\nnew").unwrap();
        assert_eq!(rx.recv().await.unwrap(), "new 1");
        file.write_all(b" 2\n").unwrap();
        assert_eq!(rx.recv().await.unwrap(), "new 2");
        file.set_len(0).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        file.write_all(b"after\n").unwrap();
        assert_eq!(rx.recv().await.unwrap(), "after");
        drop(rx);
        task.await.unwrap();
    }
}
