//! CPU and memory of every running instance, sampled on an interval with
//! one read of /proc per process, written into the instances' state.

use std::sync::Weak;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::Inner;

pub(super) fn spawn_sampler(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let mut sys = match System::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("no CPU or memory figures on this system: {e}");
                return;
            }
        };
        loop {
            let interval = match inner.upgrade() {
                Some(i) => i
                    .settings
                    .read()
                    .map(|s| s.metrics.interval_ms)
                    .unwrap_or(1000),
                None => return,
            };
            tokio::time::sleep(std::time::Duration::from_millis(interval)).await;
            let Some(inner) = inner.upgrade() else { return };
            let targets: Vec<_> = {
                let reg = inner.registry.lock().unwrap_or_else(|e| e.into_inner());
                reg.apps
                    .iter()
                    .flat_map(|a| a.slots.iter())
                    .filter_map(|s| s.st().pid.map(|pid| (pid, s.state.clone())))
                    .collect()
            };
            if targets.is_empty() {
                continue;
            }
            let pids: Vec<Pid> = targets.iter().map(|(p, _)| Pid::from_u32(*p)).collect();
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            for (pid, state) in targets {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if st.pid != Some(pid) {
                    continue;
                }
                match sys.process(Pid::from_u32(pid)) {
                    Some(p) => {
                        st.cpu = p.cpu_usage() as f64;
                        st.memory = p.memory();
                    }
                    None => {
                        st.cpu = 0.0;
                        st.memory = 0;
                    }
                }
            }
        }
    });
}
