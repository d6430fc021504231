//! `pmr start`'s wait: the started instances seen through their first
//! moments (online, then `min_uptime`), and the error for one that exited
//! too soon.

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::logs::tail::last_lines;
use crate::model::RecentLines;
use crate::protocol::Request;
use crate::spec::AppSpec;
use crate::supervisor::{InstanceInfo, Report, Status};

/// How often `settle` looks at the instances: short next to min_uptime
/// (1 s by default), and a `list` costs the daemon next to nothing.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// Beyond the longest time an instance may take to come online
/// (listen_timeout, after which the daemon calls it online anyway).
const SETTLE_SLACK_MS: u64 = 2000;

/// After a start: waits until the started instances are online, then
/// until each has run for its app's `min_uptime`. An instance that exited
/// meanwhile (PM2 would show it online, or restarting) makes the start
/// fail, naming the exit code and the instance's last log line; an app
/// that finished its work (stopped after exit code 0) does not. The outer
/// error is the connection's; the inner one is the verdict, returned
/// after the table is printed.
pub(super) fn settle(c: &mut Client, report: &Report, specs: &[AppSpec]) -> Result<Result<()>> {
    let spec_of = |name: &str| specs.iter().find(|s| s.name == name);
    let watched: Vec<&InstanceInfo> = report
        .instances
        .iter()
        .filter(|i| i.pid.is_some() && spec_of(&i.name).is_some())
        .collect();
    let longest = watched
        .iter()
        .filter_map(|i| spec_of(&i.name))
        .map(|s| s.min_uptime_ms.max(s.listen_timeout_ms))
        .max()
        .unwrap_or(0);
    let give_up = Instant::now() + Duration::from_millis(longest + SETTLE_SLACK_MS);
    while !watched.is_empty() {
        let now = crate::clock::now_ms();
        let list: Vec<InstanceInfo> = c.request_as(Request::List)?;
        let mut settled = true;
        for first in &watched {
            let Some(i) = list.iter().find(|i| i.id == first.id) else {
                continue; // deleted meanwhile: not this start's business
            };
            let Some(spec) = spec_of(&i.name) else {
                continue;
            };
            let started = first.started_at.unwrap_or(now);
            let young = now < started + spec.min_uptime_ms;
            let exited = i.pid != first.pid || i.restarts != first.restarts;
            // pmr's own replacements (cron, watch, memory) are not crashes.
            let early = i
                .last_exit
                .as_ref()
                .is_some_and(|e| !e.expected && e.at < started + spec.min_uptime_ms);
            // An exit code the app declares as "done" is not a failure.
            let finished = i.status == Status::Stopped
                && i.last_exit.as_ref().is_some_and(|e| {
                    e.code
                        .is_some_and(|c| c == 0 || spec.stop_exit_codes.contains(&c))
                });
            if exited && early && !finished {
                return Ok(Err(early_exit(c, i, spec)?));
            }
            if young || i.status == Status::Launching {
                settled = false;
            }
        }
        if settled || Instant::now() >= give_up {
            break;
        }
        std::thread::sleep(SETTLE_POLL);
    }
    Ok(Ok(()))
}

/// The error for an instance that exited within min_uptime of its start.
fn early_exit(c: &mut Client, i: &InstanceInfo, spec: &AppSpec) -> Result<Error> {
    // pmr already knows why it will not restart it (a port another app holds).
    if let (Status::Errored, Some(reason)) = (i.status, &i.errored_reason) {
        return Ok(Error::Spawn(format!("{} (id {}): {reason}", i.name, i.id)));
    }
    let how = i
        .last_exit
        .as_ref()
        .map(|e| match (&e.signal, e.code) {
            (Some(s), _) => format!("was killed by {s}"),
            (None, Some(code)) => format!("exited with code {code}"),
            (None, None) => "exited".into(),
        })
        .unwrap_or_else(|| "exited".into());
    let recent: RecentLines = c.request_as(Request::RecentLogs {
        ids: vec![i.id],
        lines: 1,
        out: true,
        err: true,
    })?;
    let last = match recent.lines.last() {
        Some(l) => Some(l.line.clone()),
        // Its past is only in its files: the error file says more.
        None => [&i.logs.err, &i.logs.out]
            .into_iter()
            .find_map(|p| last_lines(p, 1).ok().and_then(|mut v| v.pop())),
    };
    let last = match last {
        Some(l) => format!("; its last log line: {l}"),
        None => "; it wrote nothing".into(),
    };
    Ok(Error::Spawn(format!(
        "{} (id {}) {how} within min_uptime ({} ms) of its start{last} (pmr logs {} for more; --no-wait to not wait)",
        i.name, i.id, spec.min_uptime_ms, i.name
    )))
}
