//! Ecosystem files: which arguments are config files, how JSON and YAML
//! ones are parsed (JavaScript ones are evaluated by Node, see the CLI), and
//! the walk over the parsed value that finds every app and every problem
//! before anything starts. Files are read as PM2 reads them: `.json` is
//! JSON5, unknown keys are warnings (errors in strict mode).

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::options::{parse_app, Issue};
use super::suggest::closest;
use super::{AppConfig, AppSpec, ResolveContext};

/// The files `pmr start` looks for in the current directory, in order.
pub const DEFAULT_FILES: &[&str] = &[
    "ecosystem.config.js",
    "ecosystem.config.cjs",
    "ecosystem.config.mjs",
    "ecosystem.config.json",
    "ecosystem.json",
    "ecosystem.config.yaml",
    "ecosystem.config.yml",
    "ecosystem.yaml",
    "ecosystem.yml",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Evaluated by Node: `module.exports = {...}` or `export default {...}`.
    Js,
    Json,
    Yaml,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("js" | "cjs" | "mjs") => Some(Format::Js),
            Some("json") => Some(Format::Json),
            Some("yaml" | "yml") => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// PM2's rule for telling a config file from a script: a `.json`, `.yml` or
/// `.yaml` file, a `*.config.js` (`.cjs`, `.mjs`), or any file whose name
/// starts with `ecosystem`.
pub fn is_config_file(arg: &str) -> bool {
    let name = Path::new(arg)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    name.starts_with("ecosystem")
        || [
            ".json",
            ".yml",
            ".yaml",
            ".config.js",
            ".config.cjs",
            ".config.mjs",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Parses a JSON or YAML config; the error is `line:column: message` (or
/// just the message when the parser knows no position). JSON is read as
/// JSON5 (comments, unquoted keys, trailing commas, single quotes): PM2
/// evaluates `.json` files as JavaScript, so files written for it have them.
pub fn parse_text(format: Format, text: &str) -> Result<Value, String> {
    match format {
        Format::Json => json5::from_str(text).map_err(|e| match e.position() {
            Some(p) => format!(
                "{}:{}: {}",
                p.line + 1,
                p.column + 1,
                without_positions(&e.to_string())
            ),
            None => e.to_string(),
        }),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!(
                "{}:{}: {}",
                l.line(),
                l.column(),
                without_positions(&e.to_string())
            ),
            None => e.to_string(),
        }),
        Format::Js => Err("JavaScript config files are evaluated by Node, not parsed".into()),
    }
}

/// Parser messages repeat the position ("… at line 3 column 4"); it is
/// already in front of the message as `file:line:column`.
fn without_positions(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let skip = tail
            .find(|c: char| !(c.is_ascii_digit() || c == ' ' || "column".contains(c)))
            .unwrap_or(tail.len());
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// One problem found in a config file. Rendered as
/// `file: apps[1] (worker): key: message`; the JS API hands it over as an
/// object with the file beside it (`FileProblem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A warning does not stop the file from starting.
    pub warning: bool,
    /// Which app (`apps[1] (worker)`), None for the file as a whole.
    pub app: Option<String>,
    pub key: Option<String>,
    /// The whole sentence, as printed (a suggestion is already in it).
    pub message: String,
    /// What was probably meant (`max_memory_restart`, `--env production`),
    /// for programs that offer the fix.
    pub suggestion: Option<String>,
    /// A key pmr does not know: a warning, or an error in strict mode.
    #[serde(skip)]
    pub unknown: bool,
}

impl Problem {
    pub fn error(app: Option<String>, key: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            warning: false,
            app,
            key: key.map(str::to_string),
            message: message.into(),
            suggestion: None,
            unknown: false,
        }
    }

    fn suggesting(self, suggestion: Option<String>) -> Self {
        Problem { suggestion, ..self }
    }

    pub fn render(&self, file: &str) -> String {
        let mut s = format!("{file}: ");
        if let Some(app) = &self.app {
            s.push_str(app);
            s.push_str(": ");
        }
        if let Some(k) = &self.key {
            s.push_str(k);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}

/// An app of the file, as written, with its place in it.
#[derive(Debug, Clone)]
pub struct FileApp {
    /// `apps[1] (worker)`: how problems name it.
    pub label: String,
    pub config: AppConfig,
}

/// Everything read from a config file: the selected apps and every problem.
#[derive(Debug, Default)]
pub struct Ecosystem {
    pub apps: Vec<FileApp>,
    pub problems: Vec<Problem>,
}

impl Ecosystem {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| !p.warning)
    }
}

/// What the command line selects: `--env <name>` and `--only a,b`, and
/// whether unknown keys are refused (`--strict`, `PMR_STRICT=1`).
#[derive(Debug, Default, Clone)]
pub struct Selection<'a> {
    pub env: Option<&'a str>,
    pub only: &'a [String],
    pub strict: bool,
}

