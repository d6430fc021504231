//! The last lines of a file, read backwards from its end so a huge log costs
//! no more than the lines asked for.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const BLOCK: u64 = 64 * 1024;

/// Up to `n` last lines of the file (without newlines). A missing file has none.
pub fn last_lines(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let newlines = tail.iter().filter(|&&b| b == b'\n').count();
        // n lines need n+1 newlines before them unless we reach the start.
        if pos == 0 || newlines > n {
            break;
        }
        let step = BLOCK.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut block = vec![0u8; step as usize];
        f.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
    }
    let text = String::from_utf8_lossy(&tail);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let start = lines.len().saturating_sub(n);
    Ok(lines[start..].iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_n_lines() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.log");
        let body: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, body).unwrap();
        assert_eq!(last_lines(&p, 2).unwrap(), vec!["line 99998", "line 99999"]);
        assert_eq!(last_lines(&p, 0).unwrap(), Vec::<String>::new());
        std::fs::write(&p, "a\nb").unwrap();
        assert_eq!(last_lines(&p, 5).unwrap(), vec!["a", "b"]);
        assert!(last_lines(&t.path().join("missing"), 3).unwrap().is_empty());
    }
}
