//! App options as the JS API receives them (an object, a list, or a parsed
//! ecosystem file), resolved exactly as the CLI resolves them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ecosystem::{load_apps, parse_text, Format, Selection};
use super::{host_cpus, AppSpec, ResolveContext};
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveInput {
    /// `{ apps: [...] }`, a list of apps, or one app. When null, `file`
    /// (JSON or YAML) is read; JavaScript files are evaluated by the caller.
    #[serde(default)]
    pub config: Value,
    /// The file it came from, to name in problems.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Relative paths resolve against this directory.
    pub base_dir: PathBuf,
    /// `--env <name>`: merge `env_<name>` over `env`.
    #[serde(default)]
    pub env_name: Option<String>,
    /// `--only a,b`.
    #[serde(default)]
    pub only: Vec<String>,
    pub caller_env: BTreeMap<String, String>,
    pub node: PathBuf,
    pub log_dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ResolveOutput {
    pub specs: Vec<AppSpec>,
    pub notices: Vec<String>,
    /// Warnings only: errors make the whole call fail.
    pub warnings: Vec<String>,
}

pub fn resolve(input: &ResolveInput) -> Result<ResolveOutput> {
    let ctx = ResolveContext {
        base_dir: &input.base_dir,
        caller_env: &input.caller_env,
        node: &input.node,
        cpus: host_cpus(),
        log_dir: &input.log_dir,
    };
    let sel = Selection {
        env: input.env_name.as_deref(),
        only: &input.only,
    };
    let read;
    let config = match (&input.config, &input.file) {
        (Value::Null, Some(file)) => {
            read = read_file(file)?;
            &read
        }
        (c, _) => c,
    };
    let loaded = load_apps(config, &sel, &ctx);
    let label = input
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "app options".into());
    let label = label.as_str();
    if loaded.has_errors() {
        let lines: Vec<String> = loaded
            .problems
            .iter()
            .filter(|p| !p.warning)
            .map(|p| p.render(label))
            .collect();
        return Err(Error::Config(lines.join("\n")));
    }
    Ok(ResolveOutput {
        warnings: loaded.problems.iter().map(|p| p.render(label)).collect(),
        specs: loaded.specs,
        notices: loaded.notices,
    })
}

fn read_file(file: &std::path::Path) -> Result<Value> {
    let name = file.display();
    let format = Format::of(file)
        .filter(|f| *f != Format::Js)
        .ok_or_else(|| Error::Config(format!("{name}: not a .json, .yaml or .yml file")))?;
    let text =
        std::fs::read_to_string(file).map_err(|e| Error::io(format!("cannot read {name}"), e))?;
    parse_text(format, &text).map_err(|e| Error::Config(format!("{name}:{e}")))
}

/// `resolve` from and to JSON, for the Node-API binding.
pub fn resolve_json(text: &str) -> Result<Value> {
    let input: ResolveInput = serde_json::from_str(text)
        .map_err(|e| Error::Protocol(format!("bad resolve request: {e}")))?;
    let out = resolve(&input)?;
    serde_json::to_value(out).map_err(|e| Error::Protocol(format!("cannot encode specs: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(config: Value, dir: &std::path::Path) -> ResolveInput {
        ResolveInput {
            config,
            file: None,
            base_dir: dir.to_path_buf(),
            env_name: Some("production".into()),
            only: vec![],
            caller_env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
            node: "/usr/bin/node".into(),
            log_dir: dir.join("logs"),
        }
    }

    #[test]
    fn one_app_object_with_env_sections() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("app.js"), "").unwrap();
        let out = resolve(&input(
            serde_json::json!({
                "name": "api", "script": "app.js", "instances": 2,
                "env": {"PORT": 3000}, "env_production": {"NODE_ENV": "production"}
            }),
            t.path(),
        ))
        .unwrap();
        let s = &out.specs[0];
        assert_eq!((s.name.as_str(), s.instances), ("api", 2));
        assert_eq!(s.env["NODE_ENV"], "production");
        assert_eq!(s.env["PORT"], "3000");
    }

    #[test]
    fn every_problem_in_one_error() {
        let t = tempfile::tempdir().unwrap();
        let e = resolve(&input(
            serde_json::json!([
                {"name": "a", "script": "missing.js"},
                {"name": "b", "script": "x.js", "max_memmory_restart": "1G"}
            ]),
            t.path(),
        ))
        .unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.code(), "PMR_CONFIG");
        assert!(msg.contains("apps[0] (a)"), "{msg}");
        assert!(msg.contains("did you mean max_memory_restart?"), "{msg}");
    }
}
