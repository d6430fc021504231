//! Option values that are one of a few words: the signal that stops an app,
//! the format of its log lines, the schedule its files rotate on. Each is
//! parsed once, where the spec or the settings are built, and travels typed
//! (serde spells them as users write them) to the code that acts on them.

use std::fmt;
use std::str::FromStr;

use nix::sys::signal::Signal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::process::signal::parse_signal;

/// The signal that asks an app to stop (`kill_signal`); SIGINT by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSignal(pub Signal);

impl Default for KillSignal {
    fn default() -> Self {
        KillSignal(Signal::SIGINT)
    }
}

impl KillSignal {
    pub fn signal(self) -> Signal {
        self.0
    }
}

impl FromStr for KillSignal {
    type Err = String;
    /// Any spelling `parse_signal` takes: `SIGTERM`, `term`, `15`.
    fn from_str(s: &str) -> Result<Self, String> {
        parse_signal(s).map(KillSignal)
    }
}

impl fmt::Display for KillSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for KillSignal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for KillSignal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How log lines are written (`log_type`): only `json` is a choice, one
/// JSON object per line; without it lines are written as the app wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogType {
    Json,
}

impl FromStr for LogType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(LogType::Json),
            other => Err(format!(
                "'{other}' is not a log type, the only one is 'json'"
            )),
        }
    }
}

impl fmt::Display for LogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("json")
    }
}

/// The schedule files rotate on besides their size (`rotate_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotateInterval {
    /// At the first write of a new (local) day.
    Daily,
    /// Never on a schedule (an app's way to turn a daily default off).
    None,
}

impl FromStr for RotateInterval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "daily" => Ok(RotateInterval::Daily),
            "none" => Ok(RotateInterval::None),
            other => Err(format!("must be 'daily' or 'none', got '{other}'")),
        }
    }
}

impl fmt::Display for RotateInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RotateInterval::Daily => "daily",
            RotateInterval::None => "none",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_signal_takes_any_spelling_and_writes_the_name() {
        let k: KillSignal = serde_json::from_str(r#""term""#).unwrap();
        assert_eq!(k.signal(), Signal::SIGTERM);
        assert_eq!(serde_json::to_string(&k).unwrap(), r#""SIGTERM""#);
        assert_eq!(
            "15".parse::<KillSignal>().unwrap(),
            KillSignal(Signal::SIGTERM)
        );
        assert_eq!(KillSignal::default().to_string(), "SIGINT");
    }

    #[test]
    fn kill_signal_refuses_a_non_signal_with_the_reason() {
        let e = serde_json::from_str::<KillSignal>(r#""SIGNOPE""#).unwrap_err();
        assert!(
            e.to_string().contains("'SIGNOPE' is not a signal name"),
            "{e}"
        );
    }

    #[test]
    fn log_type_is_json_or_refused() {
        assert_eq!("json".parse::<LogType>(), Ok(LogType::Json));
        assert_eq!(serde_json::to_string(&LogType::Json).unwrap(), r#""json""#);
        assert_eq!(
            "xml".parse::<LogType>().unwrap_err(),
            "'xml' is not a log type, the only one is 'json'"
        );
        assert!(serde_json::from_str::<LogType>(r#""xml""#).is_err());
    }

    #[test]
    fn rotate_interval_round_trips_its_words() {
        for (word, v) in [
            ("daily", RotateInterval::Daily),
            ("none", RotateInterval::None),
        ] {
            assert_eq!(word.parse::<RotateInterval>(), Ok(v));
            assert_eq!(serde_json::to_value(v).unwrap(), word);
            assert_eq!(v.to_string(), word);
        }
        assert_eq!(
            "hourly".parse::<RotateInterval>().unwrap_err(),
            "must be 'daily' or 'none', got 'hourly'"
        );
    }
}
