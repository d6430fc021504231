//! What `pmr monit` shows, independent of any terminal: the instances, the
//! selection, a short CPU and memory history per instance, recent log
//! lines per app and the status-line notice, and how keys change them.
//! Pure: no I/O, time passed in, so every update is unit-tested.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::logs::Stream;
use crate::supervisor::InstanceInfo;

/// Samples of CPU and memory kept per instance for the sparklines.
const HISTORY: usize = 120;
/// Log lines kept per app.
const LOG_LINES: usize = 500;
/// How long a message stays in the status line.
const NOTICE_FOR: Duration = Duration::from_secs(5);

/// What a key asks for beyond moving the selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    Reload(String),
    Stop(String),
    Start(String),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Out,
    Err,
    Event,
}

impl From<Stream> for Kind {
    fn from(s: Stream) -> Kind {
        match s {
            Stream::Out => Kind::Out,
            Stream::Err => Kind::Err,
        }
    }
}

pub(super) struct LogEntry {
    pub id: u32,
    pub text: String,
    pub kind: Kind,
}

/// The status-line message: its text, whether it is an error, and when it
/// was given.
pub(super) struct Notice {
    pub text: String,
    pub error: bool,
    at: Instant,
}

/// The dashboard's state.
#[derive(Default)]
pub(super) struct Monit {
    pub rows: Vec<InstanceInfo>,
    /// Index into `rows`.
    selected: Option<usize>,
    /// Instance id → CPU in tenths of a percent, oldest first.
    pub cpu: HashMap<u32, VecDeque<u64>>,
    /// Instance id → bytes, oldest first.
    pub memory: HashMap<u32, VecDeque<u64>>,
    pub logs: HashMap<String, VecDeque<LogEntry>>,
    pub notice: Option<Notice>,
}

