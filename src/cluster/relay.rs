//! Worker-to-worker messages among the workers of one cluster app, as the
//! primaries of Socket.IO's cluster packages relay them (`setupPrimary()`
//! of `@socket.io/cluster-adapter` and of `@socket.io/cluster-engine`): a
//! message goes to every other worker, or, when it answers a request, to
//! the one worker that asked.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;

/// One family of relayed messages: how they are marked, how a worker names
/// itself in them, and how an answer names its recipient.
struct Family {
    marker_key: &'static str,
    marker: &'static str,
    sender_key: &'static str,
    recipient_key: &'static str,
}

const FAMILIES: [Family; 2] = [
    // @socket.io/cluster-adapter: `uid` per namespace, answers carry `requesterUid`.
    Family {
        marker_key: "source",
        marker: "_sio_adapter",
        sender_key: "uid",
        recipient_key: "requesterUid",
    },
    // @socket.io/cluster-engine: `senderId`, directed messages carry `recipientId`.
    Family {
        marker_key: "_source",
        marker: "_eio",
        sender_key: "senderId",
        recipient_key: "recipientId",
    },
];

fn family(msg: &Value) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| msg.get(f.marker_key).and_then(Value::as_str) == Some(f.marker))
}

/// Whether a worker's message is one to relay rather than the app's own.
pub fn is_relayed(msg: &Value) -> bool {
    family(msg).is_some()
}

struct Peer {
    tx: mpsc::UnboundedSender<Value>,
    /// The names this worker has used as a sender.
    names: HashSet<String>,
}

#[derive(Default)]
pub struct Relay {
    peers: Mutex<HashMap<u64, Peer>>,
}

impl Relay {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn join(&self, worker: u64, tx: mpsc::UnboundedSender<Value>) {
        self.lock().insert(
            worker,
            Peer {
                tx,
                names: HashSet::new(),
            },
        );
    }

    pub fn leave(&self, worker: u64) {
        self.lock().remove(&worker);
    }

    /// Relays `msg` from `from` to the workers it is meant for.
    pub fn forward(&self, from: u64, msg: Value) {
        let Some(f) = family(&msg) else {
            return;
        };
        let mut peers = self.lock();
        if let (Some(p), Some(name)) = (
            peers.get_mut(&from),
            msg.get(f.sender_key).and_then(Value::as_str),
        ) {
            if !p.names.contains(name) {
                p.names.insert(name.to_owned());
            }
        }
        let recipient = msg.get(f.recipient_key).and_then(Value::as_str);
        for t in targets(&peers, from, recipient) {
            if let Some(p) = peers.get(&t) {
                let _ = p.tx.send(msg.clone());
            }
        }
    }
}

/// The answer's one recipient when it names a known worker, else every
/// worker but the sender.
fn targets(peers: &HashMap<u64, Peer>, from: u64, recipient: Option<&str>) -> Vec<u64> {
    if let Some(r) = recipient {
        if let Some((t, _)) = peers.iter().find(|(_, p)| p.names.contains(r)) {
            return vec![*t];
        }
    }
    let mut v: Vec<u64> = peers.keys().copied().filter(|t| *t != from).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn peer(relay: &Relay, id: u64) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        relay.join(id, tx);
        rx
    }

    #[test]
    fn broadcasts_go_to_the_others_and_answers_to_the_asker() {
        let relay = Relay::default();
        let mut a = peer(&relay, 1);
        let mut b = peer(&relay, 2);
        let mut c = peer(&relay, 3);
        let ask = json!({"source": "_sio_adapter", "type": 7, "uid": "A1", "data": {}});
        relay.forward(1, ask.clone());
        assert!(a.try_recv().is_err(), "never back to the sender");
        assert_eq!(b.try_recv().unwrap(), ask);
        assert_eq!(c.try_recv().unwrap(), ask);
        let answer =
            json!({"source": "_sio_adapter", "type": 8, "uid": "C1", "requesterUid": "A1"});
        relay.forward(3, answer.clone());
        assert_eq!(a.try_recv().unwrap(), answer);
        assert!(b.try_recv().is_err());
        relay.leave(2);
        relay.forward(1, ask.clone());
        assert!(c.try_recv().is_ok());
    }

    #[test]
    fn engine_messages_and_app_messages() {
        let relay = Relay::default();
        let mut a = peer(&relay, 1);
        let mut b = peer(&relay, 2);
        relay.forward(1, json!({"_source": "_eio", "senderId": "n1"}));
        assert!(b.try_recv().is_ok());
        let direct = json!({"_source": "_eio", "senderId": "n2", "recipientId": "n1"});
        relay.forward(2, direct.clone());
        assert_eq!(a.try_recv().unwrap(), direct);
        assert!(!is_relayed(&json!({"type": "process:msg"})));
        assert!(!is_relayed(&json!("ready")));
        relay.forward(1, json!({"cmd": "x"}));
        assert!(
            b.try_recv().is_err(),
            "the app's own messages are not relayed"
        );
    }
}
