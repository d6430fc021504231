//! `pmr monit`: a full-screen dashboard. Every instance with its status, CPU
//! and memory (and a short history of both), the selected instance's details,
//! and its app's live log lines and pmr events; keys to reload, stop and
//! start. The figures come from `list` every `metrics.interval`; the lines
//! from the daemon's stream, read on a thread of their own.
//!
//! The terminal is put back as it was on every way out: a normal quit, an
//! error, and a panic (a panic hook restores it before the message prints).

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Stdout};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::{Frame, Terminal};

use super::Ctx;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::logs::{RecentLines, Stream};
use crate::paths::Home;
use crate::protocol::{Request, StreamItem};
use crate::spec::units::{format_bytes, format_uptime};
use crate::supervisor::state::short_size;
use crate::supervisor::{Description, InstanceInfo, Status};

/// Samples of CPU and memory kept per instance for the sparklines.
const HISTORY: usize = 120;
/// Log lines kept per app.
const LOG_LINES: usize = 500;
/// Past lines asked of the daemon per instance when monit starts.
const PAST_LINES: usize = 50;
/// How long a message stays in the status line.
const NOTICE_FOR: Duration = Duration::from_secs(5);
/// The longest wait for a key before the screen is looked at again.
const POLL: Duration = Duration::from_millis(100);
/// CPU history is drawn against at least this (percent), so an idle app's
/// noise does not look like a spike.
const CPU_FLOOR: u64 = 5;

pub(super) fn run(ctx: &Ctx<'_>) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Config(
            "pmr monit needs a terminal; for a script or a pipe use pmr list or pmr jlist (or pmr metrics)"
                .into(),
        ));
    }
    let mut client = ctx.running_daemon()?;
    let rows: Vec<InstanceInfo> = client.request_as(Request::List)?;
    let interval = client
        .request(Request::Get {
            key: Some("metrics.interval".into()),
        })
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(1000)
        .clamp(100, 10_000);
    let mut monit = Monit::new(ctx.style.color);
    let ids: Vec<u32> = rows.iter().map(|r| r.id).collect();
    monit.refresh(rows);
    for (app, id, text, kind) in past_lines(&mut client, ids) {
        monit.log(&app, id, text, kind);
    }

    let (tx, rx) = mpsc::channel();
    let stream = Client::connect(&ctx.home)?
        .ok_or_else(|| Error::Daemon("the daemon went away".into()))?
        .subscribe(true, true)?;
    let stream_tx = tx.clone();
    std::thread::Builder::new()
        .name("pmr-monit-stream".into())
        .spawn(move || {
            for item in stream {
                if stream_tx.send(Msg::Stream(item)).is_err() {
                    return;
                }
            }
            let _ = stream_tx.send(Msg::StreamEnded);
        })
        .map_err(|e| Error::io("cannot start monit's stream reader", e))?;

    let guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| Error::io("cannot draw on the terminal", e))?;
    let result = event_loop(
        &mut term,
        &mut monit,
        &mut client,
        &ctx.home,
        &rx,
        &tx,
        Duration::from_millis(interval),
    );
    drop(term);
    drop(guard);
    result
}

/// The recent lines and pmr events of every instance, oldest first, so the
/// log pane does not start empty. Older daemons keep no recent lines: the
/// pane then starts with the events alone.
fn past_lines(client: &mut Client, ids: Vec<u32>) -> Vec<(String, u32, String, Kind)> {
    let mut past: Vec<(u64, String, u32, String, Kind)> = Vec::new();
    if ids.is_empty() {
        return Vec::new();
    }
    if let Ok(recent) = client.request_as::<RecentLines>(Request::RecentLogs {
        ids,
        lines: PAST_LINES,
        out: true,
        err: true,
    }) {
        past.extend(
            recent
                .lines
                .into_iter()
                .map(|l| (l.time, l.app, l.id, l.line, kind_of(l.stream))),
        );
    }
    if let Ok(descs) = client.request_as::<Vec<Description>>(Request::Describe {
        target: vec!["all".into()],
    }) {
        for d in descs {
            past.extend(
                d.history
                    .iter()
                    .map(|e| (e.time, e.app.clone(), e.id, e.describe(), Kind::Event)),
            );
        }
    }
    // Stable: lines of one instance that share a millisecond keep their order.
    past.sort_by_key(|p| p.0);
    past.into_iter()
        .map(|(_, app, id, text, kind)| (app, id, text, kind))
        .collect()
}