/// `PMR_STRICT=1` (or `true`): strict mode for tools that cannot pass `--strict`.
pub fn strict_from_env(value: Option<&str>) -> bool {
    matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// PM2 ignores keys it does not know, so a file written for it may be full
/// of them: each unknown key is one warning, naming every app that has it,
/// instead of one per app. Strict mode makes them errors, one per place.
fn settle_unknown(problems: Vec<Problem>, strict: bool) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for p in problems {
        if !p.unknown {
            out.push(p);
            continue;
        }
        if strict {
            out.push(Problem {
                warning: false,
                ..p
            });
            continue;
        }
        let same = out
            .iter()
            .position(|q| q.unknown && q.key == p.key && q.message == p.message);
        match (same, p.app) {
            (Some(i), Some(app)) => {
                let first = &mut out[i];
                first.app = Some(match first.app.take() {
                    Some(a) => format!("{a}, {app}"),
                    None => app,
                });
            }
            (Some(_), None) => {}
            (None, app) => out.push(Problem { app, ..p }),
        }
    }
    out
}

fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("apps[{index}] ({n})"),
        None => format!("apps[{index}]"),
    }
}

fn shape_error(message: &str) -> Ecosystem {
    Ecosystem {
        apps: Vec::new(),
        problems: vec![Problem::error(None, None, message)],
    }
}

