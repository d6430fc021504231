//! App options as the JS API receives them (an object, a list, or a parsed
//! ecosystem file), resolved exactly as the CLI resolves them. A refusal
//! carries every problem as data, for the JS Error's `problems`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ecosystem::{load_apps, parse_text, Format, Problem, Selection};
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
    /// Unknown keys are errors, not warnings (`{ strict: true }`, `PMR_STRICT=1`).
    #[serde(default)]
    pub strict: bool,
    pub caller_env: BTreeMap<String, String>,
    pub node: PathBuf,
    pub log_dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ResolveOutput {
    pub specs: Vec<AppSpec>,
    pub notices: Vec<String>,
    /// Warnings only, as the lines the CLI prints: errors make the whole
    /// call fail with a `Refusal`.
    pub warnings: Vec<String>,
}

/// A problem with the file (or "app options") it was found in: what the JS
/// Error's `problems` holds, `{file, app, key, message, suggestion, warning}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    pub file: String,
    #[serde(flatten)]
    pub problem: Problem,
}

/// Why nothing was resolved: the error (its message one line per problem,
/// as the CLI prints them) and the problems themselves.
#[derive(Debug)]
pub struct Refusal {
    pub error: Error,
    pub problems: Vec<FileProblem>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal {
            error,
            problems: Vec::new(),
        }
    }
}

pub fn resolve(input: &ResolveInput) -> std::result::Result<ResolveOutput, Refusal> {
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
        strict: input.strict,
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
        let errors: Vec<&Problem> = loaded.problems.iter().filter(|p| !p.warning).collect();
        let lines: Vec<String> = errors.iter().map(|p| p.render(label)).collect();
        return Err(Refusal {
            error: Error::Config(lines.join("\n")),
            problems: errors
                .into_iter()
                .map(|p| FileProblem {
                    file: label.to_string(),
                    problem: p.clone(),
                })
                .collect(),
        });
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

/// `resolve` from and to JSON text, for the Node-API binding.
pub fn resolve_json(text: &str) -> std::result::Result<String, Refusal> {
    let input: ResolveInput = serde_json::from_str(text)
        .map_err(|e| Error::Protocol(format!("bad resolve request: {e}")))?;
    let out = resolve(&input)?;
    Ok(serde_json::to_string(&out)
        .map_err(|e| Error::Protocol(format!("cannot encode specs: {e}")))?)
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
            strict: false,
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

    fn strict(config: Value, dir: &std::path::Path) -> ResolveInput {
        ResolveInput {
            strict: true,
            ..input(config, dir)
        }
    }

    #[test]
    fn unknown_keys_warn_and_the_app_resolves_unless_strict() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("x.js"), "").unwrap();
        let app = serde_json::json!({"name": "b", "script": "x.js", "max_memmory_restart": "1G"});
        let out = resolve(&input(app.clone(), t.path())).unwrap();
        assert_eq!(out.specs.len(), 1);
        assert_eq!(
            out.warnings[0],
            "app options: apps[0] (b): max_memmory_restart: unknown option — did you mean max_memory_restart?"
        );
        let r = resolve(&strict(app, t.path())).unwrap_err();
        assert_eq!(r.error.code(), "PMR_CONFIG");
    }

    #[test]
    fn every_problem_in_one_error() {
        let t = tempfile::tempdir().unwrap();
        let e = resolve(&strict(
            serde_json::json!([
                {"name": "a", "script": "missing.js"},
                {"name": "b", "script": "x.js", "max_memmory_restart": "1G"}
            ]),
            t.path(),
        ))
        .unwrap_err()
        .error;
        let msg = e.to_string();
        assert_eq!(e.code(), "PMR_CONFIG");
        assert!(msg.contains("apps[0] (a)"), "{msg}");
        assert!(msg.contains("did you mean max_memory_restart?"), "{msg}");
    }

    #[test]
    fn a_refusal_carries_each_problem_as_data() {
        let t = tempfile::tempdir().unwrap();
        let r = resolve(&strict(
            serde_json::json!([{"name": "b", "script": "x.js", "max_memmory_restart": "1G"}]),
            t.path(),
        ))
        .unwrap_err();
        let typo = r
            .problems
            .iter()
            .find(|p| p.problem.key.as_deref() == Some("max_memmory_restart"))
            .unwrap();
        assert_eq!(
            serde_json::to_value(typo).unwrap(),
            serde_json::json!({
                "file": "app options", "app": "apps[0] (b)", "key": "max_memmory_restart",
                "message": "unknown option — did you mean max_memory_restart?",
                "suggestion": "max_memory_restart", "warning": false
            })
        );
        // One line per problem in the message, as the CLI prints them.
        assert_eq!(r.error.to_string().lines().count(), r.problems.len());
    }
}
