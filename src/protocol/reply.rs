//! What the daemon answers: the reply envelope (a result or an error, never
//! both, never neither) and the typed result of every request, written by the
//! request handler and read back by the CLI and the JS API as the same types.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, ErrorBody, Result};
use crate::model::{Description, InstanceInfo, RecentLines, Report};
use crate::settings::AllSettings;

/// What the daemon writes back for a request: `{v, id, ok: true, result}` or
/// `{v, id, ok: false, error: {code, message}}` on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T = Value> {
    pub v: u32,
    pub id: u64,
    pub outcome: Outcome<T>,
}

/// A request's outcome: its result, or the error that stopped it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T = Value> {
    Ok(T),
    Err(ErrorBody),
}

impl<T> Reply<T> {
    pub fn new(v: u32, id: u64, result: Result<T>) -> Self {
        let outcome = match result {
            Ok(r) => Outcome::Ok(r),
            Err(e) => Outcome::Err(e.to_wire()),
        };
        Reply { v, id, outcome }
    }
}

impl Reply<Value> {
    /// The result as the type the request answers with, or the daemon's
    /// error rebuilt with its code. Both clients read replies through this.
    pub fn into_result<R: DeserializeOwned>(self) -> Result<R> {
        match self.outcome {
            Outcome::Ok(v) => serde_json::from_value(v)
                .map_err(|e| Error::Protocol(format!("unexpected reply from the daemon: {e}"))),
            Outcome::Err(body) => Err(Error::from_wire(body)),
        }
    }
}

/// The reply as it is spelled on the wire; `ok` says which of the two
/// optional fields is there.
#[derive(Serialize)]
struct WireOut<'a, T> {
    v: u32,
    id: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorBody>,
}

#[derive(Deserialize)]
struct WireIn {
    v: u32,
    id: u64,
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

impl<T: Serialize> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (ok, result, error) = match &self.outcome {
            Outcome::Ok(r) => (true, Some(r), None),
            Outcome::Err(e) => (false, None, Some(e)),
        };
        WireOut {
            v: self.v,
            id: self.id,
            ok,
            result,
            error,
        }
        .serialize(s)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Reply<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireIn::deserialize(d)?;
        let outcome = match (w.ok, w.error) {
            // A request with nothing to say answers `ok` alone: its result is null.
            (true, _) => Outcome::Ok(
                serde_json::from_value(w.result.unwrap_or(Value::Null))
                    .map_err(D::Error::custom)?,
            ),
            (false, Some(e)) => Outcome::Err(e),
            (false, None) => {
                return Err(D::Error::custom(
                    "the daemon reported an error without a message",
                ))
            }
        };
        Ok(Reply {
            v: w.v,
            id: w.id,
            outcome,
        })
    }
}

/// What the daemon says about itself in reply to `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub home: String,
}

/// `reload_logs`: the log files were reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    pub reopened: bool,
}

/// `flush`: the files emptied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flushed {
    pub flushed: Vec<PathBuf>,
}

/// `set`: the setting changed, as `get` shows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChanged {
    /// The canonical key (`pm2-logrotate:max_size` is `log.max_size`).
    pub key: String,
    pub value: Value,
    /// What applying it did that the user should know (the metrics endpoint moved).
    pub note: Option<String>,
}

/// `save`: where the list went and which apps it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub path: PathBuf,
    pub apps: Vec<String>,
}

/// `cleardump`: the dump file now empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    pub path: PathBuf,
}

/// `subscribe`: the connection is a stream from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    pub subscribed: bool,
}

/// `kill`: every app and then the daemon stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Killed {
    pub killed: bool,
}

/// The result of any request, as the handler produces it. It is written as
/// the variant's own JSON (no tag): the request says which type to read back.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Pong(Pong),
    List(Vec<InstanceInfo>),
    Describe(Vec<Description>),
    /// Every request that changes instances: start, stop, restart, reload,
    /// delete, scale, signal, reset, stop_watch, resurrect.
    Report(Report),
    Reopened(Reopened),
    Flushed(Flushed),
    RecentLogs(RecentLines),
    SettingChanged(SettingChanged),
    /// `get` with a key: that one setting's value.
    Setting(Value),
    AllSettings(AllSettings),
    Saved(Saved),
    Cleared(Cleared),
    /// `metrics`: Prometheus' text format, as one JSON string.
    Metrics(String),
    Subscribed(Subscribed),
    Killed(Killed),
    /// `notify_test`: each receiver's answer.
    NotifyTest(Vec<crate::notify::NotifyAnswer>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: &Reply<Answer>) -> (String, Reply<Value>) {
        let text = serde_json::to_string(r).unwrap();
        let back: Reply<Value> = serde_json::from_str(&text).unwrap();
        (text, back)
    }

    #[test]
    fn ok_reply_keeps_the_wire_shape_and_reads_back_typed() {
        let saved = Saved {
            path: "/h/dump.json".into(),
            apps: vec!["api".into()],
        };
        let r = Reply::new(1, 7, Ok(Answer::Saved(saved.clone())));
        let (text, back) = round_trip(&r);
        assert_eq!(
            text,
            r#"{"v":1,"id":7,"ok":true,"result":{"path":"/h/dump.json","apps":["api"]}}"#
        );
        assert_eq!((back.v, back.id), (1, 7));
        assert_eq!(back.into_result::<Saved>().unwrap(), saved);
    }

    #[test]
    fn error_reply_keeps_code_and_message() {
        let r: Reply<Answer> = Reply::new(1, 3, Err(Error::NotFound("no app named 'x'".into())));
        let (text, back) = round_trip(&r);
        assert_eq!(
            text,
            r#"{"v":1,"id":3,"ok":false,"error":{"code":"PMR_NOT_FOUND","message":"no app named 'x'"}}"#
        );
        let e = back.into_result::<Value>().unwrap_err();
        assert_eq!(e.code(), "PMR_NOT_FOUND");
        assert_eq!(e.to_string(), "no app named 'x'");
    }

    #[test]
    fn ok_without_result_is_null_and_error_without_body_is_refused() {
        let r: Reply<Value> = serde_json::from_str(r#"{"v":1,"id":1,"ok":true}"#).unwrap();
        assert_eq!(r.outcome, Outcome::Ok(Value::Null));
        let bad = serde_json::from_str::<Reply<Value>>(r#"{"v":1,"id":1,"ok":false}"#);
        assert!(bad.unwrap_err().to_string().contains("without a message"));
    }

    #[test]
    fn a_result_of_the_wrong_shape_is_a_protocol_error() {
        let r: Reply<Value> =
            serde_json::from_str(r#"{"v":1,"id":1,"ok":true,"result":{"path":3}}"#).unwrap();
        let e = r.into_result::<Saved>().unwrap_err();
        assert_eq!(e.code(), "PMR_PROTOCOL");
    }

    #[test]
    fn stream_items_are_not_replies() {
        assert!(serde_json::from_str::<Reply<Value>>(r#"{"lagged":3}"#).is_err());
    }
}
