//! Direct methods through the broker: a call to a module or leaf device goes out on
//! `$iothub/methods/POST/{name}/?$rid={rid}` to its connection (when it is connected and
//! subscribed to method requests), and the client's `$iothub/methods/res/{status}/?$rid={rid}`
//! comes back as [`Action::MethodAnswer`]. Whoever called (the HTTPS endpoint, later the
//! cloud) owns the timeout and tells the broker with [`Broker::forget_call`].

use bytes::Bytes;

use super::{Action, Broker};
use crate::mqtt::QoS;

/// A call's id, chosen by the caller.
pub type CallId = u64;

/// The request topic filter a client subscribes to for methods.
const REQUESTS: &str = "$iothub/methods/POST/";
/// The response topic prefix.
const RESPONSES: &str = "$iothub/methods/res/";

/// Why a call could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRefused {
    /// The target has no connection now.
    #[error("{0} is not connected")]
    NotConnected(String),
    /// The target is connected and has not subscribed to `$iothub/methods/POST/#`.
    #[error("{0} does not listen for direct methods (no subscription to $iothub/methods/POST/#)")]
    NotListening(String),
}

/// A pending call: who must answer it.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    call: CallId,
    target: String,
}

/// Reads `$iothub/methods/res/{status}/?$rid={rid}`.
fn response_topic(topic: &str) -> Option<(i32, &str)> {
    let (status, query) = topic.strip_prefix(RESPONSES)?.split_once("/?")?;
    let rid = query.split('&').find_map(|p| p.strip_prefix("$rid="))?;
    Some((status.parse().ok()?, rid))
}

impl Broker {
    /// Delivers call `call` of method `name` with `payload` (JSON) to client `target`
    /// (`{device}/{module}` or `{device}`). Requests go at QoS 0, as IoT Hub sends them: a
    /// call does not outlive its timeout, so it is never stored.
    pub fn invoke(
        &mut self,
        call: CallId,
        target: &str,
        name: &str,
        payload: Bytes,
        out: &mut Vec<Action>,
    ) -> Result<(), CallRefused> {
        let Some(session) = self.sessions.get(target).filter(|s| s.connection.is_some()) else {
            return Err(CallRefused::NotConnected(target.to_owned()));
        };
        let rid = format!("{call:x}");
        let topic = format!("{REQUESTS}{name}/?$rid={rid}");
        if !session.subscriptions.keys().any(|f| crate::mqtt::topic::matches(f, &topic)) {
            return Err(CallRefused::NotListening(target.to_owned()));
        }
        self.calls.insert(rid, Pending { call, target: target.to_owned() });
        self.deliver_private(target, topic, payload, QoS::AtMostOnce, out);
        Ok(())
    }

    /// Forgets call `call` (it timed out or its caller went away); a late answer is ignored.
    pub fn forget_call(&mut self, call: CallId) {
        self.calls.remove(&format!("{call:x}"));
    }

    /// Calls waiting for their answer.
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    /// A method response from `client_id` on `topic`: the answer to its pending call, if any.
    pub(super) fn method_response(&mut self, client_id: &str, topic: &str, payload: &Bytes, out: &mut Vec<Action>) {
        let Some((status, rid)) = response_topic(topic) else {
            tracing::debug!(client = client_id, topic, "not a method response topic; ignored");
            return;
        };
        match self.calls.get(rid) {
            Some(pending) if pending.target == client_id => {
                let call = pending.call;
                self.calls.remove(rid);
                out.push(Action::MethodAnswer { call, status, payload: payload.clone() });
            }
            _ => tracing::debug!(client = client_id, rid, "a method response nobody waits for; ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_topics_are_read_strictly() {
        assert_eq!(response_topic("$iothub/methods/res/200/?$rid=1f"), Some((200, "1f")));
        assert_eq!(response_topic("$iothub/methods/res/-1/?$rid=2&x=y"), Some((-1, "2")));
        assert_eq!(response_topic("$iothub/methods/res/ok/?$rid=1"), None);
        assert_eq!(response_topic("$iothub/methods/res/200/"), None);
        assert_eq!(response_topic("$iothub/methods/res/200/?rid=1"), None);
    }
}
