//! How `pmr monit` draws its model with ratatui: the instance table with
//! a memory sparkline per row, the selected instance's details and CPU and
//! memory history, its app's log lines, and the status line of keys and
//! notices. Drawing only; what is shown lives in `model`.

use std::collections::VecDeque;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use super::model::{Kind, Monit};
use crate::spec::units::{format_bytes, format_uptime};
use crate::supervisor::state::short_size;
use crate::supervisor::Status;

/// CPU history is drawn against at least this (percent), so an idle app's
/// noise does not look like a spike.
const CPU_FLOOR: u64 = 5;

/// What drawing keeps between frames: the table's scroll position, and
/// whether to use colors.
pub(super) struct View {
    table: TableState,
    color: bool,
}

impl View {
    pub fn new(color: bool) -> Self {
        View {
            table: TableState::default(),
            color,
        }
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

    pub fn draw(&mut self, f: &mut Frame<'_>, m: &Monit) {
        let area = f.area();
        // Borders and header, then a row per instance, or one for the hint
        // of how to start an app.
        let wanted = m.rows.len().max(1) as u16 + 3;
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
        self.draw_list(f, m, list);
        self.draw_details(f, m, details);
        self.draw_logs(f, m, logs);
        self.draw_status(f, m, status);
    }

    fn draw_list(&mut self, f: &mut Frame<'_>, m: &Monit, area: Rect) {
        let n = m.rows.len();
        let title = format!(" pmr monit: {n} instance{} ", if n == 1 { "" } else { "s" });
        let header = Row::new([
            "id", "name", "status", "cpu", "memory", "history", "↺", "uptime",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row<'_>> = m
            .rows
            .iter()
            .map(|r| {
                let running = r.pid.is_some();
                let mem = m.memory.get(&r.id);
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
        self.table.select(m.selected_index());
        f.render_stateful_widget(table, area, &mut self.table);
        if m.rows.is_empty() {
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

    fn draw_details(&self, f: &mut Frame<'_>, m: &Monit, area: Rect) {
        let block = Block::bordered().title(" details ");
        let inner = block.inner(area);
        f.render_widget(block, area);
        let Some(r) = m.selected() else { return };
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
        if let Some(h) = &r.health {
            let last = h.last_result.as_deref().unwrap_or("no check yet");
            lines.push(kv(
                "health",
                format!(
                    "{} ({}, {} failed): {last}",
                    h.status.as_str(),
                    h.check,
                    h.consecutive_failures
                ),
            ));
        }
        if let Some(c) = &r.connections {
            lines.push(kv(
                "connections",
                format!("{} open, {} accepted", c.open, c.accepted),
            ));
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
        if let Some(h) = m.cpu.get(&r.id) {
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
        if let Some(h) = m.memory.get(&r.id) {
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

    fn draw_logs(&self, f: &mut Frame<'_>, m: &Monit, area: Rect) {
        let app = m.selected().map(|r| r.name.clone());
        let title = match &app {
            Some(a) => format!(" {a} logs "),
            None => " logs ".into(),
        };
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let Some(q) = app.as_ref().and_then(|a| m.logs.get(a)) else {
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

    fn draw_status(&self, f: &mut Frame<'_>, m: &Monit, area: Rect) {
        const KEYS: &str = " ↑↓/jk select  r reload  s stop/start  q quit";
        let line = match &m.notice {
            Some(n) => Line::from(vec![
                Span::raw(KEYS),
                Span::raw("   "),
                Span::styled(
                    n.text.as_str(),
                    self.style(if n.error { Color::Red } else { Color::Yellow }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::monit::model::tests::row;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(v: &mut View, m: &Monit, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| v.draw(f, m)).unwrap();
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
    fn fits_80_by_24_with_figures_and_logs() {
        let mut m = Monit::default();
        let mut v = View::new(false);
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
        let s = screen(&mut v, &m, 80, 24);
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
            screen(&mut v, &m, w, h);
        }
    }

    #[test]
    fn an_empty_list_says_how_to_start_and_notices_show() {
        let mut m = Monit::default();
        let mut v = View::new(false);
        m.notice("stopping api...".into(), false, std::time::Instant::now());
        let s = screen(&mut v, &m, 80, 24);
        assert!(
            s.contains("no apps; start one with pmr start app.js"),
            "{s}"
        );
        assert!(s.contains("pmr monit: 0 instances"), "{s}");
        assert!(s.lines().last().unwrap().contains("stopping api..."), "{s}");
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