/// Walks a parsed config: `{ apps: [...] }` (PM2 also takes a bare list of
/// apps or a single app object). Every app is checked, whether selected or
/// not, so a typo anywhere in the file is found; only the selected apps are
/// returned.
pub fn read_apps(root: &Value, sel: &Selection<'_>) -> Ecosystem {
    const TOP_KEYS: &[&str] = &["apps", "deploy"];
    let mut eco = Ecosystem::default();
    // PM2 reads the apps from `apps`, or from `pm2` in older files.
    let apps_key = ["apps", "pm2"]
        .into_iter()
        .find(|k| matches!(root, Value::Object(m) if m.contains_key(*k)));
    let entries: Vec<Value> = match (root, apps_key) {
        (Value::Object(m), Some("apps")) if m.contains_key("pm2") => {
            return shape_error("has both apps and pm2 (PM2's older name for apps): keep one");
        }
        (Value::Array(a), _) => a.clone(),
        (Value::Object(m), Some(apps_key)) => {
            for k in m.keys().filter(|k| k.as_str() != apps_key) {
                if k == "deploy" {
                    eco.problems.push(Problem {
                        warning: true,
                        ..Problem::error(
                            None,
                            Some(k),
                            "ignored: pmr runs apps, it does not deploy them",
                        )
                    });
                } else {
                    let suggestion = closest(k, TOP_KEYS.iter().copied());
                    let hint = match suggestion {
                        Some(c) => format!(" — did you mean {c}?"),
                        None => String::new(),
                    };
                    eco.problems.push(Problem {
                        warning: true,
                        unknown: true,
                        ..Problem::error(
                            None,
                            Some(k),
                            format!("unknown top-level key{hint} (apps go in apps: [...])"),
                        )
                        .suggesting(suggestion.map(str::to_string))
                    });
                }
            }
            match &m[apps_key] {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![m[apps_key].clone()],
                other => {
                    eco.problems.push(Problem::error(
                        None,
                        Some(apps_key),
                        format!("must be a list of apps, got {other}"),
                    ));
                    return eco;
                }
            }
        }
        (Value::Object(m), None) if m.contains_key("script") || m.contains_key("cmd") => {
            vec![root.clone()]
        }
        (Value::Object(m), None) => {
            let hint = m
                .keys()
                .find_map(|k| closest(k, ["apps"]))
                .map(|_| " (is apps misspelled?)")
                .unwrap_or("");
            return shape_error(&format!(
                "no apps: the file must define {{ apps: [{{ name, script, ... }}] }}{hint}"
            ));
        }
        (other, _) => {
            return shape_error(&format!(
                "must define {{ apps: [...] }}, got {}",
                match other {
                    Value::Null => "null".to_string(),
                    v => v.to_string().chars().take(40).collect(),
                }
            ))
        }
    };
    if entries.is_empty() {
        eco.problems.push(Problem::error(
            None,
            Some("apps"),
            "is empty: nothing to run",
        ));
        return eco;
    }

    let mut all: Vec<FileApp> = Vec::new();
    let mut env_seen = false;
    let mut env_names: Vec<String> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(obj) = entry else {
            eco.problems.push(Problem::error(
                Some(format!("apps[{i}]")),
                None,
                format!("must be an object {{ name, script, ... }}, got {entry}"),
            ));
            continue;
        };
        let parsed = parse_app(obj, sel.env);
        let at = label(i, parsed.config.name.as_deref());
        if let Some(e) = sel.env {
            env_seen |= parsed.env_names.iter().any(|n| n == e);
        }
        for n in parsed.env_names {
            if !env_names.contains(&n) {
                env_names.push(n);
            }
        }
        for Issue {
            warning,
            key,
            message,
            suggestion,
            unknown,
        } in parsed.issues
        {
            eco.problems.push(Problem {
                warning,
                app: Some(at.clone()),
                key,
                message,
                suggestion,
                unknown,
            });
        }
        if let Some(first) = all
            .iter()
            .find(|a| a.config.name.is_some() && a.config.name == parsed.config.name)
        {
            eco.problems.push(Problem::error(
                Some(at.clone()),
                Some("name"),
                format!(
                    "'{}' is also the name of {}; app names must be unique",
                    parsed.config.name.as_deref().unwrap_or_default(),
                    first.label
                ),
            ));
        }
        all.push(FileApp {
            label: at,
            config: parsed.config,
        });
    }

    if let (Some(e), false) = (sel.env, env_seen) {
        let known: Vec<String> = env_names.iter().map(|n| format!("env_{n}")).collect();
        let suggestion = closest(e, env_names.iter().map(String::as_str));
        let hint = match suggestion {
            Some(c) => format!(" — did you mean --env {c}?"),
            None if known.is_empty() => String::new(),
            None => format!(" (the file has {})", known.join(", ")),
        };
        eco.problems.push(Problem {
            warning: true,
            app: None,
            key: Some(format!("--env {e}")),
            message: format!("no app has env_{e}, so only env applies{hint}"),
            suggestion: suggestion.map(|c| format!("--env {c}")),
            unknown: false,
        });
    }

    let names: Vec<&str> = all
        .iter()
        .filter_map(|a| a.config.name.as_deref())
        .collect();
    for o in sel.only {
        if !names.contains(&o.as_str()) {
            let suggestion = closest(o, names.iter().copied());
            let hint = match suggestion {
                Some(c) => format!(" — did you mean {c}?"),
                None => format!(" (it has {})", names.join(", ")),
            };
            eco.problems.push(
                Problem::error(
                    None,
                    Some("--only"),
                    format!("no app named '{o}' in the file{hint}"),
                )
                .suggesting(suggestion.map(str::to_string)),
            );
        }
    }
    eco.problems = settle_unknown(std::mem::take(&mut eco.problems), sel.strict);
    eco.apps = all
        .into_iter()
        .filter(|a| {
            sel.only.is_empty() || a.config.name.as_ref().is_some_and(|n| sel.only.contains(n))
        })
        .collect();
    eco
}

