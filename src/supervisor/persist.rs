//! What `pmr save` keeps and `pmr resurrect` brings back: every app as it
//! was started (resolved definition, environment included) and whether it
//! was stopped.

use serde::{Deserialize, Serialize};

use super::{Report, Status, Supervisor};
use crate::error::Result;
use crate::spec::{host_cpus, AppSpec, Instances};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedApp {
    pub spec: AppSpec,
    /// Every instance was stopped by a user: it comes back stopped.
    pub stopped: bool,
    /// `max` for an app started with `instances: 'max'`: it comes back with
    /// one instance per CPU of the machine that resurrects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Instances>,
}

impl SavedApp {
    /// The spec to start: a `max` app counts the CPUs of this machine.
    fn spec_here(self) -> AppSpec {
        match self.instances {
            Some(i @ Instances::Max(_)) => AppSpec {
                instances: i.count(host_cpus()),
                instances_max: true,
                ..self.spec
            },
            _ => self.spec,
        }
    }
}

impl Supervisor {
    /// The apps in the order they were started, with their instance count.
    pub fn saved_apps(&self) -> Vec<SavedApp> {
        let reg = self.reg();
        reg.apps
            .iter()
            .map(|a| SavedApp {
                spec: AppSpec {
                    instances: a.slots.len() as u32,
                    ..(*a.spec).clone()
                },
                stopped: a.slots.iter().all(|s| s.st().status == Status::Stopped),
                instances: a
                    .spec
                    .instances_max
                    .then(|| Instances::parse("max").ok())
                    .flatten(),
            })
            .collect()
    }

    /// Brings saved apps back, in order; apps already known are left as
    /// they are. A saved app that cannot start is reported, the others
    /// still come back.
    pub async fn restore(&self, apps: Vec<SavedApp>) -> Result<Report> {
        let mut report = Report::default();
        for saved in apps {
            let name = saved.spec.name.clone();
            if self.reg().app(&name).is_some() {
                report
                    .notices
                    .push(format!("{name} is already in the list: left as it is"));
                continue;
            }
            let stopped = saved.stopped;
            match self.start_one(saved.spec_here(), !stopped, None).await {
                Ok(notices) => {
                    report.notices.extend(notices);
                    if stopped {
                        report
                            .notices
                            .push(format!("{name} was saved stopped: listed, not started"));
                    }
                    report.instances.extend(self.infos_of(&name, None));
                }
                Err(e) => report
                    .notices
                    .push(format!("{name} could not be started: {e}")),
            }
        }
        Ok(report)
    }
}
