//! Command-line syntax. Flag names follow PM2's spelling so a PM2 user's
//! muscle memory works.

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  pmr start server.js --name api -i max   one worker per CPU, all on one port
  pmr start ecosystem.config.js --env production
  pmr init                                write a commented ecosystem.config.js
  pmr reload api                          zero-downtime: replace workers one by one
  pmr start npm --name next -- start      any command, with its arguments after --
  pmr logs api --lines 50                 last 50 lines, then follow
  pmr list                                what runs, with CPU and memory
  pmr examples                            more: cluster, reload, env_production, crash loops

Environment:
  PMR_HOME   where the daemon keeps its socket, pid file and logs (default ~/.pmr)
  NO_COLOR   disable colors (they are only used on a terminal anyway)";

#[derive(Debug, Parser)]
#[command(
    name = "pmr",
    version,
    about = "A production process manager for Node.js: keeps apps alive, runs them on every core, reloads them without dropping a request.",
    after_help = AFTER_HELP,
    disable_help_subcommand = true,
    disable_version_flag = true,
    propagate_version = true
)]
pub struct Cli {
    /// Print the version (PM2's -v; -V works too)
    #[arg(short = 'v', long = "version", visible_short_alias = 'V', action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
    /// Refuse ecosystem files with unknown keys (PM2 ignores them, pmr warns); also PMR_STRICT=1
    #[arg(long, global = true)]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an app (a script or any command), the apps of an ecosystem file, or stopped apps by name
    #[command(
        after_help = "Without an argument, pmr starts ecosystem.config.js (or .cjs, .mjs, .json,\n.yaml) from the current directory. Apps of a file that already run are left\nalone (pmr reload <file> applies changes to them).\n\nExamples:\n  pmr start server.js --name api\n  pmr start server.js -i max              cluster mode, one worker per CPU\n  pmr start app.py --name worker\n  pmr start npm --name next -- start\n  pmr start api                            start the stopped app 'api' again\n  pmr start ecosystem.config.js --env production --only api,worker"
    )]
    Start(Box<StartArgs>),
    /// Stop apps (they stay in the list; `pmr start <name>` brings them back)
    #[command(
        after_help = "Examples:\n  pmr stop api\n  pmr stop 3             only the instance with id 3\n  pmr stop all\n  pmr stop /^api-/       every app whose name matches\n  pmr stop ecosystem.config.js\n  pmr stop --watch api   stop watching api's files; api keeps running"
    )]
    Stop(StopArgs),
    /// Stop then start apps, all instances at once (brief downtime; see reload)
    #[command(
        after_help = "restart stops every instance and starts it again, so there is a gap in service.\nFor a deploy use `pmr reload`, which replaces instances one by one without\ndropping a request. With an ecosystem file, apps of the file that are not\nrunning are started; a changed definition is applied by reload, not restart.\n\nExamples:\n  pmr restart api\n  pmr restart api --update-env    take the current shell's environment\n  pmr restart ecosystem.config.js"
    )]
    Restart(RestartArgs),
    /// Zero-downtime reload: replace instances one by one, each once its replacement is ready
    #[command(
        after_help = "Each instance gets a replacement; the old one is stopped only once the\nreplacement listens (or sends 'ready' with --wait-ready). If a replacement\ncrashes or is not ready within listen_timeout, the reload stops, the old\ninstance keeps serving and pmr exits non-zero. Fork-mode apps are restarted\ninstead (start them with -i 1 to make them reloadable).\n\nWith an ecosystem file, reload applies what changed in it (env, args,\ninstances, limits...) to the running apps, says what changed, and starts the\napps of the file that are not running.\n\nExamples:\n  pmr reload api\n  pmr reload all --update-env\n  pmr reload ecosystem.config.js --env production"
    )]
    Reload(RestartArgs),
    /// Stop apps and remove them from the list
    #[command(
        visible_alias = "del",
        after_help = "Examples:\n  pmr delete api\n  pmr delete all\n  pmr delete ecosystem.config.js"
    )]
    Delete(FileTargetArgs),
    /// Show every app: id, name, mode, pid, status, restarts, uptime, cpu, memory
    #[command(visible_aliases = ["ls", "status"], alias = "l")]
    List,
    /// Print the process list as JSON (one object per instance)
    #[command(
        after_help = "Examples:\n  pmr jlist\n  pmr jlist --format pm2        PM2's shape, for scripts written for pm2 jlist\n  PMR_FORMAT=pm2 pmr jlist      the same, for tools that cannot pass a flag"
    )]
    Jlist(ListArgs),
    /// Print the process list as indented JSON
    #[command(after_help = "Examples:\n  pmr prettylist\n  pmr prettylist --format pm2")]
    Prettylist(ListArgs),
    /// Print the pids of an app's running instances, one per line (every app's without a name)
    #[command(after_help = "Examples:\n  pmr pid api\n  kill -USR2 $(pmr pid api)")]
    Pid(PidArgs),
    /// Show everything about an app: config, pids, restarts, last exit, log paths
    #[command(visible_aliases = ["desc", "show", "info"], after_help = "Examples:\n  pmr describe api\n  pmr describe 0")]
    Describe(TargetArgs),
    /// Full-screen dashboard: every instance with CPU and memory, details and live logs
    #[command(
        after_help = "Keys: ↑/↓ or j/k select an instance, r reloads its app, s stops or starts it,\nq quits. Needs a terminal: for scripts use pmr list, pmr jlist or pmr metrics.\n\nFigures come every metrics.interval (pmr set metrics.interval 2s)."
    )]
    Monit,
    /// Open the web dashboard the daemon serves: live instances, charts, logs, actions
    #[command(after_help = DASHBOARD_HELP)]
    Dashboard(DashboardArgs),
    /// Print every instance's figures in Prometheus text format
    #[command(
        after_help = "Per instance: up, restarts by reason, CPU and memory of its whole process\ntree, uptime, and for Node.js apps event-loop lag, heap and active handles.\n\nTo let Prometheus scrape them, serve them over HTTP (127.0.0.1 unless\nmetrics.host says otherwise):\n  pmr set metrics.port 9209       http://127.0.0.1:9209/metrics\n  pmr set metrics.port none       off again"
    )]
    Metrics,
    /// Print the environment an app runs with, secrets included
    #[command(
        after_help = "describe masks values that look secret; env prints them as they are.\nEach instance also gets NODE_APP_INSTANCE (or its instance_var), pm_id and\nPMR_ID.\n\nExamples:\n  pmr env api\n  pmr env 0"
    )]
    Env(EnvArgs),
    /// Write a commented ecosystem.config.js in the current directory
    #[command(
        visible_alias = "ecosystem",
        after_help = "The starter names the script it finds (package.json's main, server.js,\napp.js or index.js). pmr init never overwrites a file. The argument is an\napp name, or a file name ending in .js (PM2's `simple` writes the usual file).\n\nExamples:\n  pmr init && pmr start\n  pmr init api                 the app is named api\n  pmr init pm2.config.js       another file name"
    )]
    Init(InitArgs),
    /// Show the last lines of app logs, then follow new lines
    #[command(after_help = LOGS_HELP)]
    Logs(LogsArgs),
    /// Empty the log files of apps, in place (every app without a name)
    #[command(
        after_help = "The files are emptied where they are, so the apps keep writing to them.\nRotated files are kept.\n\nExamples:\n  pmr flush          every app\n  pmr flush api"
    )]
    Flush(FlushArgs),
    /// Add or remove instances of an app without touching the others
    #[command(
        after_help = "Examples:\n  pmr scale api 4     exactly 4 instances\n  pmr scale api +2    two more\n  pmr scale api -1    one fewer"
    )]
    Scale(ScaleArgs),
    /// Zero the restart counts of apps (restarts, by reason, and unstable restarts)
    #[command(after_help = "Examples:\n  pmr reset api\n  pmr reset all")]
    Reset(TargetArgs),
    /// Start the apps of an ecosystem file that do not run; restart the ones that do
    #[command(
        name = "startOrRestart",
        after_help = "Like pmr restart <file>: every app of the file gets the file's current\ndefinition, stopped and started at once (brief downtime); the ones not running\nare started.\n\nExamples:\n  pmr startOrRestart ecosystem.config.js --env production"
    )]
    StartOrRestart(EcosystemArgs),
    /// Start the apps of an ecosystem file that do not run; reload the ones that do
    #[command(
        name = "startOrReload",
        after_help = "Like pmr reload <file>: what changed in the file is applied to the running\napps one instance at a time (zero downtime in cluster mode); the apps not\nrunning are started.\n\nExamples:\n  pmr startOrReload ecosystem.config.js --env production"
    )]
    StartOrReload(EcosystemArgs),
    /// Replace the running daemon by the installed version of pmr, in place: the apps keep running
    #[command(after_help = UPDATE_HELP)]
    Update(UpdateArgs),
    /// Show how to do the everyday things: cluster mode, reloads, ecosystem files, crash loops
    Examples,
    /// Send a signal to the processes of apps
    #[command(
        name = "sendSignal",
        visible_alias = "signal",
        after_help = "Examples:\n  pmr sendSignal SIGUSR2 api"
    )]
    SendSignal(SignalArgs),
    /// Write a line to the stdin of an app's running instances (PM2's send)
    #[command(
        after_help = "The line goes to the instance's stdin with a newline added: for apps that\nread commands there (process.stdin, readline). A line waits in a queue of\n64 lines while the app does not read; past that pmr refuses it (\"stdin ... is\nfull\") instead of waiting. An app that never reads its stdin is not affected.\n\nExamples:\n  pmr send 0 \"reload-config\"\n  pmr send worker \"pause\"        every instance of worker"
    )]
    Send(SendArgs),
    /// Reopen every log file (after an external tool moved them)
    #[command(name = "reloadLogs")]
    ReloadLogs,
    /// Save the process list, to bring it back with resurrect (after a reboot too, see startup)
    #[command(visible_alias = "dump")]
    Save,
    /// Start the saved apps that are not running (stopped ones come back stopped)
    Resurrect,
    /// Empty the saved process list
    Cleardump,
    /// Write a systemd unit that brings the daemon and the saved apps back at boot
    #[command(after_help = STARTUP_HELP)]
    Startup(StartupArgs),
    /// Remove the unit written by startup
    Unstartup(StartupArgs),
    /// Change a daemon-wide setting (kept in $PMR_HOME/config.json)
    #[command(after_help = SET_HELP)]
    Set(SetArgs),
    /// Show daemon-wide settings
    Get(GetArgs),
    /// Put a daemon-wide setting back to its default, or remove a per-app value
    #[command(
        after_help = "Examples:\n  pmr unset log.max_size\n  pmr unset pm2-logrotate:retain\n  pmr unset api.FEATURE_FLAGS    api no longer gets it from its next start"
    )]
    Unset(UnsetArgs),
    /// Change several daemon-wide settings at once: "key value key value"
    #[command(
        after_help = "Every pair is checked first: one bad pair changes nothing.\n\nExamples:\n  pmr multiset \"log.retain 30 log.compress true\""
    )]
    Multiset(MultisetArgs),
    /// PM2 modules: pm2-logrotate is built in (this turns it on); others are not needed
    #[command(after_help = INSTALL_HELP)]
    Install(ModuleArgs),
    /// PM2 modules: uninstalling pm2-logrotate turns pmr's built-in rotation off
    #[command(
        after_help = "Examples:\n  pmr uninstall pm2-logrotate    log.max_size 0, log.rotate_interval none"
    )]
    Uninstall(ModuleArgs),
    /// Alerts: send a test alert to every receiver and print each answer
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Start the daemon if needed and check that it answers
    Ping,
    /// Stop every app gracefully, then the daemon
    Kill,
}

