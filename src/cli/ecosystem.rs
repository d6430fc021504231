//! Commands on ecosystem files: `pmr start|reload|restart|stop|delete
//! <file>`. A file is read and checked completely, every problem printed,
//! before anything is sent to the daemon.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::args::{AppOptions, EcosystemArgs, FileTargetArgs, RestartArgs};
use super::{act, caller_env, info, report, Ctx};
use crate::client::select::plan_start;
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::spec::ecosystem::{
    is_config_file, load_apps, parse_text, read_apps, Format, Problem, Selection, DEFAULT_FILES,
};
use crate::spec::{host_cpus, AppConfig, AppSpec, ExecMode, Instances, ResolveContext};
use crate::supervisor::{Description, InstanceInfo};

/// The ecosystem file `pmr start` uses when given no argument.
pub(super) fn default_file() -> Result<String> {
    DEFAULT_FILES
        .iter()
        .find(|f| Path::new(f).is_file())
        .map(|f| f.to_string())
        .ok_or_else(|| {
            Error::Config(
                "nothing to start: no script given and no ecosystem.config.js (.cjs, .mjs, .json, .yaml) here; pmr start <script|file>, or pmr init to write one".into(),
            )
        })
}

/// `--env` and `--only` select inside a file; anywhere else they would be
/// silently meaningless.
pub(super) fn refuse_file_options(env: Option<&str>, only: &[String]) -> Result<()> {
    if let Some(e) = env {
        return Err(Error::Config(format!(
            "--env {e} selects env_{e} of an ecosystem file; name the file (pmr start ecosystem.config.js --env {e})"
        )));
    }
    if !only.is_empty() {
        return Err(Error::Config(format!(
            "--only selects apps of an ecosystem file; without one, name the apps: {}",
            only.join(" ")
        )));
    }
    Ok(())
}

/// The ecosystem file among command targets, if one is. An app may be
/// named like `ecosystem-api`: only an existing file, or a name with a
/// config file's extension, counts as a file.
fn file_target(targets: &[String]) -> Result<Option<String>> {
    let Some(file) = targets.iter().find(|t| {
        *t == "-"
            || is_config_file(t) && (Path::new(t).is_file() || Format::of(Path::new(t)).is_some())
    }) else {
        return Ok(None);
    };
    if targets.len() > 1 {
        return Err(Error::Config(format!(
            "give {file} alone; to pick some of its apps use --only, e.g. --only api,worker"
        )));
    }
    Ok(Some(file.clone()))
}

/// What `bin/pmr.js` answers when asked to evaluate a JavaScript config.
#[derive(Deserialize)]
struct JsLoad {
    config: Option<Value>,
    error: Option<String>,
    line: Option<u64>,
}

fn parse_file(ctx: &Ctx<'_>, file: &str, path: &Path) -> Result<Value> {
    let format = Format::of(path).ok_or_else(|| {
        Error::Config(format!(
            "{file}: not a .js, .cjs, .mjs, .json, .yaml or .yml file, so pmr cannot read it as an ecosystem file"
        ))
    })?;
    if format == Format::Js {
        let raw = ctx.host.load_js_config(path)?;
        let out: JsLoad = serde_json::from_str(&raw)
            .map_err(|e| Error::Config(format!("{file}: the config loader answered badly: {e}")))?;
        return match (out.error, out.line, out.config) {
            (Some(e), Some(line), _) => Err(Error::Config(format!("{file}:{line}: {e}"))),
            (Some(e), None, _) => Err(Error::Config(format!("{file}: {e}"))),
            (None, _, Some(v)) => Ok(v),
            (None, _, None) => Err(Error::Config(format!(
                "{file}: exports nothing; write module.exports = {{ apps: [...] }} (or export default {{ apps: [...] }})"
            ))),
        };
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {file}"), e))?;
    parse_text(format, &text).map_err(|e| Error::Config(format!("{file}:{e}")))
}

fn print_problems(file: &str, problems: &[Problem]) {
    let mut err = std::io::stderr().lock();
    for p in problems {
        let kind = if p.warning { "warning" } else { "error" };
        let _ = writeln!(err, "[pmr] {kind}: {}", p.render(file));
    }
}

fn refuse(file: &str, problems: &[Problem], verb: &str) -> Error {
    let n = problems.iter().filter(|p| !p.warning).count();
    Error::Config(format!(
        "{file}: {n} problem{}, nothing was {verb}",
        if n == 1 { "" } else { "s" }
    ))
}

/// Reads and parses a config file (its path, and its value); `-` is a
/// JSON file on stdin (`cat eco.json | pmr start -`), relative paths in it
/// relative to the current directory.
fn read(ctx: &Ctx<'_>, file: &str) -> Result<(PathBuf, Value)> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::io("cannot read the ecosystem file from stdin", e))?;
        let value = parse_text(Format::Json, &text)
            .map_err(|e| Error::Config(format!("stdin (JSON expected):{e}")))?;
        return Ok((cwd.join("stdin.json"), value));
    }
    let path = cwd.join(file);
    if !path.is_file() {
        return Err(Error::Config(format!("{file}: no such file")));
    }
    let value = parse_file(ctx, file, &path)?;
    Ok((path, value))
}

