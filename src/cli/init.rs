//! `pmr init`: a commented `ecosystem.config.js` starter that runs as it is.

use std::io::Write;
use std::path::Path;

use super::info;
use crate::error::{Error, Result};
use crate::spec::{default_name, validate_name};

const FILE: &str = "ecosystem.config.js";

const TEMPLATE: &str = r#"// pmr ecosystem file: `pmr start` reads it from this directory.
//   pmr start                      start every app below
//   pmr start --env production     merge env_production over env
//   pmr reload ecosystem.config.js apply edits to running apps, zero downtime
// Relative paths (script, cwd, log files) are relative to this file.
// Every option is listed in pmr's README (ecosystem reference).
module.exports = {
  apps: [
    {
      name: '__NAME__',
      script: '__SCRIPT__',
      // args: ['--verbose'],               // arguments for the script
      // node_args: ['--max-old-space-size=1024'],

      // Cluster mode: every instance shares the app's ports, and reload
      // replaces them one by one without dropping a request. 'max' = one per CPU.
      instances: 1,
      exec_mode: 'cluster',

      // The app also gets the environment of the shell that runs pmr.
      env: {
        NODE_ENV: 'development',
      },
      env_production: {
        NODE_ENV: 'production',
      },

      // max_memory_restart: '1G',          // restart an instance above this size
      // min_uptime: '10s',                 // shorter runs count as crashes...
      // max_restarts: 16,                  // ...and this many in a row mean errored
      // kill_timeout: '5s',                // time to exit after SIGINT, then SIGKILL
      // wait_ready: true,                  // ready on process.send('ready'), not on listen
      // listen_timeout: '8s',              // how long a new instance may take to be ready
      // out_file: './logs/out.log',        // default: ~/.pmr/logs/<name>-out.log
      // error_file: './logs/error.log',
      // time: true,                        // timestamp every log line
    },
  ],
}
"#;

/// The script a starter should run: `main` of package.json, else the first
/// usual entry point that exists, else `app.js` for the user to adjust.
fn guess_script(dir: &Path) -> (String, bool) {
    let main = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("main").and_then(|m| m.as_str()).map(str::to_string))
        .filter(|m| dir.join(m).is_file());
    if let Some(m) = main {
        return (m, true);
    }
    ["server.js", "app.js", "index.js", "main.js"]
        .iter()
        .find(|f| dir.join(f).is_file())
        .map(|f| (f.to_string(), true))
        .unwrap_or_else(|| ("app.js".to_string(), false))
}

/// The app's name: the package's (without its scope), else the script's.
fn guess_name(dir: &Path, script: &str) -> String {
    std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .map(|n| n.rsplit('/').next().unwrap_or_default().to_string())
        .filter(|n| validate_name(n).is_ok() && !n.is_empty())
        .unwrap_or_else(|| default_name(script))
}

/// What `pmr init <arg>` means: PM2's `simple` is the one starter there
/// is; a `.js`/`.cjs`/`.mjs` name is the file to write; anything else names
/// the app.
fn file_and_name(arg: Option<&str>) -> (&str, Option<&str>) {
    match arg {
        None | Some("simple") => (FILE, None),
        Some(a) if [".js", ".cjs", ".mjs"].iter().any(|e| a.ends_with(e)) => (a, None),
        Some(a) => (FILE, Some(a)),
    }
}

pub(super) fn run(arg: Option<String>) -> Result<()> {
    let dir =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let (file, given_name) = file_and_name(arg.as_deref());
    if let Some(n) = given_name {
        validate_name(n)?;
    }
    let path = dir.join(file);
    let (script, found) = guess_script(&dir);
    let name = given_name
        .map(str::to_string)
        .unwrap_or_else(|| guess_name(&dir, &script));
    let text = TEMPLATE
        .replace("__NAME__", &name.replace('\'', "\\'"))
        .replace("__SCRIPT__", &script.replace('\'', "\\'"));
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Config(format!(
                "{} already exists; pmr init does not overwrite it",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("cannot create {}", path.display()), e)),
    };
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    info(&format!(
        "wrote {} (app '{name}', script {script})",
        path.display()
    ));
    if !found {
        info("no server.js, app.js or index.js here: set script to your entry point");
    }
    if file == FILE {
        info("start it with: pmr start");
    } else {
        info(&format!("start it with: pmr start {file}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_takes_pm2s_mode_a_file_or_an_app_name() {
        assert_eq!(file_and_name(None), (FILE, None));
        assert_eq!(file_and_name(Some("simple")), (FILE, None));
        assert_eq!(
            file_and_name(Some("pm2.config.js")),
            ("pm2.config.js", None)
        );
        assert_eq!(file_and_name(Some("api")), (FILE, Some("api")));
    }

    #[test]
    fn guesses_from_package_json_then_usual_names() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(guess_script(d.path()), ("app.js".to_string(), false));
        std::fs::write(d.path().join("index.js"), "").unwrap();
        assert_eq!(guess_script(d.path()), ("index.js".to_string(), true));
        std::fs::create_dir(d.path().join("dist")).unwrap();
        std::fs::write(d.path().join("dist/main.js"), "").unwrap();
        std::fs::write(
            d.path().join("package.json"),
            r#"{"name": "@acme/shop-api", "main": "dist/main.js"}"#,
        )
        .unwrap();
        assert_eq!(guess_script(d.path()), ("dist/main.js".to_string(), true));
        assert_eq!(guess_name(d.path(), "dist/main.js"), "shop-api");
    }
}
