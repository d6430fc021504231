//! The `pmr` command line. Runs inside the Node process that `bin/pmr.js`
//! starts; talks to the daemon over its socket with a blocking client.

mod args;
mod dashboard;
#[cfg(test)]
mod docs_check;
mod ecosystem;
mod examples;
mod init;
mod logs;
mod metrics;
mod module;
mod monit;
mod notify;
mod report;
pub mod runtime;
mod settle;
mod show;
mod start;
mod startup;
mod style;
mod table;
mod update;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::client::{connect_or_start, Client, Launcher};
use crate::error::{Error, Result};
use crate::paths::Home;
use crate::protocol::{Cleared, Killed, Pong, Reopened, Request, Saved, SettingChanged};
use crate::settings::AllSettings;
use crate::supervisor::{InstanceInfo, Report, ScaleTo};
use args::{Cli, Command};
use ecosystem::Removal;
use style::Style;

/// What the JS host lends the CLI.
pub trait Host {
    /// The `node` binary running pmr: apps run with the same one.
    fn node(&self) -> PathBuf;
    /// The daemon's entry script.
    fn daemon_script(&self) -> PathBuf;
    /// The native daemon, when the addon ships one.
    fn daemon_binary(&self) -> Option<PathBuf> {
        None
    }
    /// Evaluates a JavaScript config file (CommonJS or ES module), which
    /// only Node can. Answers JSON text: `{"config": <what it exports>}`, or
    /// `{"error": "<one line>", "line": <line in the file or null>}`.
    fn load_js_config(&self, path: &Path) -> Result<String>;
}

pub(crate) struct Ctx<'a> {
    pub home: Home,
    pub style: Style,
    pub host: &'a dyn Host,
    /// Unknown keys in ecosystem files are errors (`--strict`, `PMR_STRICT=1`).
    pub strict: bool,
}

impl Ctx<'_> {
    fn launcher(&self) -> Launcher {
        Launcher {
            node: self.host.node(),
            daemon_script: self.host.daemon_script(),
            daemon_binary: self.host.daemon_binary(),
        }
    }

    /// A client of the running daemon, starting one if needed.
    pub fn daemon(&self) -> Result<Client> {
        let (client, started) = connect_or_start(&self.home, &self.launcher())?;
        if let Some(notices) = started {
            info(&format!(
                "started the daemon for {}",
                self.home.root().display()
            ));
            for n in notices {
                info(&n);
            }
        }
        Ok(client)
    }

    /// A client of the daemon if one runs. A daemon that died without
    /// cleaning up (its state file is still there) may have left apps
    /// running: then a new one is started, which stops them and brings the
    /// apps back.
    pub fn existing_daemon(&self) -> Result<Option<Client>> {
        if let Some(c) = Client::connect(&self.home)? {
            return Ok(Some(c));
        }
        if self.home.state_file().exists() {
            return self.daemon().map(Some);
        }
        Ok(None)
    }

    /// A client of the running daemon; an error when none runs.
    pub fn running_daemon(&self) -> Result<Client> {
        self.existing_daemon()?.ok_or_else(|| {
            Error::Daemon(format!(
                "no daemon is running for {} (so no app is either); start an app with pmr start",
                self.home.root().display()
            ))
        })
    }
}

/// Writes to stdout; false once stdout is gone (a closed pipe).
pub(crate) fn out(s: &str) -> bool {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes()).and_then(|_| o.flush()).is_ok()
}

pub(crate) fn outln(s: &str) -> bool {
    out(&format!("{s}\n"))
}

pub(crate) fn info(s: &str) {
    outln(&format!("[pmr] {s}"));
}

fn err_line(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "[pmr] error: {s}");
}

/// Runs one command line; returns the process exit code.
pub fn run(argv: &[String], host: &dyn Host) -> i32 {
    let cli =
        match Cli::try_parse_from(std::iter::once("pmr".to_string()).chain(argv.iter().cloned())) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        };
    let home = match Home::from_env() {
        Ok(h) => h,
        Err(e) => {
            err_line(&e.to_string());
            return 1;
        }
    };
    let ctx = Ctx {
        home,
        style: Style::detect(),
        host,
        strict: cli.strict
            || crate::spec::ecosystem::strict_from_env(std::env::var("PMR_STRICT").ok().as_deref()),
    };
    match execute(cli.command, &ctx) {
        Ok(()) => 0,
        Err(e) => {
            err_line(&e.to_string());
            1
        }
    }
}