const DASHBOARD_HELP: &str = "\
The daemon serves the dashboard on 127.0.0.1 (a free port the first time,
kept in dashboard.port). The printed link carries a token (kept in
$PMR_HOME/dashboard.token, 0600) that the page swaps for a session cookie.

From another machine, forward the port over SSH instead of exposing it:
  ssh -L 9615:127.0.0.1:9615 server     then open the link on your machine

Examples:
  pmr dashboard                  print the link and open it in the browser
  pmr dashboard --no-open        only print the link
  pmr dashboard --port 9615      serve it on this port from now on
  pmr set dashboard.port none    turn it off";
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test alert to every receiver (notify.* settings and each app's notify) and print each answer
    #[command(
        after_help = "Examples:\n  pmr set notify.slack https://hooks.slack.com/services/T000/B000/XXXX\n  pmr notify test"
    )]
    Test,
}

const UPDATE_HELP: &str = "\
After installing a new version of pmr, the daemon still running is the old
one. pmr update first runs the new binary (--version): one that does not run
leaves the old daemon as it is. The old daemon then hands over in place: it
exits leaving every app running, and its keeper (the process that holds the
apps' sockets, pipes and IPC channels) starts the new binary, which adopts
the apps: same pids, same restart counts, no connection refused. If the new
daemon fails before it is ready, the keeper starts the old binary again.
A daemon started by an older pmr has no keeper: it is replaced the old way
(the list saved as pmr save does, every app stopped, brought back as pmr
resurrect does), with the apps down for a few seconds.

Examples:
  npm install pmr@latest && npx pmr update";

const STARTUP_HELP: &str = "\
As root, writes a system unit /etc/systemd/system/pmr-<user>.service (for
--user <name>, or root). Otherwise writes ~/.config/systemd/user/pmr.service,
and prints how to enable it, how to make it start at boot without a login
(loginctl enable-linger), and the sudo command for a system unit instead.
The unit runs `pmr resurrect` at start and `pmr kill` at stop: run `pmr save`
after changing what runs. Its PATH is node's directory, then your PATH of
now (nvm, volta), then the system directories. Where systemd is not running
(a container) pmr writes nothing: make `pmr-runtime` the entrypoint instead,
or write the unit anyway with --force.

