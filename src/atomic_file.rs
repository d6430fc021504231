//! Replacing a file whole, so a reader (or a crash) never sees half of it:
//! the daemon's pid and state files and the saved process list are written
//! this way.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Replaces `path` with `bytes` (mode 0600): temporary file, fsync, rename,
/// so a reader sees the old or the new content, never a part. With `backup`,
/// the old file is kept there (hard-linked first, so `path` always exists).
pub fn write_atomic(path: &Path, bytes: &[u8], backup: Option<&Path>) -> Result<()> {
    let ctx = |what: &str, p: &Path| format!("cannot {what} {}", p.display());
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(ctx("write", &tmp), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(ctx("write", &tmp), e))?;
    drop(f);
    if let Some(bak) = backup.filter(|_| path.exists()) {
        let mut link_name = bak.file_name().unwrap_or_default().to_os_string();
        link_name.push(".tmp");
        let link = bak.with_file_name(link_name);
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(path, &link)
            .and_then(|_| std::fs::rename(&link, bak))
            .map_err(|e| Error::io(ctx("keep the previous version as", bak), e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(ctx("write", path), e))?;
    if let Some(dir) = path.parent() {
        // The rename is durable only once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
