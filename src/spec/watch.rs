//! Which changes under a watched path count. `ignore_watch` patterns are
//! globs; `node_modules` and dotfiles (`.git`, editors' swap files) are
//! always ignored, because they change all the time, hold most of a
//! project's files, and each directory watched costs an inotify watch.

use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// Quiet time after the last change before the app is replaced.
pub const DEFAULT_WATCH_DELAY_MS: u64 = 1000;

/// Directory names never watched, whatever `ignore_watch` says.
const ALWAYS_IGNORED: &[&str] = &["node_modules"];

/// The ignore rules of one app.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    /// Patterns without a `/` (`*.log`, `tmp`): match any one path component.
    names: Vec<Pattern>,
    /// Patterns with a `/` (`client/img`, `logs/**`): match a path relative
    /// to the app's cwd or to the watched path, or an absolute one.
    paths: Vec<Pattern>,
    cwd: PathBuf,
    /// Paths whose changes never count (pmr's own log files).
    excluded: Vec<PathBuf>,
}

/// `*` and `?` stop at `/`; `**` crosses directories.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

fn glob(pattern: &str) -> Result<Pattern, String> {
    // A backslash escapes the next character, as in shells and globset;
    // this glob syntax escapes with brackets instead.
    let mut escaped = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next)) => {
                chars.next();
                if matches!(next, '*' | '?' | '[' | ']') {
                    escaped.push('[');
                    escaped.push(next);
                    escaped.push(']');
                } else {
                    escaped.push(next);
                }
            }
            _ => escaped.push(c),
        }
    }
    Pattern::new(&escaped).map_err(|e| format!("'{pattern}' is not a glob pattern: {}", e.msg))
}

/// The pattern as it is matched: PM2 users write `./logs`, `logs/` and
/// `\\.git` (a regular expression's escaped dot, which as a glob is a
/// literal dot too).
fn normalize(pattern: &str) -> &str {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        p
    } else {
        trimmed
    }
}

/// Checks `ignore_watch` patterns without building anything to keep.
pub fn check_ignore(patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        glob(normalize(p))?;
    }
    Ok(())
}

impl IgnoreRules {
    pub fn new(cwd: &Path, patterns: &[String], excluded: Vec<PathBuf>) -> Result<Self, String> {
        let mut names = Vec::new();
        let mut paths = Vec::new();
        for raw in patterns {
            let p = normalize(raw);
            if p.contains('/') {
                paths.push(glob(p)?);
            } else {
                names.push(glob(p)?);
            }
        }
        Ok(IgnoreRules {
            names,
            paths,
            cwd: cwd.to_path_buf(),
            excluded,
        })
    }

    /// Whether a change at `path`, seen under the watched path `root`, is
    /// ignored. The root itself is never ignored: naming a dotfile in
    /// `watch` watches it.
    pub fn ignores(&self, root: &Path, path: &Path) -> bool {
        if self.excluded.iter().any(|e| path.starts_with(e)) {
            return true;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            return true;
        };
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            let name = name.to_string_lossy();
            if name.starts_with('.') || ALWAYS_IGNORED.contains(&name.as_ref()) {
                return true;
            }
            if self
                .names
                .iter()
                .any(|g| g.matches_with(name.as_ref(), MATCH))
            {
                return true;
            }
        }
        if self.paths.is_empty() {
            return false;
        }
        let prefixes_match = |rel: &Path| {
            let mut prefix = PathBuf::new();
            rel.components().any(|c| {
                prefix.push(c);
                self.paths
                    .iter()
                    .any(|g| g.matches_path_with(&prefix, MATCH))
            })
        };
        prefixes_match(rel)
            || path.strip_prefix(&self.cwd).is_ok_and(prefixes_match)
            || prefixes_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(patterns: &[&str]) -> IgnoreRules {
        let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        IgnoreRules::new(Path::new("/srv/app"), &p, vec!["/srv/app/pmr-logs".into()]).unwrap()
    }

    const ROOT: &str = "/srv/app";

    fn ignored(r: &IgnoreRules, path: &str) -> bool {
        r.ignores(Path::new(ROOT), Path::new(path))
    }

    #[test]
    fn node_modules_and_dotfiles_are_always_ignored() {
        let r = rules(&[]);
        assert!(ignored(&r, "/srv/app/node_modules/x/index.js"));
        assert!(ignored(&r, "/srv/app/.git/index"));
        assert!(ignored(&r, "/srv/app/src/.server.js.swp"));
        assert!(!ignored(&r, "/srv/app/src/server.js"));
        assert!(!ignored(&r, "/srv/app/server.js"));
        let with_own = rules(&["*.log"]);
        assert!(ignored(&with_own, "/srv/app/node_modules/x.js"));
    }

    #[test]
    fn name_patterns_match_any_component() {
        let r = rules(&["*.log", "tmp", "\\.cache"]);
        assert!(ignored(&r, "/srv/app/out.log"));
        assert!(ignored(&r, "/srv/app/deep/er/out.log"));
        assert!(ignored(&r, "/srv/app/tmp/a.js"));
        assert!(ignored(&r, "/srv/app/src/tmp"));
        assert!(!ignored(&r, "/srv/app/src/tmpl.js"));
        assert!(!ignored(&r, "/srv/app/log.js"));
    }

    #[test]
    fn path_patterns_match_from_the_cwd_or_the_root() {
        let r = rules(&["client/img", "./logs/", "data/**/*.json"]);
        assert!(ignored(&r, "/srv/app/client/img/a.png"));
        assert!(ignored(&r, "/srv/app/client/img"));
        assert!(!ignored(&r, "/srv/app/client/app.js"));
        assert!(ignored(&r, "/srv/app/logs/today.txt"));
        assert!(ignored(&r, "/srv/app/data/x/y/z.json"));
        assert!(!ignored(&r, "/srv/app/data/x/y/z.js"));
        // A watched subdirectory: the pattern still reads from the cwd.
        assert!(r.ignores(
            Path::new("/srv/app/client"),
            Path::new("/srv/app/client/img/b.png")
        ));
    }

    #[test]
    fn absolute_patterns_and_excluded_paths() {
        let r = rules(&["/srv/app/generated/**"]);
        assert!(ignored(&r, "/srv/app/generated/a.js"));
        assert!(ignored(&r, "/srv/app/pmr-logs/api-out.log"));
        assert!(!ignored(&r, "/srv/app/pmr-logsx"));
    }

    #[test]
    fn the_watched_path_itself_and_paths_outside_it() {
        let r = rules(&[]);
        assert!(!r.ignores(Path::new("/srv/app/.env"), Path::new("/srv/app/.env")));
        assert!(r.ignores(Path::new("/srv/app/src"), Path::new("/srv/app/lib/a.js")));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let e = check_ignore(&["src/[".to_string()]).unwrap_err();
        assert!(e.contains("'src/[' is not a glob pattern"), "{e}");
        assert_eq!(check_ignore(&["*.log".into(), "a/**".into()]), Ok(()));
    }
}
