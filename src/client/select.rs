//! Choices a client makes from the daemon's process list, the same for the
//! CLI and the JS API: which apps of a file still need starting, and which
//! instances a `logs` target names.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::spec::AppSpec;
use crate::supervisor::target::regex_target;
use crate::supervisor::InstanceInfo;

/// An app of a file that already runs: `start` leaves it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlreadyRunning {
    pub name: String,
    pub ids: Vec<u32>,
}

impl AlreadyRunning {
    /// What the user is told about it.
    pub fn notice(&self, file: &str) -> String {
        let ids: Vec<String> = self.ids.iter().map(u32::to_string).collect();
        format!(
            "{} is already running (id {}); pmr reload {file} applies changes to it",
            self.name,
            ids.join(", ")
        )
    }
}

/// The apps of a file split into those to start and those already running.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartPlan {
    pub start: Vec<AppSpec>,
    pub running: Vec<AlreadyRunning>,
}

/// Splits `specs` by whether an instance of the same name is active in
/// `list` (a stopped or errored app is started again).
pub fn plan_start(specs: Vec<AppSpec>, list: &[InstanceInfo]) -> StartPlan {
    let mut plan = StartPlan {
        start: Vec::new(),
        running: Vec::new(),
    };
    for spec in specs {
        let ids: Vec<u32> = list
            .iter()
            .filter(|i| i.name == spec.name && i.status.is_active())
            .map(|i| i.id)
            .collect();
        if ids.is_empty() {
            plan.start.push(spec);
        } else {
            plan.running.push(AlreadyRunning {
                name: spec.name,
                ids,
            });
        }
    }
    plan
}

/// What `logs <target>` names: everything, an instance id, an app or
/// namespace name, or `/regex/` on app names.
#[derive(Debug, Clone)]
pub enum LogTarget {
    All,
    Id(u32),
    Name(String),
    Pattern(regex_lite::Regex),
}

impl LogTarget {
    pub fn parse(target: Option<&str>) -> Result<LogTarget> {
        let Some(t) = target.filter(|t| *t != "all") else {
            return Ok(LogTarget::All);
        };
        if let Some(re) = regex_target(t)? {
            return Ok(LogTarget::Pattern(re));
        }
        Ok(match t.parse::<u32>() {
            Ok(id) => LogTarget::Id(id),
            Err(_) => LogTarget::Name(t.to_string()),
        })
    }

    pub fn matches(&self, i: &InstanceInfo) -> bool {
        match self {
            LogTarget::All => true,
            LogTarget::Id(id) => i.id == *id,
            LogTarget::Name(n) => i.name == *n || i.namespace == *n,
            LogTarget::Pattern(re) => re.is_match(&i.name),
        }
    }

    /// The instances of `list` it names; none is an error unless it names
    /// everything (no app runs yet).
    pub fn select<'a>(&self, list: &'a [InstanceInfo], shown: &str) -> Result<Follow<'a>> {
        let chosen: Vec<&InstanceInfo> = list.iter().filter(|i| self.matches(i)).collect();
        if chosen.is_empty() && !matches!(self, LogTarget::All) {
            return Err(Error::NotFound(format!(
                "no app or id matches '{shown}' (see pmr list)"
            )));
        }
        // Named by app, new instances of the app (a scale up) follow too;
        // named by id, only that instance does.
        let apps = match self {
            LogTarget::Id(_) => BTreeSet::new(),
            _ => chosen.iter().map(|i| i.name.clone()).collect(),
        };
        Ok(Follow {
            all: matches!(self, LogTarget::All),
            ids: chosen.iter().map(|i| i.id).collect(),
            apps,
            chosen,
        })
    }
}

/// The instances a `logs` target chose, and whose new lines follow.
#[derive(Debug, Clone, Serialize)]
pub struct Follow<'a> {
    /// Every line follows, of apps started later too.
    pub all: bool,
    pub ids: BTreeSet<u32>,
    pub apps: BTreeSet<String>,
    #[serde(rename = "instances")]
    pub chosen: Vec<&'a InstanceInfo>,
}