fn execute(cmd: Command, ctx: &Ctx<'_>) -> Result<()> {
    match cmd {
        Command::Start(a) => start::run(ctx, *a),
        Command::Stop(a) => ecosystem::stop_or_delete(
            ctx,
            a.file,
            if a.watch {
                Removal::StopWatch
            } else {
                Removal::Stop
            },
        ),
        Command::Restart(a) => ecosystem::restart(ctx, a),
        Command::Reload(a) => ecosystem::reload(ctx, a),
        Command::StartOrRestart(a) => ecosystem::start_or(ctx, a, false),
        Command::StartOrReload(a) => ecosystem::start_or(ctx, a, true),
        Command::Delete(a) => ecosystem::stop_or_delete(ctx, a, Removal::Delete),
        Command::Env(a) => ecosystem::print_env(ctx, a.target),
        Command::Init(a) => init::run(a.name),
        Command::List => show::list(ctx),
        Command::Jlist(a) => show::jlist(ctx, false, a.format),
        Command::Prettylist(a) => show::jlist(ctx, true, a.format),
        Command::Pid(a) => show::pids(ctx, a.target),
        Command::Reset(a) => act(ctx, Request::Reset { target: a.targets }, "reset"),
        Command::Update(a) => update::run(ctx, a.daemon_binary.as_deref()),
        Command::Install(a) => module::install(ctx, a),
        Command::Uninstall(a) => module::uninstall(ctx, a),
        Command::Examples => {
            out(examples::TEXT);
            Ok(())
        }
        Command::Describe(a) => show::describe(ctx, a.targets),
        Command::Monit => monit::run(ctx),
        Command::Dashboard(a) => dashboard::run(ctx, a),
        Command::Metrics => metrics::run(ctx),
        Command::Logs(a) => logs::run(ctx, a),
        Command::Flush(a) => logs::flush(ctx, a),
        Command::Scale(a) => {
            let to = ScaleTo::parse(&a.count).map_err(Error::Config)?;
            act(ctx, Request::Scale { name: a.name, to }, "scaled")
        }
        Command::SendSignal(a) => {
            crate::process::signal::parse_signal(&a.signal).map_err(Error::Config)?;
            let report: Report = ctx.running_daemon()?.request_as(Request::Signal {
                target: a.targets,
                signal: a.signal.clone(),
            })?;
            for i in report.instances.iter().filter(|i| i.pid.is_some()) {
                info(&format!(
                    "sent {} to {} (id {}, pid {})",
                    a.signal,
                    i.name,
                    i.id,
                    i.pid.unwrap_or(0)
                ));
            }
            report::verdict(&report)
        }
        Command::Send(a) => {
            let report: Report = ctx.running_daemon()?.request_as(Request::SendLine {
                target: a.target,
                line: a.line,
            })?;
            show::sent_line(&report);
            Ok(())
        }
        Command::ReloadLogs => {
            ctx.running_daemon()?
                .request_as::<Reopened>(Request::ReloadLogs)?;
            info("log files reopened");
            Ok(())
        }
        Command::Save => {
            report_saved(&ctx.running_daemon()?.request_as(Request::Save)?);
            Ok(())
        }
        Command::Resurrect => {
            let mut c = ctx.daemon()?;
            match c.request_as::<Report>(Request::Resurrect) {
                Ok(report) => {
                    for n in &report.notices {
                        info(n);
                    }
                    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
                    Ok(())
                }
                // Nothing saved is not a failure: the daemon runs, there is nothing to bring back.
                Err(Error::NotFound(m)) => {
                    info(&m);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Command::Cleardump => {
            let r: Cleared = ctx.daemon()?.request_as(Request::ClearDump)?;
            info(&format!("emptied {}", r.path.display()));
            Ok(())
        }
        Command::Notify(args::NotifyCommand::Test) => notify::test(ctx),
        Command::Startup(a) => startup::startup(ctx, a),
        Command::Unstartup(a) => startup::unstartup(ctx, a),
        Command::Set(a) => set_setting(&mut ctx.daemon()?, a.key, a.value, ""),
        Command::Unset(a) => {
            if crate::settings::AppKey::parse(&a.key)?.is_some() {
                let r: SettingChanged = ctx.daemon()?.request_as(Request::Unset { key: a.key })?;
                return show::unset_app(&r);
            }
            let value = crate::settings::default_text(&a.key)?;
            set_setting(&mut ctx.daemon()?, a.key, value, " (the default)")
        }
        Command::Multiset(a) => {
            let pairs = crate::settings::parse_multiset(&a.pairs)?;
            let mut c = ctx.daemon()?;
            for (key, value) in pairs {
                set_setting(&mut c, key, value, "")?;
            }
            Ok(())
        }
        Command::Get(a) => {
            let mut c = ctx.daemon()?;
            match a.key {
                Some(key) => {
                    let v: serde_json::Value = c.request_as(Request::Get { key: Some(key) })?;
                    outln(&v.to_string());
                }
                None => {
                    let all: AllSettings = c.request_as(Request::Get { key: None })?;
                    // The keys in the order `pmr set` lists them, spelled as it takes them.
                    if let serde_json::Value::Object(m) = serde_json::to_value(&all)
                        .map_err(|e| Error::Protocol(format!("cannot show the settings: {e}")))?
                    {
                        for (k, v) in m {
                            outln(&format!("{k} = {v}"));
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Ping => {
            let pong: Pong = ctx.daemon()?.request_as(Request::Ping)?;
            info(&format!(
                "pong: daemon pid {} (pmr {}) serves {}",
                pong.pid, pong.version, pong.home
            ));
            Ok(())
        }
        Command::Kill => {
            let Some(mut c) = ctx.existing_daemon()? else {
                info(&format!(
                    "no daemon is running for {}",
                    ctx.home.root().display()
                ));
                return Ok(());
            };
            c.request_as::<Killed>(Request::Kill)?;
            c.wait_closed();
            info("stopped every app and the daemon");
            Ok(())
        }
    }
}

/// Changes one daemon setting and says what it is now.
fn set_setting(c: &mut Client, key: String, value: String, what: &str) -> Result<()> {
    let r: SettingChanged = c.request_as(Request::Set { key, value })?;
    info(&format!("{} = {}{what}", r.key, r.value));
    if let Some(note) = &r.note {
        info(note);
    }
    Ok(())
}

/// Prints the daemon's answer to `save`: which apps went to which file.
/// Returns how many.
fn report_saved(saved: &Saved) -> usize {
    let n = saved.apps.len();
    info(&format!(
        "saved {n} app{} ({}) to {}",
        if n == 1 { "" } else { "s" },
        saved.apps.join(", "),
        saved.path.display()
    ));
    n
}

/// The environment of this CLI call, which apps inherit.
pub(crate) fn caller_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Whether `verb` is what happened to the instance: a fork-mode app is
/// restarted instead of reloaded (the daemon's notice says so), so it is
/// never also said to be "reloaded".
pub(crate) fn really(verb: &str, i: &InstanceInfo) -> bool {
    verb != "reloaded" || i.mode == crate::spec::ExecMode::Cluster
}

/// Runs a request that returns a report, prints its notices and the list.
fn act(ctx: &Ctx<'_>, req: Request, verb: &str) -> Result<()> {
    let mut c = ctx.running_daemon()?;
    let report: Report = c.request_as(req)?;
    for n in &report.notices {
        info(n);
    }
    let mut names: Vec<&str> = Vec::new();
    for i in report.instances.iter().filter(|i| really(verb, i)) {
        if !names.contains(&i.name.as_str()) {
            names.push(&i.name);
        }
    }
    if !names.is_empty() && !verb.is_empty() {
        info(&format!("{verb} {}", names.join(", ")));
    }
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    report::verdict(&report)
}
