//! A connection's outbox: encoded frames from the broker task to the connection task. A
//! mutex-guarded deque and a notification instead of a channel, because an idle connection's
//! outbox then costs no buffer at all (a channel allocates its first block of slots up front,
//! over a kilobyte per connection).

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Frames waiting for one connection.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    closed: bool,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// `limit` frames are already waiting.
    Full,
    /// The outbox was closed.
    Closed,
}

impl Outbox {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `frame` unless `limit` frames wait already or the outbox is closed.
    pub(super) fn push(&self, frame: Bytes, limit: usize) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= limit {
            return Err(Refused::Full);
        }
        state.frames.push_back(frame);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// No more frames: the connection closes once those queued are written.
    pub(super) fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Waits for frames and moves them into `out` (up to about `max` bytes); `false` once the
    /// outbox is closed and empty.
    pub(super) async fn take(&self, out: &mut BytesMut, max: usize) -> bool {
        loop {
            {
                let mut state = self.state();
                while out.len() < max {
                    let Some(frame) = state.frames.pop_front() else { break };
                    out.extend_from_slice(&frame);
                }
                if state.frames.is_empty() && state.frames.capacity() > 64 {
                    // A burst is over: give its room back.
                    state.frames.shrink_to(16);
                }
                if !out.is_empty() {
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_then_the_close() {
        let outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"ab"), 2).unwrap();
        outbox.push(Bytes::from_static(b"c"), 2).unwrap();
        assert_eq!(outbox.push(Bytes::from_static(b"d"), 2), Err(Refused::Full));
        outbox.close();
        assert_eq!(outbox.push(Bytes::from_static(b"e"), 2), Err(Refused::Closed));
        let mut out = BytesMut::new();
        assert!(outbox.take(&mut out, 1024).await);
        assert_eq!(&out[..], b"abc", "queued frames still go out after the close");
        out.clear();
        assert!(!outbox.take(&mut out, 1024).await);
    }
}
