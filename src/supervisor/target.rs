//! Which instances a command means: `all`, an id, an app name, a namespace,
//! a regular expression over app names (`/^api-/`), or several of those at
//! once.

use crate::error::{Error, Result};

/// What the registry knows about one app, for matching.
pub(crate) struct Candidate<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub ids: Vec<u32>,
}

/// One app of the selection; `ids` None means every instance of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub app: String,
    pub ids: Option<Vec<u32>>,
}

pub(crate) fn select(apps: &[Candidate<'_>], targets: &[String]) -> Result<Vec<Selected>> {
    if targets.is_empty() {
        return Err(Error::NotFound(
            "no target given: name an app, an id, or all".into(),
        ));
    }
    let mut out: Vec<Selected> = Vec::new();
    let mut add = |app: &str, ids: Option<Vec<u32>>| match out.iter_mut().find(|s| s.app == app) {
        Some(s) => match (&mut s.ids, ids) {
            (Some(have), Some(more)) => {
                for id in more {
                    if !have.contains(&id) {
                        have.push(id);
                    }
                }
            }
            (have, _) => *have = None,
        },
        None => out.push(Selected {
            app: app.to_string(),
            ids,
        }),
    };
    for t in targets {
        let t = t.trim();
        if t == "all" {
            apps.iter().for_each(|a| add(a.name, None));
            continue;
        }
        if let Ok(id) = t.parse::<u32>() {
            // An id first, as in PM2; else an app named by a number (PM2 files have them).
            match (
                apps.iter().find(|a| a.ids.contains(&id)),
                apps.iter().find(|a| a.name == t),
            ) {
                (Some(a), _) => add(a.name, Some(vec![id])),
                (None, Some(a)) => add(a.name, None),
                (None, None) => return Err(Error::NotFound(format!("no instance with id {id}"))),
            }
            continue;
        }
        if let Some(a) = apps.iter().find(|a| a.name == t) {
            add(a.name, None);
            continue;
        }
        if let Some(re) = regex_target(t)? {
            let matching: Vec<&Candidate<'_>> =
                apps.iter().filter(|a| re.is_match(a.name)).collect();
            if matching.is_empty() {
                return Err(Error::NotFound(format!(
                    "no app name matches {t} (see pmr list)"
                )));
            }
            matching.iter().for_each(|a| add(a.name, None));
            continue;
        }
        let in_ns: Vec<&Candidate<'_>> = apps.iter().filter(|a| a.namespace == t).collect();
        if in_ns.is_empty() {
            return Err(Error::NotFound(format!(
                "no app named '{t}' (see pmr list)"
            )));
        }
        in_ns.iter().for_each(|a| add(a.name, None));
    }
    Ok(out)
}

/// `/.../` names apps by a regular expression (PM2's spelling). Anything
/// else is not a regex target; a malformed one is an error, not a name.
pub(crate) fn regex_target(t: &str) -> Result<Option<regex_lite::Regex>> {
    let Some(body) = t
        .strip_prefix('/')
        .and_then(|r| r.strip_suffix('/'))
        .filter(|b| !b.is_empty())
    else {
        return Ok(None);
    };
    regex_lite::Regex::new(body)
        .map(Some)
        .map_err(|e| Error::Config(format!("{t} is not a usable regular expression: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Vec<Candidate<'static>> {
        vec![
            Candidate {
                name: "api",
                namespace: "web",
                ids: vec![0, 1],
            },
            Candidate {
                name: "worker",
                namespace: "jobs",
                ids: vec![2],
            },
            Candidate {
                name: "admin",
                namespace: "web",
                ids: vec![3],
            },
        ]
    }

    fn t(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_name_id_all_namespace() {
        let a = apps();
        assert_eq!(
            select(&a, &t(&["api"])).unwrap(),
            vec![Selected {
                app: "api".into(),
                ids: None
            }]
        );
        assert_eq!(
            select(&a, &t(&["1"])).unwrap(),
            vec![Selected {
                app: "api".into(),
                ids: Some(vec![1])
            }]
        );
        assert_eq!(select(&a, &t(&["all"])).unwrap().len(), 3);
        let web: Vec<String> = select(&a, &t(&["web"]))
            .unwrap()
            .into_iter()
            .map(|s| s.app)
            .collect();
        assert_eq!(web, vec!["api", "admin"]);
    }

    #[test]
    fn several_targets_merge() {
        let a = apps();
        let s = select(&a, &t(&["0", "1", "worker"])).unwrap();
        assert_eq!(
            s[0],
            Selected {
                app: "api".into(),
                ids: Some(vec![0, 1])
            }
        );
        assert_eq!(s[1].app, "worker");
        let s = select(&a, &t(&["0", "api"])).unwrap();
        assert_eq!(s[0].ids, None);
    }

    fn names(sel: Vec<Selected>) -> Vec<String> {
        sel.into_iter().map(|s| s.app).collect()
    }

    #[test]
    fn regular_expressions_over_names() {
        let a = apps();
        assert_eq!(
            names(select(&a, &t(&["/^a/"])).unwrap()),
            vec!["api", "admin"]
        );
        assert_eq!(names(select(&a, &t(&["/er$/"])).unwrap()), vec!["worker"]);
        assert_eq!(names(select(&a, &t(&["/./", "api"])).unwrap()).len(), 3);
        let none = select(&a, &t(&["/^zzz/"])).unwrap_err();
        assert_eq!(none.code(), "PMR_NOT_FOUND");
        assert!(none.to_string().contains("no app name matches /^zzz/"));
        let bad = select(&a, &t(&["/a(/"])).unwrap_err();
        assert_eq!(bad.code(), "PMR_CONFIG");
        assert!(bad
            .to_string()
            .contains("/a(/ is not a usable regular expression"));
        // Slashes alone are not a pattern.
        assert!(regex_target("/").unwrap().is_none());
        assert!(regex_target("//").unwrap().is_none());
        assert!(regex_target("api").unwrap().is_none());
    }

    #[test]
    fn unknown_targets_are_errors() {
        let a = apps();
        assert_eq!(
            select(&a, &t(&["nope"])).unwrap_err().code(),
            "PMR_NOT_FOUND"
        );
        assert!(select(&a, &t(&["42"]))
            .unwrap_err()
            .to_string()
            .contains("id 42"));
        assert!(select(&a, &[]).is_err());
    }

    #[test]
    fn a_number_is_an_id_first_then_a_name() {
        let mut a = apps();
        a.push(Candidate {
            name: "2024",
            namespace: "default",
            ids: vec![4],
        });
        a.push(Candidate {
            name: "3",
            namespace: "default",
            ids: vec![5],
        });
        assert_eq!(names(select(&a, &t(&["2024"])).unwrap()), vec!["2024"]);
        // Id 3 is admin's: the id wins, as in PM2.
        assert_eq!(names(select(&a, &t(&["3"])).unwrap()), vec!["admin"]);
    }
}
