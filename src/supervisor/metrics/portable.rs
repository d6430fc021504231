//! Sampling where there is no /proc (macOS and the other Unixes): the
//! process table through `sysinfo`, the process group through getpgid.

use std::io;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

use super::tree::ProcSample;

pub(super) struct Scanner {
    sys: System,
}

impl Scanner {
    pub fn new() -> io::Result<Scanner> {
        let sys = System::new().map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Scanner { sys })
    }

    pub fn scan(&mut self, out: &mut Vec<ProcSample>) -> io::Result<()> {
        out.clear();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        for (pid, p) in self.sys.processes() {
            let raw = pid.as_u32();
            let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(raw as i32)))
                .map(|g| g.as_raw() as u32)
                .unwrap_or(0);
            out.push(ProcSample {
                pid: raw,
                ppid: p.parent().map(|x| x.as_u32()).unwrap_or(0),
                pgid,
                start: p.start_time(),
                cpu_ms: p.accumulated_cpu_time(),
                rss: p.memory(),
            });
        }
        Ok(())
    }
}
