//! The messages of Node's IPC channel in JSON serialization mode (one JSON
//! value per line), as a Node 20 cluster worker sends and expects them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// What a worker's message means to the primary.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerMessage {
    /// `cluster` set up in the worker.
    Online,
    /// `server.listen()` wants a listening socket.
    QueryServer(ServerQuery),
    /// A server of the worker is listening (the readiness signal).
    Listening { address: String },
    /// A server of the worker was closed.
    Close { key: String },
    /// The worker disconnected on its own (`worker.disconnect()`).
    ExitedAfterDisconnect,
    /// Acknowledges a handle we sent.
    HandleAck,
    /// The worker could not take a handle we sent.
    HandleNack,
    /// The pmr preload's periodic report on the Node.js runtime.
    Metrics(NodeReport),
    /// The preload's answer to the health check of a path with this id.
    HealthResult { id: u64, answer: PathAnswer },
    /// The worker's answer to a connection we handed it (`newconn`).
    ConnAck { seq: u64, accepted: bool },
    /// The preload's batched counts of this worker's connections that began
    /// and that ended since its last report.
    Conns { opened: u64, closed: u64 },
    /// The worker accepts from the overflow socket of this steered key.
    OverflowHeld { key: String },
    /// The client of this Engine.IO session joined a Socket.IO namespace.
    SessionJoined { sid: String },
    /// The app called `@socket.io/sticky`'s `setupWorker` and never
    /// `listen()`: the supervisor is to serve this port for it.
    StickyPrimary { port: u16 },
    /// Another internal message we have no use for.
    OtherInternal,
    /// The app's own `process.send()` payload.
    App(Value),
}

/// What the preload (`preload/drain.js`) reports about a worker's runtime:
/// `{"cmd":"NODE_PMR","act":"metrics","interval":1000,"lag":0.4,...}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeReport {
    /// How late the report's own timer fired, in milliseconds.
    pub lag_ms: f64,
    pub heap_used: u64,
    pub heap_total: u64,
    pub handles: u32,
    /// How often the preload reports, in milliseconds.
    pub interval_ms: u64,
}

/// The fields of a `queryServer` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerQuery {
    pub seq: u64,
    /// Host or path; None means "any address" (dual-stack like Node's own primary).
    pub address: Option<String>,
    /// -1 for a Unix socket path.
    pub port: i64,
    /// 4, 6, or -1 for a path.
    pub address_type: i64,
    /// Set when the app listens on an inherited fd.
    pub fd: Option<i64>,
    pub index: i64,
    pub ipv6_only: bool,
    pub backlog: i32,
}

impl ServerQuery {
    /// The key Node's own primary uses, so that workers asking for the same
    /// address share one socket while several `listen(0)` in one worker do not.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.address.as_deref().unwrap_or("null"),
            self.port,
            self.address_type,
            self.fd
                .map(|f| f.to_string())
                .unwrap_or_else(|| "undefined".into()),
            self.index
        )
    }

    pub fn is_path(&self) -> bool {
        self.address_type == -1 || self.port < 0
    }

    pub fn describe(&self) -> String {
        match (&self.address, self.is_path()) {
            (Some(p), true) => p.clone(),
            (Some(a), false) if a.contains(':') => format!("[{a}]:{}", self.port),
            (Some(a), false) => format!("{a}:{}", self.port),
            (None, _) => format!("*:{}", self.port),
        }
    }
}

pub fn parse(line: &[u8]) -> Result<WorkerMessage, String> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| format!("invalid JSON on the IPC channel: {e}"))?;
    Ok(classify(v))
}

