//! `runCli`: the command line, run synchronously inside the shim's Node process.

use std::path::{Path, PathBuf};

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// What `bin/pmr.js` lends the CLI.
#[napi(object)]
pub struct CliHost {
    /// `process.execPath`: apps run with the same node.
    pub node: String,
    /// Absolute path of `daemon.js`.
    pub daemon_script: String,
}

pub(crate) struct Host<'a> {
    pub paths: CliHost,
    pub load_config: Function<'a, String, String>,
}

impl pmr::cli::Host for Host<'_> {
    fn node(&self) -> PathBuf {
        PathBuf::from(&self.paths.node)
    }
    fn daemon_script(&self) -> PathBuf {
        PathBuf::from(&self.paths.daemon_script)
    }
    fn daemon_binary(&self) -> Option<PathBuf> {
        crate::daemon_binary()
    }
    fn load_js_config(&self, path: &Path) -> pmr::Result<String> {
        self.load_config
            .call(path.to_string_lossy().into_owned())
            .map_err(|e| {
                pmr::Error::Config(format!(
                    "{}: the config loader failed: {}",
                    path.display(),
                    e.reason
                ))
            })
    }
}

/// Runs the `pmr` command line; returns the exit code. `loadConfig(path)`
/// evaluates a JavaScript config file synchronously (see `bin/pmr.js`).
#[napi(catch_unwind)]
pub fn run_cli(argv: Vec<String>, host: CliHost, load_config: Function<String, String>) -> i32 {
    pmr::cli::run(
        &argv,
        &Host {
            paths: host,
            load_config,
        },
    )
}
