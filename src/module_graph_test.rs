//! Keeps the top-level modules of `src/` free of import cycles: reads the
//! source tree, builds the graph of `crate::<module>` references between
//! top-level modules, and fails naming every cycle (and any module that
//! depends on `cli`, which only `lib.rs` may use). Relative paths cannot
//! leave a top-level module except from its root file, where the code
//! writes `crate::` instead, so `crate::` paths are the whole graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Who references whom: module → referenced module → first place seen.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The source without comments, string and char literals, so a `crate::`
/// in a doc comment or a message is not taken for a dependency.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            // Keep the line count, for the locations in messages.
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                } else if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            i = j + 1;
        } else if b[i] == b'\'' && char_literal_len(&b[i..]).is_some() {
            i += char_literal_len(&b[i..]).unwrap_or(1);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br"`... at the start: the number of `#`s.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s);
    let s = s.strip_prefix('r')?;
    let hashes = s.bytes().take_while(|&c| c == b'#').count();
    (s.as_bytes().get(hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of a char literal (`'a'`, `'\n'`, `'\''`) at the start; None
/// for a lifetime.
fn char_literal_len(b: &[u8]) -> Option<usize> {
    match b.get(1)? {
        b'\\' => {
            let close = b.iter().skip(2).position(|&c| c == b'\'')?;
            Some(close + 3)
        }
        _ => {
            let s = std::str::from_utf8(&b[1..b.len().min(6)]).unwrap_or("");
            let c = s.chars().next()?;
            let n = 1 + c.len_utf8();
            (b.get(n) == Some(&b'\'')).then_some(n + 1)
        }
    }
}

/// The top-level modules a piece of code names through `crate::`, with the
/// line of each: `crate::a::b`, and each item of `crate::{a, b::c}`.
fn references(code: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let mut names = Vec::new();
            if let Some(group) = rest.strip_prefix('{') {
                // Only the first segment of each item, at the group's top level.
                let mut depth = 0;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphabetic() || c == '_') => {
                            names.push(ident(&group[i..]));
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                names.push(ident(rest));
            }
            found.extend(names.into_iter().map(|m| (m.to_string(), n + 1)));
        }
    }
    found
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The modules `lib.rs` declares (`mod x;`, `pub mod x;`...).
fn top_level_modules(lib: &str) -> BTreeSet<String> {
    code_only(lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_suffix(';')?;
            let name = l.rsplit_once("mod ")?.1;
            let vis = l.rsplit_once("mod ")?.0.trim();
            (vis.is_empty() || vis.starts_with("pub")).then(|| name.trim().to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The graph of the crate whose sources are under `src`.
fn graph(src: &Path) -> (BTreeSet<String>, Graph) {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let tops = top_level_modules(&lib);
    let mut g = Graph::new();
    for top in &tops {
        let mut files = Vec::new();
        let single = src.join(format!("{top}.rs"));
        if single.is_file() {
            files.push(single);
        }
        rust_files(&src.join(top), &mut files);
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let rel = f.strip_prefix(src).unwrap_or(&f).display().to_string();
            for (m, line) in references(&code_only(&text)) {
                if m != *top && tops.contains(&m) {
                    g.entry(top.clone())
                        .or_default()
                        .entry(m)
                        .or_insert_with(|| format!("src/{rel}:{line}"));
                }
            }
        }
    }
    (tops, g)
}

/// Every cycle, each named once (`a -> b -> a` with where each step is),
/// from the strongly connected components of the graph.
fn cycles(tops: &BTreeSet<String>, g: &Graph) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![from.to_string()];
        while let Some(n) = pending.pop() {
            for next in g.get(&n).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    pending.push(next.clone());
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for start in tops {
        if done.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // One shortest way back to `start`, by breadth-first search.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        'search: while let Some(n) = queue.pop_front() {
            for next in g.get(&n).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    prev.insert(format!("{start}'"), n.clone());
                    break 'search;
                }
                if !prev.contains_key(next) {
                    prev.insert(next.clone(), n.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        let mut path = vec![start.clone()];
        let mut cur = prev[&format!("{start}'")].clone();
        while cur != *start {
            path.push(cur.clone());
            cur = prev[&cur].clone();
        }
        path.push(start.clone());
        path.reverse();
        let steps: Vec<String> = path
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        out.push(format!("{}: {}", path.join(" -> "), steps.join(", ")));
        // The other members of this cycle's component would name it again.
        let component: BTreeSet<String> = reach(start)
            .into_iter()
            .filter(|m| reach(m).contains(start))
            .collect();
        done.extend(component);
    }
    out
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (tops, g) = graph(&src);
    assert!(
        tops.contains("supervisor") && tops.contains("cli"),
        "{tops:?}"
    );
    assert!(
        g.get("supervisor").is_some_and(|e| e.contains_key("spec")),
        "the scan sees the crate's references: {g:?}"
    );
    let found = cycles(&tops, &g);
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
    let on_cli: Vec<String> = g
        .iter()
        .filter_map(|(m, e)| e.get("cli").map(|at| format!("{m} -> cli ({at})")))
        .collect();
    assert!(on_cli.is_empty(), "only lib.rs may use cli: {on_cli:?}");
}

#[test]
fn a_cycle_is_found_and_named() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\nmod b;\n#[cfg(test)]\nmod c;\n",
    )
    .unwrap();
    std::fs::create_dir(src.join("b")).unwrap();
    std::fs::write(
        src.join("a.rs"),
        "// crate::c is only a comment\nuse crate::b::X;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b/mod.rs"),
        "const S: &str = \"crate::c\";\nuse crate::{c::Y, std_x};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("c.rs"),
        "fn f<'a>(x: &'a str) { let q = '\"'; crate::a::g(); }\n",
    )
    .unwrap();
    let (tops, g) = graph(src);
    assert_eq!(tops, ["a", "b", "c"].map(String::from).into());
    assert_eq!(
        g["a"].keys().collect::<Vec<_>>(),
        ["b"],
        "comments do not count"
    );
    assert_eq!(
        g["b"].keys().collect::<Vec<_>>(),
        ["c"],
        "strings do not count"
    );
    assert_eq!(g["b"]["c"], "src/b/mod.rs:2");
    assert_eq!(
        cycles(&tops, &g),
        ["a -> b -> c -> a: a -> b (src/a.rs:2), b -> c (src/b/mod.rs:2), c -> a (src/c.rs:1)"]
    );
}