fn classify(v: Value) -> WorkerMessage {
    let cmd = v.get("cmd").and_then(Value::as_str).unwrap_or("");
    if !cmd.starts_with("NODE_") {
        return WorkerMessage::App(v);
    }
    match cmd {
        "NODE_HANDLE_ACK" => return WorkerMessage::HandleAck,
        "NODE_HANDLE_NACK" => return WorkerMessage::HandleNack,
        "NODE_PMR" => return pmr_message(&v),
        "NODE_CLUSTER" => {}
        _ => return WorkerMessage::OtherInternal,
    }
    let str_field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let int_field = |k: &str| v.get(k).and_then(Value::as_i64);
    // `{ack: <seq of our newconn>, accepted}` is the only worker message
    // without an `act`.
    if let (None, Some(seq)) = (v.get("act"), v.get("ack").and_then(Value::as_u64)) {
        return WorkerMessage::ConnAck {
            seq,
            accepted: v.get("accepted").and_then(Value::as_bool) == Some(true),
        };
    }
    match v.get("act").and_then(Value::as_str).unwrap_or("") {
        "online" => WorkerMessage::Online,
        "queryServer" => WorkerMessage::QueryServer(ServerQuery {
            seq: v.get("seq").and_then(Value::as_u64).unwrap_or(0),
            address: str_field("address"),
            port: int_field("port").unwrap_or(0),
            address_type: int_field("addressType").unwrap_or(4),
            fd: int_field("fd"),
            index: int_field("index").unwrap_or(0),
            ipv6_only: v
                .get("flags")
                .and_then(Value::as_i64)
                .is_some_and(|f| f & 1 != 0),
            backlog: int_field("backlog")
                .filter(|b| *b > 0)
                .map(|b| b.min(i32::MAX as i64) as i32)
                .unwrap_or(511),
        }),
        "listening" => {
            let port = int_field("port").unwrap_or(0);
            let address = match (str_field("address"), port) {
                (Some(a), p) if p < 0 => a,
                (Some(a), p) if a.contains(':') => format!("[{a}]:{p}"),
                (Some(a), p) => format!("{a}:{p}"),
                (None, p) => format!("*:{p}"),
            };
            WorkerMessage::Listening { address }
        }
        "close" => WorkerMessage::Close {
            key: str_field("key").unwrap_or_default(),
        },
        "exitedAfterDisconnect" => WorkerMessage::ExitedAfterDisconnect,
        _ => WorkerMessage::OtherInternal,
    }
}

fn pmr_message(v: &Value) -> WorkerMessage {
    match v.get("act").and_then(Value::as_str) {
        Some("metrics") => {}
        Some("health-result") => {
            return match v.get("id").and_then(Value::as_u64) {
                Some(id) => WorkerMessage::HealthResult {
                    id,
                    answer: path_answer(v),
                },
                None => WorkerMessage::OtherInternal,
            }
        }
        Some("conns") => {
            let count = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            return WorkerMessage::Conns {
                opened: count("opened"),
                closed: count("closed"),
            };
        }
        Some("overflow") => {
            return match v.get("key").and_then(Value::as_str) {
                Some(key) => WorkerMessage::OverflowHeld {
                    key: key.to_owned(),
                },
                None => WorkerMessage::OtherInternal,
            }
        }
        Some("joined") => {
            return match v
                .get("sid")
                .and_then(Value::as_str)
                .filter(|s| crate::cluster::sticky::is_session_id(s.as_bytes()))
            {
                Some(sid) => WorkerMessage::SessionJoined {
                    sid: sid.to_owned(),
                },
                None => WorkerMessage::OtherInternal,
            }
        }
        Some("sticky") => {
            return match v
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
            {
                Some(port) => WorkerMessage::StickyPrimary { port },
                None => WorkerMessage::OtherInternal,
            }
        }
        _ => return WorkerMessage::OtherInternal,
    }
    // Figures a worker cannot report (negative, not numbers) count as 0:
    // the message comes from code running inside the app.
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite() && *x >= 0.0)
            .unwrap_or(0.0)
    };
    WorkerMessage::Metrics(NodeReport {
        lag_ms: num("lag"),
        heap_used: num("heap_used") as u64,
        heap_total: num("heap_total") as u64,
        handles: num("handles").min(u32::MAX as f64) as u32,
        interval_ms: num("interval") as u64,
    })
}