impl Follow<'_> {
    pub fn follows(&self, app: &str, id: u32) -> bool {
        self.all || self.ids.contains(&id) || self.apps.contains(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::Status;

    fn row(id: u32, name: &str, namespace: &str, status: Status) -> InstanceInfo {
        serde_json::from_value(serde_json::json!({
            "name": name, "namespace": namespace, "id": id, "instance": 0, "pid": null,
            "status": status, "restarts": 0,
            "restart_reasons": crate::supervisor::state::RestartCounts::default(),
            "unstable_restarts": 0, "uptime_ms": 0, "memory": 0, "cpu": 0.0, "processes": 0,
            "memory_limit": null, "memory_exceeded": null, "node": null, "mode": "fork",
            "started_at": null, "created_at": 0, "last_exit": null, "errored_reason": null,
            "last_error": null, "listening": [], "log_dropped_bytes": 0, "kill_scope": null,
            "logs": {"out": "/dev/null", "err": "/dev/null", "combined": null},
        }))
        .unwrap()
    }

    fn spec(name: &str) -> AppSpec {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.js"), "").unwrap();
        let cfg = crate::spec::AppConfig {
            name: Some(name.into()),
            script: Some("a.js".into()),
            ..Default::default()
        };
        cfg.resolve(&crate::spec::ResolveContext {
            base_dir: t.path(),
            caller_env: &Default::default(),
            node: std::path::Path::new("/usr/bin/node"),
            cpus: 1,
            log_dir: t.path(),
        })
        .unwrap()
        .spec
    }

    #[test]
    fn only_apps_with_an_active_instance_count_as_running() {
        let list = [
            row(0, "web", "default", Status::Online),
            row(1, "web", "default", Status::Launching),
            row(2, "job", "default", Status::Stopped),
            row(3, "bad", "default", Status::Errored),
        ];
        let plan = plan_start(
            vec![spec("web"), spec("job"), spec("bad"), spec("new")],
            &list,
        );
        let names: Vec<&str> = plan.start.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["job", "bad", "new"]);
        assert_eq!(
            plan.running,
            [AlreadyRunning {
                name: "web".into(),
                ids: vec![0, 1]
            }]
        );
        assert_eq!(
            plan.running[0].notice("eco.json"),
            "web is already running (id 0, 1); pmr reload eco.json applies changes to it"
        );
    }

    #[test]
    fn log_targets_by_id_name_namespace_and_pattern() {
        let list = [
            row(0, "api-a", "shop", Status::Online),
            row(1, "api-b", "shop", Status::Online),
            row(2, "worker", "default", Status::Online),
        ];
        let ids = |t: &str| -> Vec<u32> {
            let f = LogTarget::parse(Some(t)).unwrap().select(&list, t).unwrap();
            f.ids.into_iter().collect()
        };
        assert_eq!(ids("all"), [0, 1, 2]);
        assert_eq!(ids("1"), [1]);
        assert_eq!(ids("worker"), [2]);
        assert_eq!(ids("shop"), [0, 1]);
        assert_eq!(ids("/^api-/"), [0, 1]);

        let by_id = LogTarget::parse(Some("1")).unwrap();
        let f = by_id.select(&list, "1").unwrap();
        assert!(f.follows("api-b", 1) && !f.follows("api-b", 7));
        let by_name = LogTarget::parse(Some("api-b")).unwrap();
        assert!(by_name.select(&list, "api-b").unwrap().follows("api-b", 7));
    }

    #[test]
    fn a_target_naming_nothing_or_a_broken_pattern_is_refused() {
        let e = LogTarget::parse(Some("ghost"))
            .unwrap()
            .select(&[], "ghost")
            .unwrap_err();
        assert_eq!(e.code(), "PMR_NOT_FOUND");
        assert_eq!(e.to_string(), "no app or id matches 'ghost' (see pmr list)");
        let e = LogTarget::parse(Some("/api(/")).unwrap_err();
        assert_eq!(e.code(), "PMR_CONFIG");
        assert!(
            LogTarget::parse(None)
                .unwrap()
                .select(&[], "all")
                .unwrap()
                .all
        );
    }
}