Examples:
  pmr startup
  pmr startup --dry-run                       print the unit only
  sudo pmr startup systemd --user deploy --home-path /home/deploy";

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// Init system (only systemd)
    #[arg(value_name = "systemd")]
    pub init: Option<String>,
    /// Print the unit, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The user whose apps the unit runs (root only)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// That user's home directory
    #[arg(long = "home-path", visible_alias = "hp")]
    pub home_path: Option<String>,
    /// Write the unit even though systemd is not running here (an image built for another machine)
    #[arg(long)]
    pub force: bool,
    /// Name of the unit (default pmr, or pmr-<user> for a system unit)
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
}
const LOGS_HELP: &str = "\
Lines come from the daemon as the apps write them. The last lines of out and
err are shown in the order they were written when the daemon has them in
memory (the last 1000 lines of each instance); older history is read from
the files, one file after the other.

Examples:
  pmr logs                       every app
  pmr logs api --lines 100       last 100 lines of each stream, then follow
  pmr logs api --nostream        print and exit
  pmr logs api --err --raw       stderr only, without the \"id|name |\" prefix
  pmr logs --json                one JSON object per line
  pmr logs api --timestamp       with the time pmr received each line
  pmr logs api --timestamp='%H:%M:%S'";

const INSTALL_HELP: &str = "\
PM2 extends itself with npm modules; pmr has no module system and builds in
what the common ones do. Log rotation (pm2-logrotate) is built in and on by
default (10M, 10 files kept); pmr install pm2-logrotate says so, turning it
back on if it was turned off. Other modules are refused with what pmr has
instead (pmr monit, pmr metrics).

