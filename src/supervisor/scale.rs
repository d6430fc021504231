//! Scaling an app: more instances start with its definition, the
//! highest-numbered ones go.

use std::sync::Arc;

use super::replies::gather;
use super::slot::SlotCommand;
use super::{Report, ScaleTo, Supervisor};
use crate::error::{Error, Result};
use crate::spec::AppSpec;

impl Supervisor {
    pub async fn scale(&self, name: &str, to: ScaleTo) -> Result<Report> {
        let op = self
            .reg()
            .app(name)
            .map(|a| a.op.clone())
            .ok_or_else(|| Error::NotFound(format!("no app named '{name}' (see pmr list)")))?;
        let _guard = op.lock().await;
        let spec = {
            let reg = self.reg();
            let app = reg
                .app(name)
                .ok_or_else(|| Error::NotFound(format!("no app named '{name}'")))?;
            let wanted = to.apply(app.slots.len() as u32);
            if wanted == 0 {
                return Err(Error::Config(format!(
                    "cannot scale {name} to 0 instances; use pmr stop {name} or pmr delete {name}"
                )));
            }
            // A count chosen by hand is no longer "one per CPU".
            Arc::new(AppSpec {
                instances: wanted,
                instances_max: false,
                ..(*app.spec).clone()
            })
        };
        self.resize_locked(name, spec).await?;
        Ok(Report {
            instances: self.infos_of(name, None),
            notices: self.sync_automation(name).await,
            ..Report::default()
        })
    }

    /// Brings the app to `spec.instances` instances: new ones start with
    /// `spec`, the highest-numbered go. The caller holds the operation lock.
    pub(super) async fn resize_locked(&self, name: &str, spec: Arc<AppSpec>) -> Result<()> {
        let (started, removed) = {
            let mut reg = self.reg();
            let Some(app) = reg.app(name) else {
                return Err(Error::NotFound(format!("no app named '{name}'")));
            };
            let current = app.slots.len() as u32;
            let wanted = spec.instances;
            let pool = app.pool.clone();
            let mut used: Vec<u32> = app.slots.iter().map(|s| s.instance).collect();
            let mut new_slots = Vec::new();
            let mut next_instance = 0;
            for _ in current..wanted {
                while used.contains(&next_instance) {
                    next_instance += 1;
                }
                used.push(next_instance);
                new_slots.push(self.new_slot(&mut reg, &spec, &pool, next_instance, None));
            }
            let app = reg
                .app_mut(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            app.spec = Arc::new(AppSpec {
                instances: wanted,
                instances_max: spec.instances_max,
                ..(*app.spec).clone()
            });
            let mut removed = Vec::new();
            if wanted < current {
                app.slots.sort_by_key(|s| s.instance);
                removed = app.slots.split_off(wanted as usize);
            }
            let started: Vec<_> = new_slots
                .iter()
                .map(|s| s.ask(|reply| SlotCommand::Start { spec: None, reply }))
                .collect();
            app.slots.extend(new_slots);
            (started, removed)
        };
        let started = gather(started).await;
        self.shutdown_slots(&removed).await;
        self.forget_logs(&removed);
        started
    }
}