/// Tells the preload how often to report (`metrics.interval` changed).
pub fn metrics_interval(ms: u64) -> Value {
    json!({ "cmd": "NODE_PMR", "act": "metrics", "interval": ms })
}

/// What the preload found when it carried out a health check of a path
/// inside the instance (see `preload/health.js`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAnswer {
    /// The GET was answered: its status, and for a failure the start of
    /// the body.
    Status { status: u16, body: String },
    /// The GET failed inside the instance (refused, reset, its own timeout).
    Error(String),
    /// The instance has no HTTP server listening yet.
    Waiting,
}

/// The answer is written by code running inside the app: anything that is
/// not a status or an error reads as an error.
fn path_answer(v: &Value) -> PathAnswer {
    if v.get("waiting").and_then(Value::as_bool) == Some(true) {
        return PathAnswer::Waiting;
    }
    if let Some(status) = v
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
    {
        let body = v.get("body").and_then(Value::as_str).unwrap_or_default();
        return PathAnswer::Status {
            status,
            body: body.chars().take(BODY_SHOWN).collect(),
        };
    }
    let error = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no status");
    PathAnswer::Error(error.chars().take(BODY_SHOWN).collect())
}

/// How much of an answer's body or error text is kept.
const BODY_SHOWN: usize = 200;

/// A fresh id for each health check, unique in the daemon, so that a late
/// answer is never taken for the answer to a later check.
pub fn next_check_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Asks the preload to GET `path` from the instance's own HTTP server and
/// answer with `id` within `timeout_ms`.
pub fn health_check_request(id: u64, path: &str, timeout_ms: u64) -> Value {
    json!({ "cmd": "NODE_PMR", "act": "health-check", "id": id, "path": path, "timeout": timeout_ms })
}

/// The answer to a `queryServer` that succeeded; the socket travels with it.
pub fn handle_reply(query: &ServerQuery, seq: u64) -> Value {
    json!({
        "cmd": "NODE_HANDLE",
        "type": "net.Native",
        "msg": {
            "cmd": "NODE_CLUSTER",
            "errno": 0,
            "key": query.key(),
            "ack": query.seq,
            "data": null,
            "seq": seq,
        }
    })
}

/// The answer to a `queryServer` on a balanced app: no handle, which puts
/// the worker's server in Node's round-robin mode (it then gets each
/// connection as a `newconn`); `sockname` feeds its `server.address()`.
pub fn round_robin_reply(query: &ServerQuery, sockname: Option<Value>, seq: u64) -> Value {
    let mut v = json!({
        "cmd": "NODE_CLUSTER",
        "errno": 0,
        "key": query.key(),
        "ack": query.seq,
        "data": null,
        "seq": seq,
    });
    if let (Some(s), Some(o)) = (sockname, v.as_object_mut()) {
        o.insert("sockname".into(), s);
    }
    v
}

/// A steered address's overflow socket (see `reuseport`), which the worker's
/// preload accepts from beside its own and then confirms with an
/// `overflow` message of the same key; its descriptor travels with it.
pub fn overflow_handle(key: &str) -> Value {
    json!({
        "cmd": "NODE_HANDLE",
        "type": "net.Native",
        "msg": { "cmd": "NODE_PMR", "act": "overflow", "key": key },
    })
}

/// One accepted connection for a worker; its descriptor travels with it and
/// the worker answers `{ack: seq, accepted}`.
pub fn newconn(key: &str, seq: u64) -> Value {
    json!({
        "cmd": "NODE_HANDLE",
        "type": "net.Native",
        "msg": { "cmd": "NODE_CLUSTER", "act": "newconn", "key": key, "seq": seq },
    })
}

