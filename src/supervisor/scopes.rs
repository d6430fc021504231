//! The kill scope of every running app process, by its main pid, and the
//! one switch that ends them all when the host goes away.
//!
//! An in-process supervisor is killed from Node's `exit` handler or a
//! signal handler, while its tokio tasks still run: a slot that sees its
//! process die there takes it for a crash and spawns a replacement, which
//! the dying host would leave behind as an orphan. Closing the registry
//! first makes that impossible: a spawn that was already under way when it
//! closed is killed as it registers, and later ones are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::process::scope::KillScope;

#[derive(Default)]
pub(crate) struct Scopes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_pid: HashMap<u32, Weak<KillScope>>,
    closed: bool,
}

impl Scopes {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether new processes may still be started.
    pub fn open(&self) -> bool {
        !self.state().closed
    }

    /// Records a new process. Once closed, the process is killed instead
    /// and `false` returned.
    pub fn register(&self, pid: u32, scope: &Arc<KillScope>) -> bool {
        let mut st = self.state();
        if st.closed {
            drop(st);
            scope.kill_all();
            return false;
        }
        st.by_pid.retain(|_, s| s.strong_count() > 0);
        st.by_pid.insert(pid, Arc::downgrade(scope));
        true
    }

    pub fn get(&self, pid: u32) -> Option<Arc<KillScope>> {
        self.state().by_pid.get(&pid).and_then(Weak::upgrade)
    }

    /// Refuses every later process and SIGKILLs every registered one.
    pub fn close_and_kill_all(&self) {
        let live: Vec<Arc<KillScope>> = {
            let mut st = self.state();
            st.closed = true;
            st.by_pid.values().filter_map(Weak::upgrade).collect()
        };
        for s in live {
            s.kill_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::group::pid_alive;
    use crate::process::pidfd::Pidfd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command};

    fn sleeper() -> (Child, Arc<KillScope>) {
        let child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let leader = Pidfd::open(pid).ok();
        #[cfg(target_os = "linux")]
        let scope = Arc::new(KillScope::new(pid, leader, None));
        #[cfg(not(target_os = "linux"))]
        let scope = Arc::new(KillScope::new(pid, leader));
        (child, scope)
    }

    #[test]
    fn closing_kills_the_registered_and_refuses_later_ones() {
        let scopes = Scopes::default();
        let (mut before, s1) = sleeper();
        assert!(scopes.register(before.id(), &s1));
        assert!(scopes.get(before.id()).is_some());
        assert!(scopes.open());

        scopes.close_and_kill_all();
        assert!(!scopes.open());
        assert!(before.wait().expect("wait").signal().is_some());

        // A spawn that was under way when the registry closed.
        let (mut late, s2) = sleeper();
        assert!(!scopes.register(late.id(), &s2));
        assert!(late.wait().expect("wait").signal().is_some());
        assert!(!pid_alive(late.id()));
        assert!(scopes.get(late.id()).is_none());
    }

    #[test]
    fn ended_processes_are_forgotten() {
        let scopes = Scopes::default();
        let (mut a, sa) = sleeper();
        assert!(scopes.register(a.id(), &sa));
        sa.kill_all();
        a.wait().expect("wait");
        let pid = a.id();
        drop(sa);
        assert!(scopes.get(pid).is_none());
    }
}