/// Reads, checks and resolves a file's selected apps. Scripts, working
/// directories and log paths are relative to the file's directory. Apps
/// whose entry is fine are resolved even when others are not, so that every
/// problem is reported at once.
pub(super) fn load(
    ctx: &Ctx<'_>,
    file: &str,
    sel: &Selection<'_>,
    verb: &str,
    overrides: &AppConfig,
) -> Result<Vec<AppSpec>> {
    Ok(load_forced(ctx, file, sel, verb, overrides)?.0)
}

/// `load`, with the names of the apps whose entry says `force: true`.
fn load_forced(
    ctx: &Ctx<'_>,
    file: &str,
    sel: &Selection<'_>,
    verb: &str,
    overrides: &AppConfig,
) -> Result<(Vec<AppSpec>, Vec<String>)> {
    let (path, mut value) = read(ctx, file)?;
    override_apps(&mut value, overrides)?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let env = caller_env();
    let node = ctx.host.node();
    let log_dir = ctx.home.log_dir();
    let rctx = ResolveContext {
        base_dir: &dir,
        caller_env: &env,
        node: &node,
        cpus: host_cpus(),
        log_dir: &log_dir,
    };
    let sel = Selection {
        strict: sel.strict || ctx.strict,
        ..sel.clone()
    };
    let loaded = load_apps(&value, &sel, &rctx);
    print_problems(file, &loaded.problems);
    if loaded.has_errors() {
        return Err(refuse(file, &loaded.problems, verb));
    }
    for n in loaded.notices {
        info(&n);
    }
    Ok((loaded.specs, loaded.forced))
}

fn running_list(ctx: &Ctx<'_>) -> Result<Vec<InstanceInfo>> {
    Ok(match ctx.existing_daemon()? {
        Some(mut c) => c.request_as(Request::List)?,
        None => Vec::new(),
    })
}

