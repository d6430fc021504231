//! Where alerts go: the receivers, built from checked settings and
//! `notify: {...}` entries (`crate::spec::notify`), and how logs name them.

use super::http::Target;
pub use crate::spec::notify::{AlertKind, AppNotify};

/// One place alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// pmr's own JSON payload, POSTed.
    Webhook(Target),
    /// A Slack-compatible `{"text": ...}` body, POSTed (Slack, Mattermost,
    /// Discord's `/slack` URLs).
    Slack(Target),
    /// A local program, the event as JSON on stdin and in `PMR_EVENT`.
    Command(String),
}

impl Receiver {
    /// How logs and `pmr notify test` name it: the URL without its path
    /// (a Slack URL's path is its secret).
    pub fn label(&self) -> String {
        let url = |kind: &str, t: &Target| {
            let scheme = t.0.scheme_str().unwrap_or("http");
            let auth = t.0.authority().map(|a| a.as_str()).unwrap_or("");
            let hidden = if t.0.path().len() > 1 { "/…" } else { "" };
            format!("{kind} {scheme}://{auth}{hidden}")
        };
        match self {
            Receiver::Webhook(t) => url("webhook", t),
            Receiver::Slack(t) => url("slack", t),
            Receiver::Command(c) => format!("command {c}"),
        }
    }
}

/// The receivers named by webhook URLs, Slack URLs and a command.
pub fn receivers(webhook: &[String], slack: &[String], command: Option<&str>) -> Vec<Receiver> {
    let mut out: Vec<Receiver> = Vec::new();
    out.extend(
        webhook
            .iter()
            .filter_map(|u| Target::parse(u).ok())
            .map(Receiver::Webhook),
    );
    out.extend(
        slack
            .iter()
            .filter_map(|u| Target::parse(u).ok())
            .map(Receiver::Slack),
    );
    out.extend(command.map(|c| Receiver::Command(c.to_string())));
    out
}

/// An app's own receivers.
pub fn of_app(n: &AppNotify) -> Vec<Receiver> {
    receivers(&n.webhook, &n.slack, n.command.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hide_the_secret_path() {
        let r = receivers(
            &["http://127.0.0.1:9000/hook".into()],
            &["https://hooks.slack.com/services/T/B/C".into()],
            Some("mail -s alert ops"),
        );
        let labels: Vec<String> = r.iter().map(Receiver::label).collect();
        assert_eq!(
            labels,
            [
                "webhook http://127.0.0.1:9000/…",
                "slack https://hooks.slack.com/…",
                "command mail -s alert ops"
            ]
        );
    }
}