Examples:
  pmr install pm2-logrotate
  pmr set pm2-logrotate:max_size 50M     the module's keys name pmr's settings";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// App name, or the file to write (ends in .js, .cjs or .mjs)
    #[arg(value_name = "name|file")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModuleArgs {
    /// Module name, e.g. pm2-logrotate
    pub module: String,
}

const SET_HELP: &str = "\
Settings:
  log.max_size         rotate a log file before it passes this size (default 10M; 0: never)
  log.retain           rotated files kept per log file (default 10)
  log.compress         gzip rotated files (default false)
  log.rotate_interval  also rotate on a schedule: daily, or none (default none)
  metrics.port         serve Prometheus metrics on this port (default none: off)
  metrics.host         address of the metrics endpoint (default 127.0.0.1)
  metrics.interval     CPU and memory sampling interval (default 1s)
  notify.webhook       URLs that get each alert as JSON, comma-separated (default none)
  notify.slack         Slack-compatible webhook URLs, comma-separated (default none)
  notify.command       a command that gets each alert as JSON on stdin (default none)
  notify.events        alert events sent: crash, errored, memory, health,
                       reload_failed, daemon, comma-separated (default all)
  notify.throttle      per app and event, alerts within this long go into one summary (default 1m)
  notify.timeout       deadline of each alert delivery (default 5s)

PM2's pm2-logrotate keys work too: pm2-logrotate:max_size, :retain,
:compress and :rotateInterval ('0 0 * * *' is daily).