/// A connection for a worker's `setupWorker`, as `@socket.io/sticky`'s
/// setupMaster sends it with `worker.send(msg, socket)`: Node's message for a
/// `net.Socket` handle (the descriptor travels with it, the worker answers
/// NODE_HANDLE_ACK), carrying the bytes already read as a string.
pub fn sticky_connection(first: &[u8]) -> Value {
    json!({
        "cmd": "NODE_HANDLE",
        "type": "net.Socket",
        "msg": { "type": "sticky:connection", "data": String::from_utf8_lossy(first) },
    })
}

/// The answer to a `queryServer` that failed: `errno` is a negative libuv
/// code (-EADDRINUSE ...), which the worker turns into the usual error event.
pub fn error_reply(query: &ServerQuery, errno: i32, seq: u64) -> Value {
    json!({
        "cmd": "NODE_CLUSTER",
        "errno": -errno.abs(),
        "key": query.key(),
        "ack": query.seq,
        "data": null,
        "seq": seq,
    })
}

/// Asks a worker to close its servers and disconnect, as `worker.disconnect()` does.
pub fn disconnect(seq: u64) -> Value {
    json!({ "cmd": "NODE_CLUSTER", "act": "disconnect", "seq": seq })
}

/// PM2's `sendDataToProcessId` packet as the instance receives it: an
/// object with `topic` and `data` (PM2 refuses one without either), typed
/// `process:msg` unless it names its own type, and carrying the target `id`.
pub fn process_message(id: u32, packet: Value) -> Result<Value, String> {
    let Value::Object(mut o) = packet else {
        return Err(
            "sendDataToProcessId: the packet must be an object like { topic, data }".into(),
        );
    };
    for key in ["topic", "data"] {
        if o.get(key).is_none_or(Value::is_null) {
            return Err(format!(
                "sendDataToProcessId: the packet has no '{key}' (PM2's packets are {{ type: 'process:msg', topic, data }})"
            ));
        }
    }
    o.entry("type").or_insert_with(|| json!("process:msg"));
    o.insert("id".into(), json!(id));
    Ok(Value::Object(o))
}

