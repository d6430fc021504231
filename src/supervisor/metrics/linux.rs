//! Sampling on Linux: one scan of /proc per tick, reading each process's
//! `stat` once (it alone carries the parent, the process group, the CPU
//! times and the RSS), so the cost depends on the processes of the machine,
//! not on how many instances there are.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};

use super::tree::ProcSample;

/// Parses `/proc/<pid>/stat`. The command name sits in parentheses and
/// may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub(super) fn parse_stat(text: &[u8], tick_ms: f64, page: u64) -> Option<ProcSample> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(&text[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let ticks = num(11)? + num(12)?;
    Some(ProcSample {
        pid,
        ppid: num(1)? as u32,
        pgid: num(2)? as u32,
        start: num(19)?,
        cpu_ms: (ticks as f64 * tick_ms) as u64,
        rss: num(21)? * page,
    })
}

pub(super) struct Scanner {
    path: String,
    buf: Vec<u8>,
    tick_ms: f64,
    page: u64,
}

impl Scanner {
    pub fn new() -> io::Result<Scanner> {
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|v| *v > 0)
            .unwrap_or(100);
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .filter(|v| *v > 0)
            .unwrap_or(4096);
        Ok(Scanner {
            path: String::with_capacity(32),
            buf: vec![0; 4096],
            tick_ms: 1000.0 / hz as f64,
            page: page as u64,
        })
    }

    /// Every process of the machine; ones that exit during the scan are
    /// simply missing.
    pub fn scan(&mut self, out: &mut Vec<ProcSample>) -> io::Result<()> {
        out.clear();
        for entry in std::fs::read_dir("/proc")? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            self.path.clear();
            let _ = write!(self.path, "/proc/{pid}/stat");
            let Ok(mut f) = File::open(&self.path) else {
                continue;
            };
            // One read takes the whole file: a stat line is a few hundred
            // bytes (read_to_end would add an fstat and a seek per file).
            let Ok(n) = f.read(&mut self.buf) else {
                continue;
            };
            if let Some(s) = parse_stat(&self.buf[..n], self.tick_ms, self.page) {
                out.push(s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = b"4242 (my (weird) app) S 4200 4242 4242 0 -1 4194560 1234 0 0 0 150 50 7 3 20 0 11 0 987654 1108869120 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(line, 10.0, 4096).unwrap();
        assert_eq!(
            s,
            ProcSample {
                pid: 4242,
                ppid: 4200,
                pgid: 4242,
                start: 987654,
                cpu_ms: 2000,
                rss: 12345 * 4096,
            }
        );
        assert_eq!(parse_stat(b"12 (x) S 1 2", 10.0, 4096), None);
        assert_eq!(parse_stat(b"garbage", 10.0, 4096), None);
    }

    #[test]
    fn scanning_this_machine_finds_this_process() {
        let mut s = Scanner::new().unwrap();
        let mut procs = Vec::new();
        s.scan(&mut procs).unwrap();
        let me = procs.iter().find(|p| p.pid == std::process::id()).unwrap();
        assert!(me.rss > 0);
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw() as u32);
    }
}
