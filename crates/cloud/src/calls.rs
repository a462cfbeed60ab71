//! Direct method calls waiting for their answer: each call gets an id (the AMQP correlation
//! id of its request); the method-response consumer completes it; a caller that stops
//! waiting (timeout, cancelled request) forgets it through a drop guard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A method's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodAnswer {
    /// The status the method returned.
    pub status: i32,
    /// Its JSON payload.
    pub payload: Vec<u8>,
}

/// The pending calls.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<MethodAnswer>>>>,
}

/// A registered call: its id, the answer to wait for, and the guard that forgets it.
#[derive(Debug)]
pub struct Pending {
    /// The call id.
    pub id: String,
    /// Resolves with the answer.
    pub answer: oneshot::Receiver<MethodAnswer>,
    calls: Calls,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.id);
    }
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<MethodAnswer>>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new call.
    pub fn register(&self) -> Pending {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        Pending { id, answer: rx, calls: self.clone() }
    }

    /// Completes call `id`; false when nobody waits for it (late or unknown answers).
    pub fn complete(&self, id: &str, answer: MethodAnswer) -> bool {
        match self.lock().remove(id) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Calls waiting.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_reach_their_caller_and_abandoned_calls_are_forgotten() {
        let calls = Calls::default();
        let mut pending = calls.register();
        assert!(calls.complete(&pending.id, MethodAnswer { status: 200, payload: b"{}".to_vec() }));
        assert_eq!((&mut pending.answer).await.unwrap().status, 200);
        drop(pending);
        assert_eq!(calls.waiting(), 0);
        let abandoned = calls.register();
        let id = abandoned.id.clone();
        drop(abandoned);
        assert_eq!(calls.waiting(), 0);
        assert!(!calls.complete(&id, MethodAnswer { status: 200, payload: Vec::new() }));
    }
}