Per app: pmr set <app>.<KEY> <value> gives the app KEY=value in its
environment from its next start, over its own env (PM2's app:key works too);
pmr get lists them, pmr unset <app>.<KEY> removes one.

Examples:
  pmr set log.max_size 50M
  pmr set metrics.port 9209
  pmr set pm2-logrotate:retain 30
  pmr set api.FEATURE_FLAGS beta      then: pmr restart api";

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Only print the link; do not start a browser
    #[arg(long)]
    pub no_open: bool,
    /// Address to serve on; anything but loopback exposes the dashboard to the network
    #[arg(long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// Port to serve on (kept in dashboard.port)
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Setting name, e.g. log.max_size, or <app>.<KEY> for an app's environment
    pub key: String,
    /// New value
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

#[derive(Debug, Args)]
pub struct UnsetArgs {
    /// Setting name, e.g. log.max_size
    pub key: String,
}

#[derive(Debug, Args)]
pub struct MultisetArgs {
    /// Keys and values, space-separated, in one argument
    #[arg(value_name = "KEY VALUE ...")]
    pub pairs: String,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Setting name (default: all of them)
    pub key: Option<String>,
}

/// The shape `jlist` and `prettylist` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// pmr's rows (DESIGN's contract)
    Pmr,
    /// PM2's: pid, name, pm_id, monit, pm2_env
    Pm2,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pmr (default) or pm2; default from PMR_FORMAT
    #[arg(long, value_enum, value_name = "pmr|pm2")]
    pub format: Option<ListFormat>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// App name, id, namespace, /regex/ or `all` (several allowed)
    #[arg(required = true, value_name = "name|id|all")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub file: FileTargetArgs,
    /// Only stop watching the apps' files: the apps keep running (pmr restart watches again)
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct PidArgs {
    /// App name, id, namespace or /regex/ (default: every app)
    #[arg(value_name = "name|id")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct EcosystemArgs {
    /// The ecosystem file (ecosystem.config.js, .json, .yaml...)
    #[arg(value_name = "file")]
    pub file: String,
    /// Merge each app's env_<NAME> over its env
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Only these apps of the file (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Give the running apps the environment of this shell
    #[arg(long)]
    pub update_env: bool,
}

#[derive(Debug, Args)]
pub struct FileTargetArgs {
    /// App name, id, namespace, /regex/, `all` (several allowed), or an ecosystem file
    #[arg(required = true, value_name = "name|id|all|file")]
    pub targets: Vec<String>,
    /// With an ecosystem file: only these apps of it (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// App name, id, namespace, /regex/, `all` (several allowed), or an ecosystem file
    #[arg(required = true, value_name = "name|id|all|file")]
    pub targets: Vec<String>,
    /// Give the apps the environment of this shell instead of the one they were started with
    #[arg(long)]
    pub update_env: bool,
    /// With an ecosystem file: only these apps of it (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// With an ecosystem file: merge each app's env_<NAME> over its env
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[command(flatten)]
    pub app: AppOptions,
}

/// App options `restart` and `reload` apply to the apps they name, as PM2
/// does; the apps keep them from then on.
#[derive(Debug, Args, Default)]
pub struct AppOptions {
    /// New options for the interpreter, e.g. "--max-old-space-size=4096"
    #[arg(
        long = "node-args",
        visible_alias = "interpreter-args",
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub node_args: Option<String>,
    /// New instance count: a number, max, or -N (CPUs minus N)
    #[arg(short = 'i', long, allow_hyphen_values = true, value_name = "N|max")]
    pub instances: Option<String>,
    /// Watch the app's directory if it is not watched, stop watching if it is
    #[arg(long)]
    pub watch: bool,
    /// Rename the app (one app only); pmr gives it new ids
    #[arg(short = 'n', long, value_name = "NEW_NAME")]
    pub name: Option<String>,
}

impl AppOptions {
    pub fn any(&self) -> bool {
        self.node_args.is_some() || self.instances.is_some() || self.watch || self.name.is_some()
    }
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// App name or instance id
    #[arg(value_name = "name|id")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// App name, id or `all` (default: all)
    #[arg(value_name = "name|id|all")]
    pub target: Option<String>,
    /// How many past lines to show per file
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub lines: usize,
    /// Print the past lines and exit, without following
    #[arg(long)]
    pub nostream: bool,
    /// Only the error stream
    #[arg(long, conflicts_with = "out")]
    pub err: bool,
    /// Only the output stream
    #[arg(long)]
    pub out: bool,
    /// Lines without the `id|name |` prefix
    #[arg(long)]
    pub raw: bool,
    /// One JSON object per line: timestamp, app, id, stream, message
    #[arg(long)]
    pub json: bool,
    /// Prefix lines with the time pmr received them; `--timestamp=FORMAT`
    /// for another format (strftime, or day.js tokens like PM2's)
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "FORMAT")]
    pub timestamp: Option<Option<String>>,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// App name, id, namespace, or `all` (default: every app)
    #[arg(value_name = "name|id|all")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// App name
    pub name: String,
    /// Instance count: N, +N or -N
    #[arg(allow_hyphen_values = true)]
    pub count: String,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Instance id (PM2's pm_id) or app name
    #[arg(value_name = "id|name")]
    pub target: String,
    /// The line to write (a newline is added)
    #[arg(allow_hyphen_values = true)]
    pub line: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The daemon binary to hand over to (default: the pmr-daemon installed beside pmr)
    #[arg(long, value_name = "path")]
    pub daemon_binary: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// Signal name or number, e.g. SIGUSR2
    pub signal: String,
    /// App name, id, namespace, or `all`
    #[arg(required = true, value_name = "name|id|all")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Scripts (.js, .cjs, .mjs run with node; .sh with bash; .py with python3;
    /// a file with a `node` shebang or no extension runs with node), commands in
    /// PATH (a command line with spaces runs through bash -c), an ecosystem file
    /// (`-` reads one as JSON from stdin), or names/ids of apps
    #[arg(value_name = "script|command|file|name")]
    pub scripts: Vec<String>,
    /// Start a new app even if one runs that script: it gets a free name (api-2)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Fork mode: run one process per instance, never a cluster (PM2's --execute-command)
    #[arg(short = 'x', long = "execute-command")]
    pub execute_command: bool,
    /// Write the app's pid to this file (instance N > 0: <stem>-N.<ext>)
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid_file: Option<String>,
    /// Accepted as PM2 takes it; pmr has no monitoring agent to turn off
    #[arg(long = "no-automation")]
    pub no_automation: bool,
    /// Do not add --enable-source-maps, even when a .map file sits beside the script
    #[arg(long, conflicts_with = "source_map_support")]
    pub disable_source_map_support: bool,

    /// With an ecosystem file: only these apps of it (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// With an ecosystem file: merge each app's env_<NAME> over its env
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Return as soon as the processes are spawned, without waiting for them
    /// to be online or watching them through min_uptime
    #[arg(long)]
    pub no_wait: bool,

    /// Arguments for the app, after --
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,

    /// App name (default: the script's file name without extension)
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Working directory of the app
    #[arg(long)]
    pub cwd: Option<String>,
    /// Interpreter to run the script with (`none`: execute it directly)
    #[arg(long)]
    pub interpreter: Option<String>,
    /// Options for the interpreter, e.g. "--max-old-space-size=4096"
    #[arg(
        long = "node-args",
        visible_alias = "interpreter-args",
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub node_args: Option<String>,
    /// Instances: a number, `max` or 0 (one per CPU), or -N (CPUs minus N).
    /// More than one instance of a Node.js app runs in cluster mode.
    #[arg(short = 'i', long, allow_hyphen_values = true, value_name = "N|max")]
    pub instances: Option<String>,
    /// Namespace the app belongs to (a target for commands)
    #[arg(long)]
    pub namespace: Option<String>,

    /// Restart an instance whose memory passes this size (e.g. 300M, 1G)
    #[arg(long, value_name = "SIZE")]
    pub max_memory_restart: Option<String>,
    /// Consecutive unstable restarts before the app is marked errored [default: 16]
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// An exit sooner than this after start counts as unstable (e.g. 10s) [default: 1000ms]
    #[arg(long, value_name = "TIME")]
    pub min_uptime: Option<String>,
    /// Wait this long before restarting a crashed app (e.g. 500ms)
    #[arg(long, value_name = "TIME")]
    pub restart_delay: Option<String>,
    /// Restart delay that grows ×1.5 per consecutive crash, up to 15 s
    #[arg(long, value_name = "TIME")]
    pub exp_backoff_restart_delay: Option<String>,
    /// Do not restart the app when it exits
    #[arg(long)]
    pub no_autorestart: bool,
    /// Exit codes after which the app is not restarted, e.g. 0,3
    #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "CODES", allow_hyphen_values = true)]
    pub stop_exit_codes: Vec<i32>,

    /// Time between the stop signal and SIGKILL (e.g. 5s) [default: 1600ms]
    #[arg(long, value_name = "TIME")]
    pub kill_timeout: Option<String>,
    /// Signal that asks the app to stop [default: SIGINT]
    #[arg(long, value_name = "SIGNAL")]
    pub kill_signal: Option<String>,
    /// Ask the app to stop with process.send('shutdown') instead of a signal
    #[arg(long)]
    pub shutdown_with_message: bool,
    /// The app is ready when it calls process.send('ready'), not when it listens
    #[arg(long)]
    pub wait_ready: bool,
    /// How long a new instance may take to become ready [default: 3000ms]
    #[arg(long, value_name = "TIME")]
    pub listen_timeout: Option<String>,
    /// Environment variable holding the instance number [default: NODE_APP_INSTANCE]
    #[arg(long, value_name = "NAME")]
    pub instance_var: Option<String>,
    /// Environment variable whose value grows by one per instance (e.g. PORT)
    #[arg(long, value_name = "NAME")]
    pub increment_var: Option<String>,

    /// Reload the app when files change (`--watch` for the cwd, `--watch=src,lib` for paths)
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "PATHS")]
    pub watch: Option<Option<String>>,
    /// Globs not to watch, comma-separated, e.g. "*.log,tmp" (node_modules and dotfiles never are)
    #[arg(long, value_delimiter = ',', value_name = "PATHS")]
    pub ignore_watch: Vec<String>,
    /// Reload once files have been quiet this long after a change [default: 1000ms]
    #[arg(long, value_name = "TIME")]
    pub watch_delay: Option<String>,
    /// Reload on a cron schedule, e.g. "0 3 * * *", "@daily", or 6 fields with seconds first
    #[arg(
        short = 'c',
        long = "cron-restart",
        visible_alias = "cron",
        value_name = "PATTERN"
    )]
    pub cron_restart: Option<String>,
    /// Run the app as this user (name or number): the child drops privileges to it (root only, to switch user)
    #[arg(long, value_name = "USER")]
    pub uid: Option<String>,
    /// Run the app with this group (name or number), with --uid [default: the user's primary group]
    #[arg(long, value_name = "GROUP")]
    pub gid: Option<String>,
    /// Run a Node.js app with --enable-source-maps (stack traces point into your sources)
    #[arg(long)]
    pub source_map_support: bool,
    /// How a cluster app's connections reach its workers: round-robin, least-connections, sticky or shared [default: round-robin]
    #[arg(long, value_name = "POLICY")]
    pub lb: Option<String>,

    /// File for the app's stdout
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub out_file: Option<String>,
    /// File for the app's stderr
    #[arg(short = 'e', long = "error", value_name = "PATH")]
    pub error_file: Option<String>,
    /// Also write stdout and stderr together to this file
    #[arg(short = 'l', long = "log", value_name = "PATH")]
    pub log_file: Option<String>,
    /// One log file for all instances instead of one per instance
    #[arg(long)]
    pub merge_logs: bool,
    /// Prefix every log line with a timestamp
    #[arg(long)]
    pub time: bool,
    /// Timestamp format (strftime, e.g. "%Y-%m-%d %H:%M:%S"); implies --time
    #[arg(long, value_name = "FORMAT")]
    pub log_date_format: Option<String>,
    /// `json`: write each log line as a JSON object (timestamp, app, id, instance, stream, message)
    #[arg(long, value_name = "TYPE")]
    pub log_type: Option<String>,
    /// Discard the app's output (both streams go to /dev/null)
    #[arg(long)]
    pub disable_logs: bool,

    /// Health check: GET this path of each instance's own server (e.g. /healthz), or a URL
    #[arg(long, value_name = "PATH|URL")]
    pub health_http: Option<String>,
    /// Health check: connect to this port on 127.0.0.1
    #[arg(long, value_name = "PORT")]
    pub health_tcp: Option<String>,
    /// Health check: run this command in the app's directory; exit 0 is healthy
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between health checks [default: 5s]
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// How long a health check may take [default: 2s]
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Failed health checks in a row that make an instance unhealthy [default: 3]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub health_failures: Option<String>,
    /// After a start, health check failures during this long do not count [default: 0s]
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Replace an instance whose event loop stays blocked longer than this (e.g. 5s)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub max_event_loop_lag: Option<String>,
}
