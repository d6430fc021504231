//! The instances' figures in Prometheus' text exposition format (0.0.4), as
//! `pmr metrics` prints them and the daemon's `/metrics` endpoint serves them.

use std::fmt::Write as _;

use super::state::{InstanceInfo, Status};

/// The `Content-Type` of what `render` returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(i: &InstanceInfo) -> String {
    format!(
        "app=\"{}\",id=\"{}\",instance=\"{}\",namespace=\"{}\"",
        escape(&i.name),
        i.id,
        i.instance,
        escape(&i.namespace)
    )
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
    }
}

/// Every family is written even when no instance has a sample for it, so a
/// scraper sees the same names whatever runs.
pub fn render(instances: &[InstanceInfo]) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let all: Vec<(&InstanceInfo, String)> = instances.iter().map(|i| (i, labels(i))).collect();
    let running = |i: &InstanceInfo| i.pid.is_some();

    f.header(
        "pmr_up",
        "gauge",
        "1 when the instance is online, 0 otherwise.",
    );
    for (i, l) in &all {
        f.sample("pmr_up", l, u8::from(i.status == Status::Online));
    }

    f.header(
        "pmr_restarts_total",
        "counter",
        "Restarts of the instance, by reason.",
    );
    for (i, l) in &all {
        let r = &i.restart_reasons;
        for (reason, n) in [
            ("crash", r.crash),
            ("memory", r.memory),
            ("watch", r.watch),
            ("cron", r.cron),
            ("user", r.user),
            ("health", r.health),
        ] {
            f.sample("pmr_restarts_total", &format!("{l},reason=\"{reason}\""), n);
        }
    }

    f.header(
        "pmr_uptime_seconds",
        "gauge",
        "Time since the instance's current process started.",
    );
    for (i, l) in all.iter().filter(|(i, _)| running(i)) {
        f.sample("pmr_uptime_seconds", l, i.uptime_ms as f64 / 1000.0);
    }

    f.header(
        "pmr_cpu_percent",
        "gauge",
        "CPU used by the instance's process tree over the last sampling interval, in percent of one core.",
    );
    for (i, l) in all.iter().filter(|(i, _)| running(i)) {
        f.sample("pmr_cpu_percent", l, round(i.cpu));
    }

    f.header(
        "pmr_memory_bytes",
        "gauge",
        "Resident memory of the instance's process tree (children included).",
    );
    for (i, l) in all.iter().filter(|(i, _)| running(i)) {
        f.sample("pmr_memory_bytes", l, i.memory);
    }

    f.header(
        "pmr_memory_limit_bytes",
        "gauge",
        "max_memory_restart of the instance, when it has one.",
    );
    for (i, l) in &all {
        if let Some(m) = i.memory_limit {
            f.sample("pmr_memory_limit_bytes", l, m);
        }
    }

    f.header(
        "pmr_processes",
        "gauge",
        "Processes in the instance's tree.",
    );
    for (i, l) in all.iter().filter(|(i, _)| running(i)) {
        f.sample("pmr_processes", l, i.processes);
    }

    let node: Vec<_> = all
        .iter()
        .filter_map(|(i, l)| i.node.map(|n| (n, l)))
        .collect();
    f.header(
        "pmr_event_loop_lag_seconds",
        "gauge",
        "How late the Node.js event loop runs a timer (Node.js apps only).",
    );
    for (n, l) in &node {
        f.sample(
            "pmr_event_loop_lag_seconds",
            l,
            round(n.event_loop_lag_ms / 1000.0),
        );
    }
    f.header(
        "pmr_heap_used_bytes",
        "gauge",
        "V8 heap in use (Node.js apps only).",
    );
    for (n, l) in &node {
        f.sample("pmr_heap_used_bytes", l, n.heap_used);
    }
    f.header(
        "pmr_heap_total_bytes",
        "gauge",
        "V8 heap reserved (Node.js apps only).",
    );
    for (n, l) in &node {
        f.sample("pmr_heap_total_bytes", l, n.heap_total);
    }
    f.header(
        "pmr_active_handles",
        "gauge",
        "libuv handles keeping the Node.js event loop alive (Node.js apps only).",
    );
    for (n, l) in &node {
        f.sample("pmr_active_handles", l, n.active_handles);
    }
    f.header(
        "pmr_health_status",
        "gauge",
        "1 healthy, 0 unhealthy, -1 starting (instances with a health check or max_event_loop_lag).",
    );
    for (i, l) in &all {
        if let Some(h) = &i.health {
            let v = match h.status {
                crate::model::HealthStatus::Healthy => 1,
                crate::model::HealthStatus::Unhealthy => 0,
                crate::model::HealthStatus::Starting => -1,
            };
            f.sample("pmr_health_status", l, v);
        }
    }
    f.header(
        "pmr_health_consecutive_failures",
        "gauge",
        "Failed health checks in a row of the instance's current process.",
    );
    for (i, l) in &all {
        if let Some(h) = &i.health {
            f.sample("pmr_health_consecutive_failures", l, h.consecutive_failures);
        }
    }
    let conns: Vec<_> = all
        .iter()
        .filter_map(|(i, l)| i.connections.map(|c| (c, l)))
        .collect();
    f.header(
        "pmr_connections_open",
        "gauge",
        "Connections the worker holds open (cluster mode, when pmr hands them out).",
    );
    for (c, l) in &conns {
        f.sample("pmr_connections_open", l, c.open);
    }
    f.header(
        "pmr_connections_accepted_total",
        "counter",
        "Connections pmr handed to the worker and it took, since its process started.",
    );
    for (c, l) in &conns {
        f.sample("pmr_connections_accepted_total", l, c.accepted);
    }
    out
}