/// Command-line app options given with a file (`pmr start eco.json -i 2`)
/// override the file's keys of every app, as in PM2: they are written
/// into each app entry before the file is checked.
fn override_apps(value: &mut Value, overrides: &AppConfig) -> Result<()> {
    let Value::Object(flags) = serde_json::to_value(overrides)
        .map_err(|e| Error::Config(format!("cannot apply the command-line options: {e}")))?
    else {
        return Ok(());
    };
    let flags: Vec<(String, Value)> = flags.into_iter().filter(|(_, v)| !v.is_null()).collect();
    if flags.is_empty() {
        return Ok(());
    }
    let entries = match value {
        Value::Array(a) => Some(a),
        Value::Object(o) => {
            let key = ["apps", "pm2"].into_iter().find(|k| o.contains_key(*k));
            key.and_then(|k| o.get_mut(k)).and_then(Value::as_array_mut)
        }
        _ => None,
    };
    for app in entries.into_iter().flatten() {
        if let Value::Object(entry) = app {
            for (k, v) in &flags {
                // `instances` on the command line picks the mode as it
                // would for a script, not the file's exec_mode.
                if k == "instances" && !flags.iter().any(|(f, _)| f == "exec_mode") {
                    entry.remove("exec_mode");
                }
                entry.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// `pmr start <file>`: starts the apps that do not run and, as PM2 does,
/// restarts the ones that do with the file's current definition.
pub(super) fn start(
    ctx: &Ctx<'_>,
    file: &str,
    env: Option<&str>,
    only: &[String],
    wait: bool,
    overrides: &AppConfig,
) -> Result<()> {
    let (mut specs, forced) = load_forced(
        ctx,
        file,
        &Selection {
            env,
            only,
            strict: false,
        },
        "started",
        overrides,
    )?;
    let list = running_list(ctx)?;
    // `force: true` (or -f) starts a copy of a running app under a free
    // name, as `pmr start app.js -f` does, instead of restarting it.
    let mut taken: Vec<String> = list.iter().map(|i| i.name.clone()).collect();
    for spec in specs.iter_mut().filter(|s| forced.contains(&s.name)) {
        if !list
            .iter()
            .any(|i| i.name == spec.name && i.status.is_active())
        {
            continue;
        }
        let free = super::start::free_name(&spec.name, |n| taken.iter().any(|t| t == n));
        info(&format!(
            "force: {} already runs, so this one is named {free} (pmr keeps names unique)",
            spec.name
        ));
        taken.push(free.clone());
        spec.name = free;
    }
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let plan = plan_start(specs.clone(), &list);
    if !plan.running.is_empty() {
        let running: Vec<String> = plan.running.iter().map(|r| r.name.clone()).collect();
        info(&format!(
            "{} already running: restarting with {file}'s definition, as pm2 start does (pmr reload {file} replaces them without downtime)",
            running.join(", ")
        ));
        let restart: Vec<AppSpec> = specs
            .into_iter()
            .filter(|s| running.contains(&s.name))
            .collect();
        let req = Request::RestartApps {
            apps: restart,
            update_env: false,
        };
        if plan.start.is_empty() {
            return report::reapply_and_show(ctx, req, &names, "restarted");
        }
        let r: crate::supervisor::Report = ctx.daemon()?.request_as(req)?;
        report::summarize(&r);
        info(&format!("restarted {}", running.join(", ")));
        // The missing apps start even when a restart failed; both count.
        let missing = plan.start;
        missing.iter().for_each(report::announce);
        let started = report::start_and_show(ctx, missing, wait);
        return report::verdict(&r).and(started);
    }
    let missing = plan.start;
    missing.iter().for_each(report::announce);
    report::start_and_show(ctx, missing, wait)
}

/// Targets that name a script (`pmr stop app.js`, as in PM2) become the
/// names of the apps running that file: the one of this directory first,
/// else those whose script has that file name.
pub(super) fn script_targets(ctx: &Ctx<'_>, targets: Vec<String>) -> Result<Vec<String>> {
    let looks_like_file = |t: &str| {
        Path::new(t).extension().is_some() && !is_config_file(t) && !t.starts_with('/')
            || t.contains('/') && !(t.starts_with('/') && t.ends_with('/'))
    };
    if !targets.iter().any(|t| looks_like_file(t)) {
        return Ok(targets);
    }
    let Some(mut c) = ctx.existing_daemon()? else {
        return Ok(targets);
    };
    let list: Vec<InstanceInfo> = c.request_as(Request::List)?;
    if list.is_empty() {
        return Ok(targets);
    }
    let descs: Vec<Description> = c.request_as(Request::Describe {
        target: vec!["all".into()],
    })?;
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = Vec::new();
    for t in targets {
        if !looks_like_file(&t) || list.iter().any(|i| i.name == t) {
            out.push(t);
            continue;
        }
        let wanted = canon(&cwd.join(&t));
        let mut names: Vec<String> = Vec::new();
        let push = |n: &str, names: &mut Vec<String>| {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        for d in &descs {
            if canon(&d.spec.script) == wanted {
                push(&d.spec.name, &mut names);
            }
        }
        if names.is_empty() {
            let base = Path::new(&t).file_name();
            for d in &descs {
                if d.spec.script.file_name() == base {
                    push(&d.spec.name, &mut names);
                }
            }
        }
        if names.is_empty() {
            out.push(t);
        } else {
            out.extend(names);
        }
    }
    Ok(out)
}

/// `pmr reload <file>`: applies the file's definitions to the running apps
/// with zero downtime where the mode allows, and starts the missing ones.
/// Otherwise a reload of named apps.
pub(super) fn reload(ctx: &Ctx<'_>, a: RestartArgs) -> Result<()> {
    reapply(
        ctx,
        a,
        "reloaded",
        |target, env| Request::Reload { target, env },
        |apps, update_env| Request::ReloadApps { apps, update_env },
    )
}

/// `pmr restart <file>`: stops and starts the file's apps with the file's
/// current definitions (PM2's restart ignores an edited file), and starts
/// the ones not running. Otherwise a restart of named apps.
pub(super) fn restart(ctx: &Ctx<'_>, a: RestartArgs) -> Result<()> {
    reapply(
        ctx,
        a,
        "restarted",
        |target, env| Request::Restart { target, env },
        |apps, update_env| Request::RestartApps { apps, update_env },
    )
}

/// Shared by `reload` and `restart`: a config file target sends the file's
/// apps, anything else names running apps.
fn reapply(
    ctx: &Ctx<'_>,
    a: RestartArgs,
    verb: &str,
    named: impl FnOnce(Vec<String>, Option<BTreeMap<String, String>>) -> Request,
    from_file: impl FnOnce(Vec<AppSpec>, bool) -> Request,
) -> Result<()> {
    let Some(file) = file_target(&a.targets)? else {
        refuse_file_options(a.env.as_deref(), &a.only)?;
        let targets = script_targets(ctx, a.targets)?;
        if a.app.any() {
            let mut apps = with_options(ctx, &targets, &a.app)?;
            if let Some(new) = &a.app.name {
                return super::start::rename(ctx, &mut apps, new);
            }
            let before: Vec<String> = apps.iter().map(|s| s.name.clone()).collect();
            return report::reapply_and_show(ctx, from_file(apps, a.update_env), &before, verb);
        }
        return act(ctx, named(targets, a.update_env.then(caller_env)), verb);
    };
    if a.app.any() {
        return Err(Error::Config(format!(
            "-i, --node-args, --watch and --name apply to apps by name; for the apps of {file}, set them in the file"
        )));
    }
    let sel = Selection {
        env: a.env.as_deref(),
        only: &a.only,
        strict: false,
    };
    let apps = load(ctx, &file, &sel, verb, &AppConfig::default())?;
    let before: Vec<String> = running_list(ctx)?.into_iter().map(|i| i.name).collect();
    report::reapply_and_show(ctx, from_file(apps, a.update_env), &before, verb)
}

/// The definitions of the named apps with `restart`/`reload`'s options
/// applied: new interpreter options, a new instance count (cluster mode
/// for several instances of a Node.js app), watching toggled.
pub(super) fn with_options(
    ctx: &Ctx<'_>,
    targets: &[String],
    o: &AppOptions,
) -> Result<Vec<AppSpec>> {
    let descs: Vec<Description> = ctx.running_daemon()?.request_as(Request::Describe {
        target: targets.to_vec(),
    })?;
    let node_args = o
        .node_args
        .as_deref()
        .map(|s| shell_words::split(s).map_err(|e| Error::Config(format!("--node-args: {e}"))))
        .transpose()?;
    let instances = o
        .instances
        .as_deref()
        .map(|s| Instances::parse(s).map_err(|e| Error::Config(format!("-i: {e}"))))
        .transpose()?;
    let mut specs: Vec<AppSpec> = Vec::new();
    for d in descs {
        if specs.iter().any(|s| s.name == d.spec.name) {
            continue;
        }
        let mut spec = d.spec;
        if let Some(a) = &node_args {
            spec.interpreter_args = a.clone();
        }
        if let Some(i) = instances {
            spec.instances = i.count(host_cpus());
            spec.instances_max = matches!(i, Instances::Max(_) | Instances::Count(0));
            if spec.node && spec.instances > 1 {
                spec.exec_mode = ExecMode::Cluster;
            } else if spec.instances > 1 {
                info(&format!(
                    "{}: {} instances of a command that is not a Node.js app run in fork mode and cannot share a port",
                    spec.name, spec.instances
                ));
            }
        }
        if o.watch {
            spec.watch = if spec.watch.is_empty() {
                vec![spec.cwd.clone()]
            } else {
                Vec::new()
            };
            info(&format!(
                "{}: {} (--watch toggles it, as in PM2)",
                spec.name,
                if spec.watch.is_empty() {
                    "watching stops"
                } else {
                    "watching its directory from now on"
                }
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// What `stop_or_delete` does to the apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removal {
    Stop,
    /// `pmr stop --watch`: only the watching stops.
    StopWatch,
    Delete,
}

/// `pmr stop|delete <file>`: acts on the file's apps that pmr knows.
pub(super) fn stop_or_delete(ctx: &Ctx<'_>, a: FileTargetArgs, how: Removal) -> Result<()> {
    let (verb, past) = match how {
        Removal::Delete => ("delete", "deleted"),
        Removal::Stop => ("stop", "stopped"),
        // Its notices say what happened to each app.
        Removal::StopWatch => ("stop watching", ""),
    };
    let make = |target: Vec<String>| match how {
        Removal::Delete => Request::Delete { target },
        Removal::Stop => Request::Stop { target },
        Removal::StopWatch => Request::StopWatch { target },
    };
    let Some(file) = file_target(&a.targets)? else {
        refuse_file_options(None, &a.only)?;
        let targets = script_targets(ctx, a.targets)?;
        return act(ctx, make(targets), past);
    };
    let sel = Selection {
        env: None,
        only: &a.only,
        strict: ctx.strict,
    };
    let (_, value) = read(ctx, &file)?;
    let eco = read_apps(&value, &sel);
    print_problems(&file, &eco.problems);
    if eco.has_errors() {
        return Err(refuse(&file, &eco.problems, past));
    }
    let list = running_list(ctx)?;
    let mut known: Vec<String> = Vec::new();
    for name in eco.apps.iter().filter_map(|app| app.config.name.clone()) {
        if list.iter().any(|i| i.name == name) {
            known.push(name);
        } else {
            info(&format!("{name} is not in pmr's list: nothing to {verb}"));
        }
    }
    if known.is_empty() {
        return Ok(());
    }
    act(ctx, make(known), past)
}

/// `pmr startOrRestart|startOrReload <file>`: restart or reload <file>,
/// which start the apps of the file that do not run.
pub(super) fn start_or(ctx: &Ctx<'_>, a: EcosystemArgs, reload_them: bool) -> Result<()> {
    if file_target(std::slice::from_ref(&a.file))?.is_none() {
        return Err(Error::Config(format!(
            "{} is not an ecosystem file: name one, e.g. ecosystem.config.js (for apps by name use pmr {})",
            a.file,
            if reload_them { "reload" } else { "restart" }
        )));
    }
    let args = RestartArgs {
        targets: vec![a.file],
        update_env: a.update_env,
        only: a.only,
        env: a.env,
        app: AppOptions::default(),
    };
    if reload_them {
        reload(ctx, args)
    } else {
        restart(ctx, args)
    }
}

/// `pmr env <name|id>`: the environment the app runs with, values as they
/// are (describe masks the secret-looking ones).
pub(super) fn print_env(ctx: &Ctx<'_>, target: String) -> Result<()> {
    let descs: Vec<Description> = ctx.running_daemon()?.request_as(Request::Describe {
        target: vec![target],
    })?;
    let mut apps: BTreeMap<String, &AppSpec> = BTreeMap::new();
    for d in &descs {
        apps.entry(d.spec.name.clone()).or_insert(&d.spec);
    }
    let several = apps.len() > 1;
    for (name, spec) in apps {
        if several {
            super::outln(&format!("# {name}"));
        }
        for (k, v) in &spec.env {
            if !super::outln(&format!("{k}={v}")) {
                return Ok(());
            }
        }
    }
    Ok(())
}
