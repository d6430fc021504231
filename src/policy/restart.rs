//! What happens after an app exits: restart now, restart later, give up
//! (`errored`), or stay stopped. PM2's rules, as its users know them:
//! an exit within `min_uptime` of the start is "unstable"; more than
//! `max_restarts` unstable exits in a row and the app is errored. With
//! `exp_backoff_restart_delay` the delay grows ×1.5 per consecutive crash up
//! to 15 s and resets once the app has stayed up 30 s.

use std::time::Duration;

/// PM2's defaults for `min_uptime` and `max_restarts`.
pub const DEFAULT_MIN_UPTIME_MS: u64 = 1000;
pub const DEFAULT_MAX_RESTARTS: u32 = 16;

pub const BACKOFF_FACTOR: f64 = 1.5;
pub const BACKOFF_CAP: Duration = Duration::from_secs(15);
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub autorestart: bool,
    pub max_restarts: u32,
    pub min_uptime: Duration,
    pub restart_delay: Duration,
    pub exp_backoff: Option<Duration>,
    pub stop_exit_codes: Vec<i32>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            autorestart: true,
            max_restarts: DEFAULT_MAX_RESTARTS,
            min_uptime: Duration::from_millis(DEFAULT_MIN_UPTIME_MS),
            restart_delay: Duration::ZERO,
            exp_backoff: None,
            stop_exit_codes: Vec::new(),
        }
    }
}

/// How a process ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// None when killed by a signal.
    pub code: Option<i32>,
    /// How long the process had been running.
    pub uptime: Duration,
    /// The app left on its own terms (Node's `exitedAfterDisconnect`): not a
    /// crash, but it still has to be brought back.
    pub voluntary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart {
        delay: Duration,
    },
    /// Too many unstable restarts in a row; stays down until a user restarts it.
    Errored {
        reason: String,
    },
    /// Not to be restarted (autorestart off, or an exit code listed in stop_exit_codes).
    Stopped {
        reason: String,
    },
}

/// The per-instance memory the policy needs between exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartState {
    /// Restarts in a row after exits that came sooner than min_uptime.
    pub unstable_restarts: u32,
    /// The delay used for the last backoff restart.
    pub last_backoff: Option<Duration>,
}

impl RestartState {
    /// A user (re)start forgives the past.
    pub fn reset(&mut self) {
        *self = RestartState::default();
    }

    pub fn on_exit(&mut self, policy: &RestartPolicy, exit: Exit) -> Decision {
        if let Some(code) = exit.code {
            if policy.stop_exit_codes.contains(&code) {
                return Decision::Stopped {
                    reason: format!("exited with code {code}, listed in stop_exit_codes"),
                };
            }
        }
        if !policy.autorestart {
            return Decision::Stopped {
                reason: "exited and autorestart is off".into(),
            };
        }
        if exit.voluntary {
            self.last_backoff = None;
            return Decision::Restart {
                delay: policy.restart_delay,
            };
        }

        // The count is of restarts, as the setting is: an unstable exit
        // once `max_restarts` of them were restarted is not restarted, so
        // it does not add one (a reader compares "16" with "16").
        if exit.uptime < policy.min_uptime {
            if self.unstable_restarts >= policy.max_restarts {
                return Decision::Errored {
                    reason: format!(
                        "{} unstable restarts (max_restarts {}), each run shorter than min_uptime ({} ms)",
                        self.unstable_restarts,
                        policy.max_restarts,
                        policy.min_uptime.as_millis()
                    ),
                };
            }
            self.unstable_restarts += 1;
        } else {
            self.unstable_restarts = 0;
        }

        let delay = match policy.exp_backoff {
            None => policy.restart_delay,
            Some(base) => {
                let next = match self.last_backoff {
                    Some(prev) if exit.uptime < BACKOFF_RESET_AFTER => {
                        prev.mul_f64(BACKOFF_FACTOR).min(BACKOFF_CAP)
                    }
                    _ => base.min(BACKOFF_CAP),
                };
                self.last_backoff = Some(next);
                next
            }
        };
        Decision::Restart { delay }
    }
}