/// Six significant decimals are plenty and keep float noise out of the text.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogPaths;
    use crate::spec::ExecMode;
    use crate::supervisor::state::{NodeMetrics, RestartCounts};

    fn info(name: &str, id: u32, pid: Option<u32>) -> InstanceInfo {
        InstanceInfo {
            name: name.into(),
            namespace: "default".into(),
            id,
            instance: id,
            pid,
            status: if pid.is_some() {
                Status::Online
            } else {
                Status::Stopped
            },
            restarts: 3,
            restart_reasons: RestartCounts {
                crash: 1,
                memory: 2,
                ..Default::default()
            },
            unstable_restarts: 0,
            uptime_ms: 61_500,
            memory: 50 << 20,
            cpu: 1.25,
            processes: 2,
            memory_limit: Some(80 << 20),
            memory_exceeded: None,
            node: Some(NodeMetrics {
                event_loop_lag_ms: 1.5,
                heap_used: 1000,
                heap_total: 2000,
                active_handles: 4,
            }),
            mode: ExecMode::Cluster,
            started_at: None,
            created_at: 0,
            last_exit: None,
            errored_reason: None,
            last_error: None,
            listening: Vec::new(),
            logs: LogPaths {
                out: "/dev/null".into(),
                err: "/dev/null".into(),
                combined: None,
            },
            log_dropped_bytes: 0,
            health: None,
            watching: false,
            next_cron_restart: None,
            kill_scope: None,
            connections: Some(crate::model::Connections {
                open: 3,
                accepted: 17,
            }),
        }
    }

    #[test]
    fn families_samples_and_labels() {
        let mut stopped = info("we\"ird\\name", 1, None);
        stopped.node = None;
        let text = render(&[info("api", 0, Some(42)), stopped]);
        let lines: Vec<&str> = text.lines().collect();
        let has = |l: &str| lines.contains(&l);
        let base = r#"app="api",id="0",instance="0",namespace="default""#;
        assert!(has(&format!("pmr_up{{{base}}} 1")));
        assert!(has(
            r#"pmr_up{app="we\"ird\\name",id="1",instance="1",namespace="default"} 0"#
        ));
        assert!(has(&format!(
            "pmr_restarts_total{{{base},reason=\"memory\"}} 2"
        )));
        assert!(has(&format!("pmr_uptime_seconds{{{base}}} 61.5")));
        assert!(has(&format!("pmr_cpu_percent{{{base}}} 1.25")));
        assert!(has(&format!("pmr_memory_bytes{{{base}}} 52428800")));
        assert!(has(&format!("pmr_event_loop_lag_seconds{{{base}}} 0.0015")));
        assert!(has(&format!("pmr_active_handles{{{base}}} 4")));
        assert!(has(&format!("pmr_connections_open{{{base}}} 3")));
        assert!(has(&format!("pmr_connections_accepted_total{{{base}}} 17")));
        // A stopped instance has no usage samples, and no Node.js figures.
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("pmr_memory_bytes{"))
                .count(),
            1
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("pmr_heap_used_bytes{"))
                .count(),
            1
        );
        // Each family: HELP, TYPE, then its samples, never interleaved.
        let mut seen = Vec::new();
        for l in &lines {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name), "{name} twice");
                seen.push(name);
            } else if !l.starts_with('#') {
                let name = l.split('{').next().unwrap();
                assert_eq!(Some(&name), seen.last(), "{l}");
            }
        }
        assert_eq!(seen.len(), 15);
    }

    #[test]
    fn nothing_running_still_names_every_family() {
        let text = render(&[]);
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 15);
        assert!(text.lines().all(|l| l.starts_with('#')));
    }
}
