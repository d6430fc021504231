//! `pmr-runtime`'s command line: the apps to run (a script with `pmr start`'s
//! flags, or an ecosystem file) and how to run in the foreground.

use clap::Parser;

use super::args::StartArgs;
use super::{caller_env, ecosystem, start, Host};
use crate::error::{Error, Result};
use crate::paths::Home;
use crate::runtime::{Output, RuntimeOptions};
use crate::spec::ecosystem::{is_config_file, Selection};
use crate::spec::{host_cpus, ResolveContext};

#[derive(Debug, Parser)]
#[command(
    name = "pmr-runtime",
    version,
    about = "Run apps in the foreground, as a container's entrypoint: output on stdout/stderr, SIGTERM stops every app gracefully, orphans reaped as PID 1.",
    after_help = "Examples:\n  pmr-runtime server.js -i max\n  pmr-runtime ecosystem.config.js --env production --health-port 9000\n\nExit codes: 0 after SIGTERM/SIGINT or when every app stopped; 1 when every app is errored."
)]
pub struct RuntimeCli {
    #[command(flatten)]
    pub start: StartArgs,
    /// App lines exactly as written, without the `app|id |` prefix
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// One JSON object per output line
    #[arg(long)]
    pub json: bool,
    /// Keep running when no app runs any more
    #[arg(long)]
    pub no_auto_exit: bool,
    /// Serve /healthz and /readyz on this port
    #[arg(long, value_name = "PORT")]
    pub health_port: Option<u16>,
    /// Address of the health endpoint
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    pub health_host: String,
    /// Serve the web dashboard on this port (token: $PMR_DASHBOARD_TOKEN, or printed at start)
    #[arg(long, value_name = "PORT")]
    pub dashboard_port: Option<u16>,
    /// Address of the dashboard; anything but loopback exposes it to the network
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub dashboard_host: String,
}

/// The runtime's options from its command line; Err is the exit code after
/// the problem was printed.
pub fn options(
    argv: &[String],
    host: &dyn Host,
    preload: Option<std::path::PathBuf>,
) -> std::result::Result<RuntimeOptions, i32> {
    let cli = match RuntimeCli::try_parse_from(
        std::iter::once("pmr-runtime".to_string()).chain(argv.iter().cloned()),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return Err(if e.use_stderr() { 2 } else { 0 });
        }
    };
    resolve(cli, host, preload).map_err(|e| {
        crate::runtime::say_error(&e);
        1
    })
}

fn resolve(
    cli: RuntimeCli,
    host: &dyn Host,
    preload: Option<std::path::PathBuf>,
) -> Result<RuntimeOptions> {
    let home = Home::from_env()?;
    let ctx = super::Ctx {
        home: home.clone(),
        style: super::style::Style::detect(),
        host,
        strict: crate::spec::ecosystem::strict_from_env(
            std::env::var("PMR_STRICT").ok().as_deref(),
        ),
    };
    let a = &cli.start;
    if a.scripts.len() > 1 {
        return Err(Error::Config(
            "pmr-runtime runs one script or one ecosystem file".into(),
        ));
    }
    let specs = match a.scripts.first().cloned() {
        Some(s) if !is_config_file(&s) => {
            ecosystem::refuse_file_options(a.env.as_deref(), &a.only)?;
            let cwd = std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", e))?;
            let env = caller_env();
            let node = host.node();
            let log_dir = home.log_dir();
            let r = start::config_from_flags(a, Some(&s))?.resolve(&ResolveContext {
                base_dir: &cwd,
                caller_env: &env,
                node: &node,
                cpus: host_cpus(),
                log_dir: &log_dir,
            })?;
            for n in &r.notices {
                crate::runtime::say(n);
            }
            vec![r.spec]
        }
        given => {
            let file = match given {
                Some(f) => f,
                None => ecosystem::default_file()?,
            };
            let sel = Selection {
                env: a.env.as_deref(),
                only: &a.only,
                strict: false,
            };
            ecosystem::load(&ctx, &file, &sel, "started", &Default::default())?
        }
    };
    Ok(RuntimeOptions {
        specs,
        output: if cli.json {
            Output::Json
        } else if cli.raw {
            Output::Raw
        } else {
            Output::Prefixed
        },
        auto_exit: !cli.no_auto_exit,
        health_port: cli.health_port,
        health_host: cli.health_host,
        dashboard_port: cli.dashboard_port,
        dashboard_host: cli.dashboard_host,
        log_dir: home.log_dir(),
        node_preload: preload,
    })
}