fn push<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl Monit {
    pub fn selected_index(&self) -> Option<usize> {
        self.selected
    }

    pub fn selected(&self) -> Option<&InstanceInfo> {
        self.selected.and_then(|i| self.rows.get(i))
    }

    /// New figures; the selection follows its instance (by id) when rows
    /// come and go.
    pub fn refresh(&mut self, rows: Vec<InstanceInfo>) {
        let keep = self.selected().map(|r| r.id);
        for r in &rows {
            let running = r.pid.is_some();
            let cpu = if running {
                (r.cpu * 10.0).round() as u64
            } else {
                0
            };
            let mem = if running { r.memory } else { 0 };
            push(self.cpu.entry(r.id).or_default(), cpu, HISTORY);
            push(self.memory.entry(r.id).or_default(), mem, HISTORY);
        }
        self.cpu.retain(|id, _| rows.iter().any(|r| r.id == *id));
        self.memory.retain(|id, _| rows.iter().any(|r| r.id == *id));
        self.selected = keep
            .and_then(|id| rows.iter().position(|r| r.id == id))
            .or_else(|| (!rows.is_empty()).then(|| self.selected.unwrap_or(0).min(rows.len() - 1)));
        self.rows = rows;
    }

    pub fn log(&mut self, app: &str, id: u32, text: String, kind: Kind) {
        let q = self.logs.entry(app.to_string()).or_default();
        push(q, LogEntry { id, text, kind }, LOG_LINES);
    }

    pub fn notice(&mut self, text: String, error: bool, now: Instant) {
        self.notice = Some(Notice {
            text,
            error,
            at: now,
        });
    }

    /// Takes down a notice shown long enough; true when the screen changed.
    pub fn notice_expired(&mut self, now: Instant) -> bool {
        if self
            .notice
            .as_ref()
            .is_some_and(|n| now.saturating_duration_since(n.at) > NOTICE_FOR)
        {
            self.notice = None;
            return true;
        }
        false
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Option<Action> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            KeyCode::Up | KeyCode::Char('k') => {
                self.move_by(-1);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.move_by(1);
                None
            }
            KeyCode::Home => {
                self.move_by(i64::MIN / 2);
                None
            }
            KeyCode::End => {
                self.move_by(i64::MAX / 2);
                None
            }
            KeyCode::Char('r') => self.selected().map(|r| Action::Reload(r.name.clone())),
            KeyCode::Char('s') => {
                let name = self.selected()?.name.clone();
                let active = self
                    .rows
                    .iter()
                    .any(|r| r.name == name && r.status.is_active());
                Some(if active {
                    Action::Stop(name)
                } else {
                    Action::Start(name)
                })
            }
            _ => None,
        }
    }

    fn move_by(&mut self, d: i64) {
        if self.rows.is_empty() {
            return;
        }
        let cur = self.selected.unwrap_or(0) as i64;
        let last = self.rows.len() as i64 - 1;
        self.selected = Some((cur + d).clamp(0, last) as usize);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::logs::LogPaths;
    use crate::spec::ExecMode;
    use crate::supervisor::state::RestartCounts;
    use crate::supervisor::Status;
    use ratatui::crossterm::event::{KeyEventKind, KeyEventState};

    pub(in crate::cli::monit) fn row(name: &str, id: u32, status: Status) -> InstanceInfo {
        InstanceInfo {
            name: name.into(),
            namespace: "default".into(),
            id,
            instance: id,
            pid: (status == Status::Online).then_some(1000 + id),
            status,
            restarts: 0,
            restart_reasons: RestartCounts::default(),
            unstable_restarts: 0,
            uptime_ms: 5000,
            memory: 40 << 20,
            cpu: 1.5,
            processes: 1,
            memory_limit: Some(80 << 20),
            memory_exceeded: None,
            node: None,
            mode: ExecMode::Cluster,
            started_at: None,
            created_at: 0,
            last_exit: None,
            errored_reason: None,
            last_error: None,
            listening: Vec::new(),
            logs: LogPaths {
                out: "/dev/null".into(),
                err: "/dev/null".into(),
                combined: None,
            },
            log_dropped_bytes: 0,
            watching: false,
            next_cron_restart: None,
            kill_scope: None,
            health: None,
            connections: None,
        }
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent {
            code: c,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn keys_select_and_act_on_the_selected_app() {
        let mut m = Monit::default();
        m.refresh(vec![
            row("api", 0, Status::Online),
            row("api", 1, Status::Online),
            row("jobs", 2, Status::Stopped),
        ]);
        assert_eq!(m.selected().unwrap().id, 0);
        assert_eq!(
            m.on_key(key(KeyCode::Char('r'))),
            Some(Action::Reload("api".into()))
        );
        assert_eq!(
            m.on_key(key(KeyCode::Char('s'))),
            Some(Action::Stop("api".into()))
        );
        m.on_key(key(KeyCode::Down));
        m.on_key(key(KeyCode::Char('j')));
        m.on_key(key(KeyCode::Char('j')));
        assert_eq!(m.selected().unwrap().id, 2, "stops at the last row");
        assert_eq!(
            m.on_key(key(KeyCode::Char('s'))),
            Some(Action::Start("jobs".into()))
        );
        m.on_key(key(KeyCode::Char('k')));
        assert_eq!(m.selected().unwrap().id, 1);
        assert_eq!(m.on_key(key(KeyCode::Char('q'))), Some(Action::Quit));
        // The selection follows its instance when rows change.
        m.refresh(vec![
            row("jobs", 2, Status::Stopped),
            row("api", 1, Status::Online),
        ]);
        assert_eq!(m.selected().unwrap().id, 1);
        m.refresh(vec![row("jobs", 2, Status::Stopped)]);
        assert_eq!(m.selected().unwrap().id, 2);
        m.refresh(Vec::new());
        assert!(m.selected().is_none());
        assert_eq!(m.on_key(key(KeyCode::Char('r'))), None);
    }

    #[test]
    fn ctrl_c_quits_and_home_end_jump() {
        let mut m = Monit::default();
        m.refresh((0..5).map(|i| row("api", i, Status::Online)).collect());
        m.on_key(key(KeyCode::End));
        assert_eq!(m.selected_index(), Some(4));
        m.on_key(key(KeyCode::Home));
        assert_eq!(m.selected_index(), Some(0));
        let ctrl_c = KeyEvent {
            modifiers: KeyModifiers::CONTROL,
            ..key(KeyCode::Char('c'))
        };
        assert_eq!(m.on_key(ctrl_c), Some(Action::Quit));
        assert_eq!(
            m.on_key(key(KeyCode::Char('c'))),
            None,
            "plain c does nothing"
        );
    }

    #[test]
    fn history_is_capped_and_follows_the_instances() {
        let mut m = Monit::default();
        for _ in 0..HISTORY + 5 {
            m.refresh(vec![
                row("api", 0, Status::Online),
                row("w", 1, Status::Stopped),
            ]);
        }
        assert_eq!(m.cpu[&0].len(), HISTORY);
        assert_eq!(m.cpu[&0].back(), Some(&15), "tenths of a percent");
        assert_eq!(m.memory[&0].back(), Some(&(40 << 20)));
        assert_eq!(
            m.memory[&1].back(),
            Some(&0),
            "a stopped instance uses nothing"
        );
        m.refresh(vec![row("api", 0, Status::Online)]);
        assert!(!m.cpu.contains_key(&1) && !m.memory.contains_key(&1));
    }

    #[test]
    fn logs_are_kept_per_app_and_capped() {
        let mut m = Monit::default();
        for i in 0..LOG_LINES + 3 {
            m.log("api", 0, format!("line {i}"), Kind::Out);
        }
        m.log("jobs", 2, "hello".into(), Stream::Err.into());
        let api = &m.logs["api"];
        assert_eq!(api.len(), LOG_LINES);
        assert_eq!(api.front().map(|e| e.text.as_str()), Some("line 3"));
        assert_eq!(m.logs["jobs"][0].kind, Kind::Err);
    }

    #[test]
    fn a_notice_goes_away_after_a_while() {
        let mut m = Monit::default();
        let t0 = Instant::now();
        m.notice("reloading api...".into(), false, t0);
        assert!(!m.notice_expired(t0 + NOTICE_FOR));
        assert!(m.notice.is_some());
        assert!(m.notice_expired(t0 + NOTICE_FOR + Duration::from_millis(1)));
        assert!(m.notice.is_none());
        assert!(!m.notice_expired(t0 + NOTICE_FOR * 2), "only once");
    }
}
