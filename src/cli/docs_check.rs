//! Keeps the README honest: its ecosystem reference against the keys
//! `spec/options.rs` reads, its `start` flag table against the flags clap
//! defines, and its table of `PMR_*` variables against the ones read. Each failure names the key or flag and where the two
//! disagree, so a changed option cannot ship with stale docs.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;
use serde_json::{json, Map, Value};

use super::args::Cli;
use crate::spec::ecosystem::{read_apps, Selection};
use crate::spec::known_keys;

/// Words that tell a user an option does nothing (yet).
const INACTIVE: &[&str] = &["not active", "not yet active", "accepted, not"];

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {path}: {e}"),
    }
}

/// The text under a `#`-heading, up to the next heading of any level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let Some(start) = text.find(&format!("\n{heading}\n")) else {
        panic!("README.md has no '{heading}' section");
    };
    let body = &text[start + heading.len() + 2..];
    let end = body.find("\n#").unwrap_or(body.len());
    &body[..end]
}

/// The cells of a section's first table, header and separator left out.
/// `\|` inside a cell is a literal bar, not a column break.
fn table(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.replace("\\|", "\u{0}")
                .trim_matches('|')
                .split('|')
                .map(|c| c.replace('\u{0}', "|").trim().to_string())
                .collect()
        })
        .collect()
}