fn kind_of(s: Stream) -> Kind {
    match s {
        Stream::Out => Kind::Out,
        Stream::Err => Kind::Err,
    }
}

enum Msg {
    Stream(Result<StreamItem>),
    StreamEnded,
    /// An action finished: what to tell the user, and whether it failed.
    Done(String, bool),
}

fn event_loop(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    monit: &mut Monit,
    client: &mut Client,
    home: &Home,
    rx: &mpsc::Receiver<Msg>,
    tx: &mpsc::Sender<Msg>,
    interval: Duration,
) -> Result<()> {
    let io = |e| Error::io("the terminal failed", e);
    let mut next_refresh = Instant::now() + interval;
    let mut dirty = true;
    loop {
        if dirty {
            term.draw(|f| monit.draw(f)).map_err(io)?;
            dirty = false;
        }
        let wait = next_refresh
            .saturating_duration_since(Instant::now())
            .min(POLL);
        if event::poll(wait).map_err(io)? {
            match event::read().map_err(io)? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                    match monit.on_key(k) {
                        Some(Action::Quit) => return Ok(()),
                        Some(a) => start_action(a, home, tx, monit),
                        None => {}
                    }
                    dirty = true;
                }
                TermEvent::Resize(..) => {
                    term.autoresize().map_err(io)?;
                    dirty = true;
                }
                _ => {}
            }
        }
        while let Ok(m) = rx.try_recv() {
            dirty = true;
            match m {
                Msg::Stream(Ok(StreamItem::Log(l))) => {
                    monit.log(&l.app, l.id, l.line, kind_of(l.stream))
                }
                Msg::Stream(Ok(StreamItem::Event(e))) => {
                    monit.log(&e.app, e.id, e.describe(), Kind::Event)
                }
                Msg::Stream(Ok(StreamItem::Lagged(n))) => monit.notice(
                    format!("{n} log lines skipped (the log files have them)"),
                    true,
                ),
                Msg::Stream(Err(e)) => monit.notice(e.to_string(), true),
                Msg::StreamEnded => monit.notice("the daemon closed the log stream".into(), true),
                Msg::Done(text, failed) => monit.notice(text, failed),
            }
        }
        if Instant::now() >= next_refresh {
            next_refresh = Instant::now() + interval;
            match client.request_as::<Vec<InstanceInfo>>(Request::List) {
                Ok(rows) => monit.refresh(rows),
                Err(e) => {
                    monit.notice(format!("cannot reach the daemon: {e}"), true);
                    if let Ok(Some(c)) = Client::connect(home) {
                        *client = c;
                    }
                }
            }
            dirty = true;
        }
        if monit.notice_expired() {
            dirty = true;
        }
    }
}