/// The selected apps of a parsed config, resolved: every app whose entry is
/// fine is resolved even when others are not, so every problem is found in
/// one pass. Nothing may start while `problems` holds an error.
#[derive(Debug, Default)]
pub struct Loaded {
    pub specs: Vec<AppSpec>,
    /// Names of the apps whose entry says `force: true`.
    pub forced: Vec<String>,
    pub notices: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| !p.warning)
    }
}

pub fn load_apps(root: &Value, sel: &Selection<'_>, ctx: &ResolveContext<'_>) -> Loaded {
    let eco = read_apps(root, sel);
    let mut out = Loaded {
        problems: eco.problems,
        ..Loaded::default()
    };
    for app in eco.apps {
        let broken = out
            .problems
            .iter()
            .any(|p| !p.warning && p.app.as_deref() == Some(app.label.as_str()));
        if broken {
            continue;
        }
        match app.config.resolve(ctx) {
            Ok(r) => {
                out.notices.extend(
                    r.notices
                        .into_iter()
                        .map(|n| format!("{}: {n}", r.spec.name)),
                );
                if app.config.force == Some(true) {
                    out.forced.push(r.spec.name.clone());
                }
                out.specs.push(r.spec);
            }
            Err(e) => out
                .problems
                .push(Problem::error(Some(app.label), None, e.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered(e: &Ecosystem) -> Vec<String> {
        e.problems.iter().map(|p| p.render("eco.js")).collect()
    }

    #[test]
    fn config_files_by_pm2s_rule() {
        for f in [
            "ecosystem.config.js",
            "ecosystem.config.cjs",
            "deploy/prod.config.mjs",
            "apps.json",
            "apps.yaml",
            "x/apps.yml",
            "ecosystem.prod.js",
            "ecosystem",
        ] {
            assert!(is_config_file(f), "{f}");
        }
        for f in ["server.js", "app.mjs", "npm", "config.js", "api"] {
            assert!(!is_config_file(f), "{f}");
        }
        assert_eq!(Format::of(Path::new("a.config.mjs")), Some(Format::Js));
        assert_eq!(Format::of(Path::new("a.yml")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("ecosystem")), None);
    }

    #[test]
    fn json_and_yaml_parse_and_syntax_errors_give_a_line() {
        let v = parse_text(Format::Json, r#"{"apps":[{"script":"a.js"}]}"#).unwrap();
        assert_eq!(v["apps"][0]["script"], "a.js");
        let e = parse_text(
            Format::Json,
            "{\n  \"apps\": [\n    {\"script\" \"a.js\"}\n]}",
        )
        .unwrap_err();
        assert!(e.starts_with("3:"), "{e}");
        assert!(!e.contains(" at line "), "{e}");

        let v = parse_text(
            Format::Yaml,
            "apps:\n  - name: api\n    script: a.js\n    instances: 2\n    env:\n      PORT: 3000\n",
        )
        .unwrap();
        assert_eq!(v["apps"][0]["instances"], 2);
        assert_eq!(v["apps"][0]["env"]["PORT"], 3000);
        let e = parse_text(Format::Yaml, "apps:\n  - name: api\n   script: [a.js\n").unwrap_err();
        assert!(e.starts_with("3:4: "), "{e}");
        assert!(!e.contains(" at line "), "{e}");
        assert_eq!(
            without_positions("bad at line 3 column 4, while parsing at line 2 column 3"),
            "bad, while parsing"
        );
    }

    #[test]
    fn apps_in_every_shape_pm2_accepts() {
        let sel = Selection::default();
        for v in [
            json!({"apps": [{"script": "a.js"}]}),
            json!({"apps": {"script": "a.js"}}),
            json!([{"script": "a.js"}]),
            json!({"script": "a.js"}),
        ] {
            let e = read_apps(&v, &sel);
            assert!(e.problems.is_empty(), "{v}: {:?}", e.problems);
            assert_eq!(e.apps.len(), 1);
            assert_eq!(e.apps[0].config.name.as_deref(), Some("a"));
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let v = json!({
            "apps": [
                {"name": "api", "script": "server.js", "instances": "max", "exec_mode": "fork"},
                {"name": "worker", "script": "w.js", "max_memmory_restart": "1G", "max_memory_restart": "1GB"},
                {"name": "api", "script": "other.js"},
                {"name": "nojob"},
                "oops"
            ],
            "deploy": {},
            "app": 1
        });
        let e = read_apps(&v, &Selection::default());
        let r = rendered(&e);
        for want in [
            "eco.js: apps[1] (worker): max_memmory_restart: unknown option — did you mean max_memory_restart?",
            "eco.js: apps[1] (worker): max_memory_restart: '1GB' is not a size, use 1G or 1024M",
            "eco.js: apps[2] (api): name: 'api' is also the name of apps[0] (api); app names must be unique",
            "eco.js: apps[3] (nojob): script: missing: the file or command to run, e.g. script: 'server.js'",
            "eco.js: apps[4]: must be an object { name, script, ... }, got \"oops\"",
            "eco.js: app: unknown top-level key — did you mean apps? (apps go in apps: [...])",
        ] {
            assert!(r.contains(&want.to_string()), "{want}\n{r:#?}");
        }
        let warnings: Vec<&Problem> = e.problems.iter().filter(|p| p.warning).collect();
        // PM2 ignores unknown keys: they warn (max_memmory_restart, app).
        assert_eq!(warnings.len(), 4, "{r:#?}");
        assert!(warnings.iter().any(|p| p
            .render("f")
            .starts_with("f: apps[0] (api): instances: 'max' with exec_mode 'fork'")));
        assert!(warnings.iter().any(|p| p.key.as_deref() == Some("deploy")));
        assert!(e.has_errors());
        assert_eq!(r.len(), 8, "{r:#?}");
    }

    #[test]
    fn unknown_keys_warn_once_and_strict_mode_refuses_them() {
        let v = json!({
            "apps": [
                {"name": "a", "script": "a.js", "junk": 1, "max_memmory_restart": "1G"},
                {"name": "b", "script": "b.js", "junk": 2},
                {"name": "c", "script": "c.js"}
            ],
            "deploy": {"production": {"user": "node"}},
            "extra": true
        });
        let e = read_apps(&v, &Selection::default());
        assert!(!e.has_errors(), "{:?}", rendered(&e));
        assert_eq!(e.apps.len(), 3);
        let r = rendered(&e);
        assert!(
            r.contains(&"eco.js: apps[0] (a), apps[1] (b): junk: unknown option (see the ecosystem reference in pmr's README)".to_string()),
            "{r:#?}"
        );
        assert_eq!(
            r.iter().filter(|l| l.contains("junk")).count(),
            1,
            "once: {r:#?}"
        );
        assert!(r
            .iter()
            .any(|l| l.contains("did you mean max_memory_restart?")));
        assert_eq!(
            r.len(),
            4,
            "junk, max_memmory_restart, deploy, extra: {r:#?}"
        );

        let strict = read_apps(
            &v,
            &Selection {
                strict: true,
                ..Selection::default()
            },
        );
        let errors: Vec<String> = strict
            .problems
            .iter()
            .filter(|p| !p.warning)
            .map(|p| p.render("eco.js"))
            .collect();
        assert_eq!(
            errors.len(),
            4,
            "junk twice, max_memmory_restart, extra: {errors:#?}"
        );
        assert!(errors
            .iter()
            .any(|l| l.starts_with("eco.js: apps[1] (b): junk: unknown option")));
        assert!(
            strict
                .problems
                .iter()
                .any(|p| p.warning && p.key.as_deref() == Some("deploy")),
            "deploy is never an error"
        );
        assert!(strict_from_env(Some("1")) && strict_from_env(Some("true")));
        assert!(!strict_from_env(Some("0")) && !strict_from_env(None));
    }

    #[test]
    fn pm2_as_the_older_name_of_apps_and_json5_files() {
        let text = r#"{
          // PM2 evaluates .json files as JavaScript
          pm2: [
            { name: 'api', cmd: "server.js", max_restarts: "50", env: { PORT: 3000, },
              /* a block comment */ },
          ],
          deploy: { production: { user: 'node', host: ['1.2.3.4'], }, },
        }"#;
        let v = parse_text(Format::Json, text).unwrap();
        let e = read_apps(&v, &Selection::default());
        assert!(!e.has_errors(), "{:?}", rendered(&e));
        let api = &e.apps[0].config;
        assert_eq!(api.name.as_deref(), Some("api"));
        assert_eq!(api.script.as_deref(), Some("server.js"));
        assert_eq!(api.max_restarts, Some(50));
        assert_eq!(api.env.as_ref().unwrap()["PORT"], "3000");
        let both = read_apps(
            &json!({"apps": [{"script": "a.js"}], "pm2": []}),
            &Selection::default(),
        );
        assert!(rendered(&both)[0].contains("has both apps and pm2"));
        let e =
            parse_text(Format::Json, "{\n  apps: [\n    { script 'a.js' }\n  ]\n}").unwrap_err();
        assert!(e.starts_with("3:"), "{e}");
        assert!(!e.contains(" at line "), "{e}");
    }

    #[test]
    fn only_selects_and_unknown_names_are_errors() {
        let v = json!({"apps": [{"name": "api", "script": "a.js"}, {"name": "worker", "script": "w.js"}]});
        let only = vec!["worker".to_string()];
        let e = read_apps(
            &v,
            &Selection {
                only: &only,
                ..Selection::default()
            },
        );
        assert!(e.problems.is_empty());
        assert_eq!(e.apps.len(), 1);
        assert_eq!(e.apps[0].label, "apps[1] (worker)");
        let only = vec!["wrker".to_string()];
        let e = read_apps(
            &v,
            &Selection {
                only: &only,
                ..Selection::default()
            },
        );
        assert_eq!(
            rendered(&e),
            vec!["eco.js: --only: no app named 'wrker' in the file — did you mean worker?"]
        );
    }

    #[test]
    fn env_selection_merges_and_a_missing_env_warns() {
        let v = json!({"apps": [
            {"name": "api", "script": "a.js", "env": {"NODE_ENV": "dev", "PORT": 3000}, "env_production": {"NODE_ENV": "production"}},
            {"name": "worker", "script": "w.js", "env": {"NODE_ENV": "dev"}}
        ]});
        let e = read_apps(
            &v,
            &Selection {
                env: Some("production"),
                ..Selection::default()
            },
        );
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let api = e.apps[0].config.env.as_ref().unwrap();
        assert_eq!(
            (api["NODE_ENV"].as_str(), api["PORT"].as_str()),
            ("production", "3000")
        );
        assert_eq!(e.apps[1].config.env.as_ref().unwrap()["NODE_ENV"], "dev");

        let e = read_apps(
            &v,
            &Selection {
                env: Some("prodution"),
                ..Selection::default()
            },
        );
        assert!(!e.has_errors());
        assert_eq!(
            rendered(&e),
            vec!["eco.js: --env prodution: no app has env_prodution, so only env applies — did you mean --env production?"]
        );
    }

    #[test]
    fn files_without_apps_are_refused() {
        for (v, want) in [
            (json!({"aps": []}), "is apps misspelled?"),
            (json!(null), "got null"),
            (json!({"apps": []}), "apps: is empty"),
            (json!({"apps": "x"}), "apps: must be a list"),
        ] {
            let e = read_apps(&v, &Selection::default());
            assert!(e.has_errors());
            assert!(rendered(&e)[0].contains(want), "{:?}", rendered(&e));
        }
    }
}