/// The `code spans` of a piece of markdown, each with whether it sits
/// inside parentheses (the README's way of writing another spelling).
fn code_spans(md: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let (mut depth, mut code, mut cur) = (0usize, false, String::new());
    for ch in md.chars() {
        match (code, ch) {
            (true, '`') => {
                out.push((std::mem::take(&mut cur), depth > 0));
                code = false;
            }
            (true, c) => cur.push(c),
            (false, '`') => code = true,
            (false, '(') => depth += 1,
            (false, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// The ecosystem reference's keys: canonical key → (its other spellings,
/// the row's text after the key column).
fn documented_keys(text: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut keys: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    for row in table(section(text, "### Ecosystem reference")) {
        let rest = row[1..].join(" | ");
        let mut current: Option<String> = None;
        for (span, in_parens) in code_spans(&row[0]) {
            match (&current, in_parens) {
                (Some(canon), true) => {
                    if let Some(entry) = keys.get_mut(canon) {
                        entry.0.push(span);
                    }
                }
                _ => {
                    keys.insert(span.clone(), (Vec::new(), rest.clone()));
                    current = Some(span);
                }
            }
        }
    }
    keys
}

/// The paragraph listing PM2 options that pmr ignores.
fn documented_ignored(text: &str) -> BTreeSet<String> {
    let reference = section(text, "### Ecosystem reference");
    let Some(start) = reference.find("PM2 options with no meaning in pmr") else {
        panic!("README.md's ecosystem reference no longer lists the ignored PM2 options");
    };
    let para = &reference[start..];
    let para = &para[..para.find("\n\n").unwrap_or(para.len())];
    code_spans(para).into_iter().map(|(s, _)| s).collect()
}

/// The problems the real parser reports for one app entry, as `key: message`.
fn problems_of(entry: Map<String, Value>) -> Vec<(String, bool, String)> {
    read_apps(&json!({ "apps": [entry] }), &Selection::default())
        .problems
        .into_iter()
        .map(|p| (p.key.unwrap_or_default(), p.warning, p.message))
        .collect()
}

/// An entry with `key` set, and a script unless the key is the script.
fn entry_with(key: &str, canonical: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if canonical != "script" {
        m.insert("script".into(), json!("a.js"));
    }
    // Any value: a wrong type is an error about the value, never "unknown".
    m.insert(
        key.into(),
        if key.starts_with("env_") {
            json!({})
        } else {
            json!(true)
        },
    );
    m
}

#[test]
fn every_ecosystem_key_is_documented_as_options_rs_treats_it() {
    let text = readme();
    let (app_keys, aliases, ignored) = known_keys();
    let documented = documented_keys(&text);
    let mut wrong = Vec::new();

    for key in app_keys {
        match documented.get(*key) {
            None => wrong.push(format!(
                "{key}: options.rs accepts it (APP_KEYS) but the README's ecosystem reference has no row for it"
            )),
            Some((_, rest)) => {
                let lower = rest.to_lowercase();
                for word in INACTIVE.iter().chain(&["ignored"]) {
                    if lower.contains(word) {
                        wrong.push(format!(
                            "{key}: options.rs acts on it, but its README row says '{word}': {rest}"
                        ));
                    }
                }
            }
        }
    }
    for (alias, canon) in aliases {
        let listed = documented
            .get(*canon)
            .is_some_and(|(spellings, _)| spellings.iter().any(|s| s == alias));
        if !listed {
            wrong.push(format!(
                "{alias}: options.rs reads it as {canon} (ALIASES) but the README's row for {canon} does not list it in parentheses"
            ));
        }
    }
    for (key, (spellings, _)) in &documented {
        let pattern = key == "env_<name>";
        if !pattern && !app_keys.contains(&key.as_str()) {
            wrong.push(format!(
                "{key}: the README's ecosystem reference documents it, but it is not in options.rs's APP_KEYS"
            ));
        }
        for s in spellings {
            if !aliases.iter().any(|(a, c)| a == s && c == key) {
                wrong.push(format!(
                    "{s}: the README gives it as another spelling of {key}, but options.rs's ALIASES does not map it to {key}"
                ));
            }
        }
        // What the parser really does with each documented spelling.
        let canon = key.as_str();
        for spelling in std::iter::once(key).chain(spellings) {
            let written = if pattern { "env_production" } else { spelling };
            for (k, warning, message) in problems_of(entry_with(written, canon)) {
                if k == written && (message.contains("unknown option") || warning) {
                    wrong.push(format!(
                        "{written}: documented as an option, but the parser says: {message}"
                    ));
                }
            }
        }
    }

    let said_ignored = documented_ignored(&text);
    for (key, _) in ignored {
        if !said_ignored.contains(*key) {
            wrong.push(format!(
                "{key}: options.rs ignores it with a warning (IGNORED) but the README's list of ignored PM2 options does not name it"
            ));
        }
        if documented.contains_key(*key) {
            wrong.push(format!(
                "{key}: options.rs ignores it, but the README's ecosystem reference documents it as an option"
            ));
        }
    }
    for key in &said_ignored {
        if key == "deploy" {
            // A top-level section, not an app key.
            let e = read_apps(
                &json!({ "apps": [{ "script": "a.js" }], "deploy": {} }),
                &Selection::default(),
            );
            if !e
                .problems
                .iter()
                .any(|p| p.warning && p.key.as_deref() == Some("deploy"))
            {
                wrong.push("deploy: the README says it is ignored with a warning, but reading a file with it gives no such warning".into());
            }
            continue;
        }
        let warned = problems_of(entry_with(key, ""))
            .iter()
            .any(|(k, warning, m)| k == key && *warning && m.contains("ignored"));
        if !warned {
            wrong.push(format!(
                "{key}: the README lists it as an ignored PM2 option, but the parser does not warn that it is ignored"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "README.md disagrees with src/spec/options.rs:\n  {}",
        wrong.join("\n  ")
    );
}

/// The flags of one clap subcommand as a user types them: `--long`,
/// `-s`, and their visible aliases; help and version left out.
fn clap_flags(cmd: &clap::Command) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in cmd.get_arguments() {
        if matches!(a.get_id().as_str(), "help" | "version") {
            continue;
        }
        if let Some(l) = a.get_long() {
            out.insert(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            out.insert(format!("-{s}"));
        }
        for l in a.get_visible_aliases().into_iter().flatten() {
            out.insert(format!("--{l}"));
        }
        for s in a.get_visible_short_aliases().into_iter().flatten() {
            out.insert(format!("-{s}"));
        }
    }
    out
}

/// The flags named in the first column of the README's `start` table.
fn readme_start_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for row in table(section(text, "### start")) {
        for (span, _) in code_spans(&row[0]) {
            for token in span.split([' ', ',']) {
                if token.starts_with('-') {
                    let end = token.find(['[', '=', '<']).unwrap_or(token.len());
                    out.insert(token[..end].to_string());
                }
            }
        }
    }
    out
}

#[test]
fn start_flags_match_the_readme_table() {
    let text = readme();
    let cli = Cli::command();
    let Some(start) = cli.find_subcommand("start") else {
        panic!("the CLI has no start command");
    };
    let ours = clap_flags(start);
    let documented = readme_start_flags(&text);
    let mut wrong: Vec<String> = ours
        .difference(&documented)
        .map(|f| {
            format!("{f}: a flag of `pmr start --help`, missing from the README's start table")
        })
        .collect();
    wrong.extend(
        documented
            .difference(&ours)
            .map(|f| format!("{f}: in the README's start table, but `pmr start` has no such flag")),
    );
    assert!(
        wrong.is_empty(),
        "README.md disagrees with src/cli/args.rs:\n  {}",
        wrong.join("\n  ")
    );
}

fn inactive_help(cmd: &clap::Command, path: &str, wrong: &mut Vec<String>) {
    let mut texts: Vec<(String, String)> = Vec::new();
    for (what, t) in [
        ("about", cmd.get_about()),
        ("long about", cmd.get_long_about()),
        ("after help", cmd.get_after_help()),
        ("after long help", cmd.get_after_long_help()),
    ] {
        if let Some(t) = t {
            texts.push((what.to_string(), t.to_string()));
        }
    }
    for a in cmd.get_arguments() {
        for t in [a.get_help(), a.get_long_help()].into_iter().flatten() {
            texts.push((format!("help of {}", a.get_id()), t.to_string()));
        }
    }
    for (what, t) in texts {
        let lower = t.to_lowercase();
        if let Some(word) = INACTIVE.iter().find(|w| lower.contains(*w)) {
            wrong.push(format!("`{path} --help`, {what}: says '{word}': {t}"));
        }
    }
    for sub in cmd.get_subcommands() {
        inactive_help(sub, &format!("{path} {}", sub.get_name()), wrong);
    }
}

#[test]
fn no_help_text_calls_an_option_inactive() {
    let mut wrong = Vec::new();
    inactive_help(&Cli::command(), "pmr", &mut wrong);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readme_parsers_see_what_they_should() {
    // Guards the tests above against passing because a parser found nothing.
    let sample = "x\n### start\n\n| flag | m |\n|---|---|\n| `-i, --instances <n\\|max\\|-n>` | a \\| b |\n| `--watch[=<paths>]` / `--log-type json` | |\n\n### next\n";
    let flags = readme_start_flags(sample);
    assert_eq!(
        flags.into_iter().collect::<Vec<_>>(),
        ["--instances", "--log-type", "--watch", "-i"]
    );
    assert_eq!(
        code_spans("`uid` (`user`), `gid`"),
        [
            ("uid".to_string(), false),
            ("user".to_string(), true),
            ("gid".to_string(), false)
        ]
    );
    let text = readme();
    assert!(documented_keys(&text).len() > 40);
    assert!(documented_ignored(&text).len() > 20);
    assert!(readme_start_flags(&text).len() > 30);
}

/// Every `PMR_*` variable the given source text reads: through
/// `std::env::var`/`var_os` in Rust, `process.env` in JavaScript.
fn variables_read(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pat in ["var(\"PMR_", "var_os(\"PMR_", "process.env.PMR_"] {
        for (at, _) in text.match_indices(pat) {
            let rest = &text[at + pat.len() - 4..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // The patterns themselves, in this file, name no variable.
            if name.len() > "PMR_".len() {
                out.insert(name);
            }
        }
    }
    out
}

fn sources_under(dir: &std::path::Path, ext: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources_under(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
}

#[test]
fn every_pmr_variable_read_is_in_the_readme_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    sources_under(&root.join("src"), "rs", &mut texts);
    for dir in ["lib", "bin"] {
        sources_under(&root.join(dir), "js", &mut texts);
    }
    for f in ["index.js", "daemon.js"] {
        texts.push(std::fs::read_to_string(root.join(f)).unwrap_or_default());
    }
    let read: BTreeSet<String> = texts.iter().flat_map(|t| variables_read(t)).collect();
    assert!(
        read.contains("PMR_HOME") && read.contains("PMR_STRICT"),
        "{read:?}"
    );
    let text = readme();
    let Some(at) = text.find("Environment variables pmr reads") else {
        panic!("README.md no longer has the table of environment variables pmr reads");
    };
    let listed: BTreeSet<String> = table(&text[at..])
        .iter()
        .filter_map(|row| row.first().map(|c| c.trim_matches('`').to_string()))
        .collect();
    let missing: Vec<&String> = read.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "pmr reads {missing:?} but README.md's table of environment variables (Coming from PM2) does not list them"
    );
    let stale: Vec<&String> = listed
        .iter()
        .filter(|v| v.starts_with("PMR_") && !read.contains(*v))
        .collect();
    assert!(
        stale.is_empty(),
        "README.md lists {stale:?}, which pmr never reads"
    );
}
