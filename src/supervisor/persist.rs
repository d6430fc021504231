//! What `pmr save` keeps and `pmr resurrect` brings back: every app as it
//! was started (resolved definition, environment included) and whether it
//! was stopped.

use serde::{Deserialize, Serialize};

use super::{Report, Status, Supervisor};
use crate::error::Result;
use crate::spec::AppSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedApp {
    pub spec: AppSpec,
    /// Every instance was stopped by a user: it comes back stopped.
    pub stopped: bool,
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
            match self.start_one(saved.spec, !saved.stopped).await {
                Ok(notices) => {
                    report.notices.extend(notices);
                    if saved.stopped {
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
