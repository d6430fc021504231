//! The terminal `pmr monit` takes over: raw mode and the alternate screen
//! for as long as a guard lives, put back on every way out (a normal quit,
//! an error, and a panic: a panic hook restores the terminal before the
//! message prints), and the keys and resizes read from it.

use std::io::Stdout;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEvent, KeyEventKind};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;

use crate::error::{Error, Result};

pub(super) type Screen = Terminal<CrosstermBackend<Stdout>>;

/// What the user did at the terminal.
pub(super) enum Input {
    Key(KeyEvent),
    Resize,
}

/// Waits up to `wait` for a key press (or repeat) or a resize; None when
/// nothing came or the event is of no interest (releases, mouse, focus).
pub(super) fn next_input(wait: Duration) -> Result<Option<Input>> {
    let io = |e| Error::io("the terminal failed", e);
    if !event::poll(wait).map_err(io)? {
        return Ok(None);
    }
    Ok(match event::read().map_err(io)? {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => Some(Input::Key(k)),
        TermEvent::Resize(..) => Some(Input::Resize),
        _ => None,
    })
}

/// Raw mode and the alternate screen for as long as it lives; the panic
/// hook restores the terminal first, so the panic message is readable and
/// the shell usable.
pub(super) struct TerminalGuard {
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
    pub fn enter() -> Result<Self> {
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

    /// The screen to draw on, on stdout.
    pub fn screen(&self) -> Result<Screen> {
        Terminal::new(CrosstermBackend::new(std::io::stdout()))
            .map_err(|e| Error::io("cannot draw on the terminal", e))
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