/// Runs a reload, stop or start without freezing the screen: on a thread,
/// over a connection of its own, telling the loop how it went.
fn start_action(a: Action, home: &Home, tx: &mpsc::Sender<Msg>, monit: &mut Monit) {
    let (req, doing, done) = match &a {
        Action::Reload(app) => (
            Request::Reload {
                target: vec![app.clone()],
                env: None,
            },
            format!("reloading {app}..."),
            format!("reloaded {app}"),
        ),
        Action::Stop(app) => (
            Request::Stop {
                target: vec![app.clone()],
            },
            format!("stopping {app}..."),
            format!("stopped {app}"),
        ),
        Action::Start(app) => (
            Request::StartExisting {
                target: vec![app.clone()],
            },
            format!("starting {app}..."),
            format!("started {app}"),
        ),
        Action::Quit => return,
    };
    monit.notice(doing, false);
    let home = home.clone();
    let tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("pmr-monit-action".into())
        .spawn(move || {
            let result = Client::connect(&home).and_then(|c| {
                c.ok_or_else(|| Error::Daemon("the daemon went away".into()))?
                    .request(req)
            });
            let msg = match result {
                Ok(_) => Msg::Done(done, false),
                Err(e) => Msg::Done(e.to_string(), true),
            };
            let _ = tx.send(msg);
        });
    if let Err(e) = spawned {
        monit.notice(format!("cannot run the action: {e}"), true);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Reload(String),
    Stop(String),
    Start(String),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Out,
    Err,
    Event,
}

struct LogEntry {
    id: u32,
    text: String,
    kind: Kind,
}

/// What the dashboard shows, independent of the terminal.
struct Monit {
    rows: Vec<InstanceInfo>,
    table: TableState,
    /// Instance id → CPU in tenths of a percent, oldest first.
    cpu: HashMap<u32, VecDeque<u64>>,
    /// Instance id → bytes, oldest first.
    memory: HashMap<u32, VecDeque<u64>>,
    logs: HashMap<String, VecDeque<LogEntry>>,
    notice: Option<(String, bool, Instant)>,
    color: bool,
}

fn push<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl Monit {
    fn new(color: bool) -> Self {
        Monit {
            rows: Vec::new(),
            table: TableState::default(),
            cpu: HashMap::new(),
            memory: HashMap::new(),
            logs: HashMap::new(),
            notice: None,
            color,
        }
    }

    fn selected(&self) -> Option<&InstanceInfo> {
        self.table.selected().and_then(|i| self.rows.get(i))
    }

    /// New figures; the selection follows its instance (by id) when rows
    /// come and go.
    fn refresh(&mut self, rows: Vec<InstanceInfo>) {
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
        let at = keep
            .and_then(|id| rows.iter().position(|r| r.id == id))
            .or_else(|| {
                (!rows.is_empty()).then(|| self.table.selected().unwrap_or(0).min(rows.len() - 1))
            });
        self.table.select(at);
        self.rows = rows;
    }

    fn log(&mut self, app: &str, id: u32, text: String, kind: Kind) {
        let q = self.logs.entry(app.to_string()).or_default();
        push(q, LogEntry { id, text, kind }, LOG_LINES);
    }

    fn notice(&mut self, text: String, error: bool) {
        self.notice = Some((text, error, Instant::now()));
    }

    fn notice_expired(&mut self) -> bool {
        if self
            .notice
            .as_ref()
            .is_some_and(|(_, _, at)| at.elapsed() > NOTICE_FOR)
        {
            self.notice = None;
            return true;
        }
        false
    }

    fn on_key(&mut self, k: KeyEvent) -> Option<Action> {
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
        let cur = self.table.selected().unwrap_or(0) as i64;
        let last = self.rows.len() as i64 - 1;
        self.table.select(Some((cur + d).clamp(0, last) as usize));
    }

    fn style(&self, fg: Color) -> Style {
        if self.color {
            Style::new().fg(fg)
        } else {
            Style::new()
        }
    }

    fn status_style(&self, s: Status) -> Style {
        self.style(match s {
            Status::Online => Color::Green,
            Status::Errored => Color::Red,
            Status::Stopped => Color::DarkGray,
            Status::Launching | Status::Stopping | Status::WaitingRestart => Color::Yellow,
        })
    }

    fn draw(&mut self, f: &mut Frame<'_>) {
        let area = f.area();
        let wanted = self.rows.len() as u16 + 3;
        let list_h = wanted.min((area.height.saturating_sub(1) * 45 / 100).max(6));
        let [list, bottom, status] = Layout::vertical([
            Constraint::Length(list_h),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        let details_w = (area.width * 2 / 5).clamp(30, 44);
        let [details, logs] =
            Layout::horizontal([Constraint::Length(details_w), Constraint::Min(0)]).areas(bottom);
        self.draw_list(f, list);
        self.draw_details(f, details);
        self.draw_logs(f, logs);
        self.draw_status(f, status);
    }

    fn draw_list(&mut self, f: &mut Frame<'_>, area: Rect) {
        let n = self.rows.len();
        let title = format!(" pmr monit: {n} instance{} ", if n == 1 { "" } else { "s" });
        let header = Row::new([
            "id", "name", "status", "cpu", "memory", "history", "↺", "uptime",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row<'_>> = self
            .rows
            .iter()
            .map(|r| {
                let running = r.pid.is_some();
                let mem = self.memory.get(&r.id);
                Row::new(vec![
                    Cell::from(r.id.to_string()),
                    Cell::from(r.name.clone()).style(self.style(Color::Cyan)),
                    Cell::from(r.status.as_str()).style(self.status_style(r.status)),
                    Cell::from(if running { percent(r.cpu) } else { "-".into() }),
                    Cell::from(if running {
                        format_bytes(r.memory)
                    } else {
                        "-".into()
                    }),
                    Cell::from(mem.map(|m| spark(m, 10, 1)).unwrap_or_default())
                        .style(self.style(Color::Blue)),
                    Cell::from(r.restarts.to_string()),
                    Cell::from(if running {
                        format_uptime(r.uptime_ms)
                    } else {
                        "-".into()
                    }),
                ])
            })
            .collect();
        let widths = [
            Constraint::Length(3),
            Constraint::Min(8),
            Constraint::Length(15),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(3),
            Constraint::Length(6),
        ];
        let highlight = if self.color {
            Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        };
        let table = Table::new(rows, widths)
            .header(header)
            .row_highlight_style(highlight)
            .block(Block::bordered().title(title));
        f.render_stateful_widget(table, area, &mut self.table);
        if self.rows.is_empty() {
            let inner = Block::bordered().inner(area);
            let hint = Rect {
                y: inner.y + 1,
                height: inner.height.saturating_sub(1),
                ..inner
            };
            f.render_widget(
                Paragraph::new("no apps; start one with pmr start app.js"),
                hint,
            );
        }
    }

    fn draw_details(&self, f: &mut Frame<'_>, area: Rect) {
        let block = Block::bordered().title(" details ");
        let inner = block.inner(area);
        f.render_widget(block, area);
        let Some(r) = self.selected() else { return };
        let dim = self.style(Color::DarkGray);
        let kv = |k: &str, v: String| {
            Line::from(vec![Span::styled(format!("{k:<9}"), dim), Span::raw(v)])
        };
        let mut lines = vec![
            Line::from(vec![
                Span::styled(
                    r.name.clone(),
                    self.style(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" #{} ", r.id)),
                Span::styled(r.status.as_str(), self.status_style(r.status)),
            ]),
            kv(
                "pid",
                format!(
                    "{}  {}",
                    r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    r.mode.as_str()
                ),
            ),
            kv(
                "restarts",
                format!(
                    "{} (crash {}, memory {})",
                    r.restarts, r.restart_reasons.crash, r.restart_reasons.memory
                ),
            ),
        ];
        let running = r.pid.is_some();
        if running {
            let procs = if r.processes > 1 {
                format!("  {} procs", r.processes)
            } else {
                String::new()
            };
            lines.push(kv("cpu", format!("{}{procs}", percent(r.cpu))));
            let limit = r
                .memory_limit
                .map(|l| format!(" / max {}", short_size(l)))
                .unwrap_or_default();
            lines.push(kv("memory", format!("{}{limit}", format_bytes(r.memory))));
            if let Some(n) = &r.node {
                lines.push(kv(
                    "heap",
                    format!(
                        "{} / {}",
                        format_bytes(n.heap_used),
                        format_bytes(n.heap_total)
                    ),
                ));
                lines.push(kv(
                    "loop lag",
                    format!(
                        "{:.1} ms  handles {}",
                        n.event_loop_lag_ms, n.active_handles
                    ),
                ));
            }
        }
        if let Some(e) = &r.memory_exceeded {
            let at = chrono::DateTime::from_timestamp_millis(e.at as i64)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format(" at %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{:<9}", "exceeded"), dim),
                Span::styled(
                    format!("{}{at}", short_size(e.memory)),
                    self.style(Color::Yellow),
                ),
            ]));
        }
        if let Some(why) = &r.errored_reason {
            lines.push(Line::styled(why.clone(), self.style(Color::Red)));
        }
        let text_h = (lines.len() as u16).min(inner.height);
        let [text, charts] =
            Layout::vertical([Constraint::Length(text_h), Constraint::Min(0)]).areas(inner);
        f.render_widget(Paragraph::new(lines), text);
        if !running || charts.height < 2 {
            return;
        }
        let [cpu_label, cpu_chart, mem_label, mem_chart] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(charts);
        let width = charts.width as usize;
        if let Some(h) = self.cpu.get(&r.id) {
            let data = last(h, width);
            let top = data.iter().copied().max().unwrap_or(0).max(CPU_FLOOR * 10);
            f.render_widget(Paragraph::new(Span::styled("cpu history", dim)), cpu_label);
            f.render_widget(
                Sparkline::default()
                    .data(data)
                    .max(top)
                    .style(self.style(Color::Green)),
                cpu_chart,
            );
        }
        if let Some(h) = self.memory.get(&r.id) {
            let data = last(h, width);
            let top = data
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
                .max(r.memory_limit.unwrap_or(0))
                .max(1);
            f.render_widget(
                Paragraph::new(Span::styled("memory history", dim)),
                mem_label,
            );
            f.render_widget(
                Sparkline::default()
                    .data(data)
                    .max(top)
                    .style(self.style(Color::Blue)),
                mem_chart,
            );
        }
    }

    fn draw_logs(&self, f: &mut Frame<'_>, area: Rect) {
        let app = self.selected().map(|r| r.name.clone());
        let title = match &app {
            Some(a) => format!(" {a} logs "),
            None => " logs ".into(),
        };
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let Some(q) = app.as_ref().and_then(|a| self.logs.get(a)) else {
            return;
        };
        let shown = q.len().saturating_sub(inner.height as usize);
        let lines: Vec<Line<'_>> = q
            .iter()
            .skip(shown)
            .map(|e| {
                let (tag, style) = match e.kind {
                    Kind::Out => (format!("{}|", e.id), Style::new()),
                    Kind::Err => (format!("{}|", e.id), self.style(Color::Red)),
                    Kind::Event => (format!("{}|PMR ", e.id), self.style(Color::Yellow)),
                };
                Line::from(vec![
                    Span::styled(tag, self.style(Color::DarkGray)),
                    Span::styled(e.text.as_str(), style),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_status(&self, f: &mut Frame<'_>, area: Rect) {
        const KEYS: &str = " ↑↓/jk select  r reload  s stop/start  q quit";
        let line = match &self.notice {
            Some((text, error, _)) => Line::from(vec![
                Span::raw(KEYS),
                Span::raw("   "),
                Span::styled(
                    text.as_str(),
                    self.style(if *error { Color::Red } else { Color::Yellow }),
                ),
            ]),
            None => Line::raw(KEYS),
        };
        f.render_widget(Paragraph::new(line), area);
    }
}

fn percent(cpu: f64) -> String {
    if cpu < 10.0 {
        format!("{cpu:.1}%")
    } else {
        format!("{cpu:.0}%")
    }
}

fn last(q: &VecDeque<u64>, n: usize) -> Vec<u64> {
    q.iter().skip(q.len().saturating_sub(n)).copied().collect()
}

/// The last `width` values as block characters, scaled to their maximum
/// (at least `floor`), for a history that fits in a table cell.
fn spark(values: &VecDeque<u64>, width: usize, floor: u64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let data = last(values, width);
    let top = data.iter().copied().max().unwrap_or(0).max(floor);
    data.iter()
        .map(|&v| {
            let i = (v.saturating_mul(BARS.len() as u64 - 1) + top / 2) / top;
            BARS[(i as usize).min(BARS.len() - 1)]
        })
        .collect()
}

/// Raw mode and the alternate screen for as long as it lives; the panic
/// hook restores the terminal first, so the panic message is readable and
/// the shell usable.
struct TerminalGuard {
    previous: Option<Arc<PanicHook>>,
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync + 'static>;

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> Result<Self> {
        let previous = Arc::new(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            chained(info);
        }));
        let guard = TerminalGuard {
            previous: Some(previous),
        };
        let io = |e| Error::io("cannot take over the terminal", e);
        terminal::enable_raw_mode().map_err(io)?;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )
        .map_err(io)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // Our hook holds the other reference to the previous one: once it is
        // taken down, the previous hook can go back in place.
        drop(std::panic::take_hook());
        if let Some(hook) = self.previous.take().and_then(|p| Arc::try_unwrap(p).ok()) {
            std::panic::set_hook(hook);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogPaths;
    use crate::spec::ExecMode;
    use crate::supervisor::state::RestartCounts;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyEventState;

    fn row(name: &str, id: u32, status: Status) -> InstanceInfo {
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

    fn screen(m: &mut Monit, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| m.draw(f)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn keys_select_and_act_on_the_selected_app() {
        let mut m = Monit::new(false);
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
    fn fits_80_by_24_with_figures_and_logs() {
        let mut m = Monit::new(false);
        let mut rows: Vec<_> = (0..12).map(|i| row("api", i, Status::Online)).collect();
        rows[0].node = Some(crate::supervisor::NodeMetrics {
            event_loop_lag_ms: 0.4,
            heap_used: 5 << 20,
            heap_total: 8 << 20,
            active_handles: 3,
        });
        m.refresh(rows);
        m.log("api", 0, "hello from the app".into(), Kind::Out);
        m.log("api", 0, "reload: replacement ready".into(), Kind::Event);
        let s = screen(&mut m, 80, 24);
        assert!(s.contains("pmr monit: 12 instances"), "{s}");
        assert!(
            s.contains("online") && s.contains("1.5%") && s.contains("40.0mb"),
            "{s}"
        );
        assert!(s.contains("hello from the app"), "{s}");
        assert!(s.contains("0|PMR reload: replacement ready"), "{s}");
        assert!(s.contains("loop lag 0.4 ms"), "{s}");
        assert!(s.contains("40.0mb / max 80M"), "{s}");
        assert!(s.lines().last().unwrap().contains("q quit"));
        // Tiny terminals must not panic.
        for (w, h) in [(20, 5), (1, 1), (80, 3)] {
            screen(&mut m, w, h);
        }
    }

    #[test]
    fn sparkline_text_scales_to_its_maximum() {
        let q: VecDeque<u64> = [0, 50, 100].into();
        assert_eq!(spark(&q, 10, 1), "▁▅█");
        let q: VecDeque<u64> = (0..20).collect();
        assert_eq!(spark(&q, 4, 1).chars().count(), 4);
        let idle: VecDeque<u64> = [0, 1, 0].into();
        assert_eq!(
            spark(&idle, 10, 50),
            "▁▁▁",
            "noise under the floor stays flat"
        );
        assert_eq!(spark(&VecDeque::new(), 10, 1), "");
    }
}