/// Serializes a message as the JSON channel expects it: one line.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_joins_name_a_valid_session() {
        let m =
            parse(br#"{"cmd":"NODE_PMR","act":"joined","sid":"Zx-_0123456789abcdeF"}"#).unwrap();
        assert_eq!(
            m,
            WorkerMessage::SessionJoined {
                sid: "Zx-_0123456789abcdeF".into()
            }
        );
        for bad in [
            r#"{"cmd":"NODE_PMR","act":"joined"}"#,
            r#"{"cmd":"NODE_PMR","act":"joined","sid":""}"#,
            r#"{"cmd":"NODE_PMR","act":"joined","sid":"a b"}"#,
            r#"{"cmd":"NODE_PMR","act":"joined","sid":7}"#,
        ] {
            assert_eq!(
                parse(bad.as_bytes()).unwrap(),
                WorkerMessage::OtherInternal,
                "{bad}"
            );
        }
    }

    #[test]
    fn sticky_primary_requests_and_handoffs() {
        let m = parse(br#"{"cmd":"NODE_PMR","act":"sticky","port":8080}"#).unwrap();
        assert_eq!(m, WorkerMessage::StickyPrimary { port: 8080 });
        for bad in [
            r#"{"cmd":"NODE_PMR","act":"sticky","port":0}"#,
            r#"{"cmd":"NODE_PMR","act":"sticky","port":70000}"#,
            r#"{"cmd":"NODE_PMR","act":"sticky"}"#,
        ] {
            assert_eq!(parse(bad.as_bytes()).unwrap(), WorkerMessage::OtherInternal);
        }
        let h = sticky_connection(b"GET /socket.io/?EIO=4 HTTP/1.1\r\n");
        assert_eq!(h["type"], "net.Socket");
        assert_eq!(h["msg"]["type"], "sticky:connection");
        assert_eq!(h["msg"]["data"], "GET /socket.io/?EIO=4 HTTP/1.1\r\n");
    }

    #[test]
    fn health_results_from_the_preload() {
        let r = |line: &str| parse(line.as_bytes()).unwrap();
        assert_eq!(
            r(r#"{"cmd":"NODE_PMR","act":"health-result","id":7,"status":200}"#),
            WorkerMessage::HealthResult {
                id: 7,
                answer: PathAnswer::Status {
                    status: 200,
                    body: String::new()
                }
            }
        );
        assert_eq!(
            r(r#"{"cmd":"NODE_PMR","act":"health-result","id":8,"status":503,"body":"db down"}"#),
            WorkerMessage::HealthResult {
                id: 8,
                answer: PathAnswer::Status {
                    status: 503,
                    body: "db down".into()
                }
            }
        );
        assert_eq!(
            r(r#"{"cmd":"NODE_PMR","act":"health-result","id":9,"waiting":true}"#),
            WorkerMessage::HealthResult {
                id: 9,
                answer: PathAnswer::Waiting
            }
        );
        // Whatever else the app's side writes is an error, bounded.
        let long = "x".repeat(5000);
        let WorkerMessage::HealthResult { answer, .. } = r(&format!(
            r#"{{"cmd":"NODE_PMR","act":"health-result","id":1,"status":"200","error":"{long}"}}"#
        )) else {
            panic!()
        };
        assert_eq!(answer, PathAnswer::Error("x".repeat(BODY_SHOWN)));
        assert_eq!(
            r(r#"{"cmd":"NODE_PMR","act":"health-result","status":200}"#),
            WorkerMessage::OtherInternal
        );
        let q = health_check_request(3, "/healthz", 2000);
        assert_eq!(q["act"], "health-check");
        assert_eq!(q["id"], 3);
        assert_eq!(q["path"], "/healthz");
        assert_eq!(q["timeout"], 2000);
        assert_ne!(next_check_id(), next_check_id());
    }

    #[test]
    fn query_server_as_node_20_sends_it() {
        let m = parse(br#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":null,"port":3999,"addressType":4,"backlog":511,"seq":1}"#).unwrap();
        let WorkerMessage::QueryServer(q) = m else {
            panic!("{m:?}")
        };
        assert_eq!(q.seq, 1);
        assert_eq!(q.port, 3999);
        assert_eq!(q.address, None);
        assert_eq!(q.key(), "null:3999:4:undefined:0");
        assert_eq!(q.describe(), "*:3999");
        assert_eq!(q.backlog, 511);

        let reply = handle_reply(&q, 5);
        assert_eq!(reply["msg"]["ack"], 1);
        assert_eq!(reply["msg"]["key"], "null:3999:4:undefined:0");
        assert_eq!(reply["type"], "net.Native");
        let err = error_reply(&q, 98, 6);
        assert_eq!(err["errno"], -98);
        assert_eq!(err["ack"], 1);
    }

    #[test]
    fn unix_socket_query() {
        let m = parse(br#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"address":"/tmp/x.sock","port":-1,"addressType":-1,"seq":3}"#).unwrap();
        let WorkerMessage::QueryServer(q) = m else {
            panic!()
        };
        assert!(q.is_path());
        assert_eq!(q.describe(), "/tmp/x.sock");
    }

    #[test]
    fn classification() {
        assert_eq!(
            parse(br#""ready""#).unwrap(),
            WorkerMessage::App(json!("ready"))
        );
        assert_eq!(
            parse(br#"{"cmd":"hello","x":1}"#).unwrap(),
            WorkerMessage::App(json!({"cmd":"hello","x":1}))
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_CLUSTER","act":"online","seq":0}"#).unwrap(),
            WorkerMessage::Online
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_HANDLE_ACK"}"#).unwrap(),
            WorkerMessage::HandleAck
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_CLUSTER","act":"listening","address":"::","port":80,"addressType":6,"seq":2}"#).unwrap(),
            WorkerMessage::Listening { address: "[::]:80".into() }
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_CLUSTER","act":"exitedAfterDisconnect","seq":4}"#).unwrap(),
            WorkerMessage::ExitedAfterDisconnect
        );
        assert!(parse(b"{nope").is_err());
    }

    #[test]
    fn preload_metrics_report() {
        let m = parse(br#"{"cmd":"NODE_PMR","act":"metrics","interval":1000,"lag":1.5,"heap_used":4000000,"heap_total":6000000,"handles":3}"#).unwrap();
        assert_eq!(
            m,
            WorkerMessage::Metrics(NodeReport {
                lag_ms: 1.5,
                heap_used: 4_000_000,
                heap_total: 6_000_000,
                handles: 3,
                interval_ms: 1000,
            })
        );
        let WorkerMessage::Metrics(r) =
            parse(br#"{"cmd":"NODE_PMR","act":"metrics","lag":-3,"heap_used":"x"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!((r.lag_ms, r.heap_used, r.interval_ms), (0.0, 0, 0));
        assert_eq!(
            parse(br#"{"cmd":"NODE_PMR","act":"drain"}"#).unwrap(),
            WorkerMessage::OtherInternal
        );
    }

    #[test]
    fn connection_hand_off_as_node_20_speaks_it() {
        let q = ServerQuery {
            seq: 2,
            address: None,
            port: 80,
            address_type: 4,
            fd: None,
            index: 0,
            ipv6_only: false,
            backlog: 511,
        };
        let r = round_robin_reply(&q, Some(json!({"port": 80})), 7);
        assert_eq!((r["ack"].clone(), r["errno"].clone()), (json!(2), json!(0)));
        assert_eq!(r["sockname"]["port"], 80);
        assert!(r.get("msg").is_none(), "no handle: round-robin mode");
        let c = newconn(&q.key(), 8);
        assert_eq!(c["msg"]["act"], "newconn");
        assert_eq!(c["msg"]["key"], "null:80:4:undefined:0");
        assert_eq!(
            parse(br#"{"cmd":"NODE_CLUSTER","ack":8,"accepted":true,"seq":3}"#).unwrap(),
            WorkerMessage::ConnAck {
                seq: 8,
                accepted: true
            }
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_CLUSTER","ack":8,"accepted":false,"seq":3}"#).unwrap(),
            WorkerMessage::ConnAck {
                seq: 8,
                accepted: false
            }
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_PMR","act":"overflow","key":"null:80:4:undefined:0"}"#).unwrap(),
            WorkerMessage::OverflowHeld {
                key: "null:80:4:undefined:0".into()
            }
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_PMR","act":"conns","closed":4}"#).unwrap(),
            WorkerMessage::Conns {
                opened: 0,
                closed: 4
            }
        );
        assert_eq!(
            parse(br#"{"cmd":"NODE_PMR","act":"conns","opened":9,"closed":4}"#).unwrap(),
            WorkerMessage::Conns {
                opened: 9,
                closed: 4
            }
        );
    }

    #[test]
    fn process_messages_as_pm2_delivers_them() {
        let p = process_message(3, json!({"topic": "cfg", "data": {"a": 1}})).unwrap();
        assert_eq!(
            p,
            json!({"type": "process:msg", "topic": "cfg", "data": {"a": 1}, "id": 3})
        );
        let own = process_message(1, json!({"type": "x", "topic": true, "data": 0})).unwrap();
        assert_eq!(own["type"], "x");
        assert!(process_message(1, json!({"data": 1}))
            .unwrap_err()
            .contains("no 'topic'"));
        assert!(process_message(1, json!("hi"))
            .unwrap_err()
            .contains("must be an object"));
    }

    #[test]
    fn encoding_is_one_line() {
        let line = encode(&json!({"a":"x\ny"}));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(*line.last().unwrap(), b'\n');
    }
}