impl RestartState {
    /// A process replaced for failing its health checks (or blocking its
    /// event loop), counted by the same crash-loop rule as an exit: one that
    /// never passed a check counts as an unstable run, one that did as a
    /// stable one. The replacement happens whatever `autorestart` and
    /// `stop_exit_codes` say (they are about exits); too many unstable ones
    /// in a row and the instance is errored.
    pub fn on_unhealthy(&mut self, policy: &RestartPolicy, passed_once: bool) -> Decision {
        let p = RestartPolicy {
            autorestart: true,
            stop_exit_codes: Vec::new(),
            ..policy.clone()
        };
        let uptime = if passed_once {
            policy.min_uptime.max(BACKOFF_RESET_AFTER)
        } else {
            Duration::ZERO
        };
        self.on_exit(
            &p,
            Exit {
                code: None,
                uptime,
                voluntary: false,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(ms: u64) -> Exit {
        Exit {
            code: Some(1),
            uptime: Duration::from_millis(ms),
            voluntary: false,
        }
    }

    fn delay(d: &Decision) -> Duration {
        match d {
            Decision::Restart { delay } => *delay,
            other => panic!("expected a restart, got {other:?}"),
        }
    }

    #[test]
    fn crash_loop_goes_errored_after_max_restarts() {
        let p = RestartPolicy {
            max_restarts: 3,
            ..Default::default()
        };
        let mut s = RestartState::default();
        for i in 1..=3 {
            assert_eq!(
                s.on_exit(&p, crash(10)),
                Decision::Restart {
                    delay: Duration::ZERO
                },
                "exit {i}"
            );
        }
        match s.on_exit(&p, crash(10)) {
            Decision::Errored { reason } => {
                assert!(
                    reason.starts_with("3 unstable restarts (max_restarts 3)"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stable_run_resets_the_unstable_count() {
        let p = RestartPolicy {
            max_restarts: 2,
            ..Default::default()
        };
        let mut s = RestartState::default();
        s.on_exit(&p, crash(10));
        s.on_exit(&p, crash(10));
        assert_eq!(s.unstable_restarts, 2);
        s.on_exit(&p, crash(5_000));
        assert_eq!(s.unstable_restarts, 0);
        assert!(matches!(s.on_exit(&p, crash(10)), Decision::Restart { .. }));
    }

    #[test]
    fn stop_exit_codes_and_autorestart() {
        let p = RestartPolicy {
            stop_exit_codes: vec![0, 3],
            ..Default::default()
        };
        let mut s = RestartState::default();
        let exit3 = Exit {
            code: Some(3),
            ..crash(10)
        };
        assert!(matches!(s.on_exit(&p, exit3), Decision::Stopped { .. }));
        let signalled = Exit {
            code: None,
            ..crash(10)
        };
        assert!(matches!(s.on_exit(&p, signalled), Decision::Restart { .. }));

        let p = RestartPolicy {
            autorestart: false,
            ..Default::default()
        };
        assert!(matches!(s.on_exit(&p, crash(10)), Decision::Stopped { .. }));
    }

    #[test]
    fn restart_delay_is_used() {
        let p = RestartPolicy {
            restart_delay: Duration::from_millis(250),
            ..Default::default()
        };
        assert_eq!(
            delay(&RestartState::default().on_exit(&p, crash(10))),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn exponential_backoff_grows_caps_and_resets() {
        let p = RestartPolicy {
            exp_backoff: Some(Duration::from_millis(100)),
            max_restarts: 1000,
            ..Default::default()
        };
        let mut s = RestartState::default();
        assert_eq!(delay(&s.on_exit(&p, crash(10))), Duration::from_millis(100));
        assert_eq!(delay(&s.on_exit(&p, crash(10))), Duration::from_millis(150));
        assert_eq!(delay(&s.on_exit(&p, crash(10))), Duration::from_millis(225));
        for _ in 0..30 {
            s.on_exit(&p, crash(10));
        }
        assert_eq!(delay(&s.on_exit(&p, crash(10))), BACKOFF_CAP);
        assert_eq!(
            delay(&s.on_exit(&p, crash(31_000))),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn voluntary_exits_restart_without_counting() {
        let p = RestartPolicy {
            max_restarts: 0,
            ..Default::default()
        };
        let mut s = RestartState::default();
        let e = Exit {
            voluntary: true,
            ..crash(1)
        };
        for _ in 0..5 {
            assert!(matches!(s.on_exit(&p, e), Decision::Restart { .. }));
        }
        assert_eq!(s.unstable_restarts, 0);
    }

    #[test]
    fn health_replacements_share_the_crash_loop_count() {
        let p = RestartPolicy {
            max_restarts: 2,
            autorestart: false,
            ..Default::default()
        };
        let mut s = RestartState::default();
        assert!(matches!(
            s.on_unhealthy(&p, false),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            s.on_exit(
                &RestartPolicy {
                    max_restarts: 2,
                    ..Default::default()
                },
                crash(10)
            ),
            Decision::Restart { .. }
        ));
        assert_eq!(
            s.unstable_restarts, 2,
            "a crash and a health replacement, in a row"
        );
        assert!(matches!(
            s.on_unhealthy(&p, false),
            Decision::Errored { .. }
        ));
        s.reset();
        s.on_unhealthy(&p, false);
        assert!(matches!(s.on_unhealthy(&p, true), Decision::Restart { .. }));
        assert_eq!(
            s.unstable_restarts, 0,
            "a process that passed its checks ran stably"
        );
    }

    #[test]
    fn reset_forgives() {
        let p = RestartPolicy {
            max_restarts: 0,
            ..Default::default()
        };
        let mut s = RestartState::default();
        assert!(matches!(s.on_exit(&p, crash(1)), Decision::Errored { .. }));
        s.reset();
        assert_eq!(s.unstable_restarts, 0);
    }
}
