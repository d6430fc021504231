//! `$PMR_HOME/dump.json`: the saved process list. Written atomically with
//! the previous one kept as `dump.json.bak`, both 0600 since they hold the
//! apps' environments. Read with a fallback to the
//! backup when the main file is damaged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SavedApp;
use crate::error::{Error, Result};

pub const DUMP_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    pub version: u32,
    /// Milliseconds since the epoch.
    pub saved_at: u64,
    /// The pmr version that saved it.
    pub pmr: String,
    pub apps: Vec<SavedApp>,
}

impl Dump {
    pub fn new(apps: Vec<SavedApp>) -> Self {
        Dump {
            version: DUMP_VERSION,
            saved_at: crate::clock::now_ms(),
            pmr: crate::VERSION.to_string(),
            apps,
        }
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// Replaces the dump; the previous one becomes the backup.
pub fn write(path: &Path, dump: &Dump) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(dump)
        .map_err(|e| Error::Config(format!("cannot encode the dump: {e}")))?;
    text.push(b'\n');
    crate::atomic_file::write_atomic(path, &text, Some(&backup_path(path)))
}

fn parse(path: &Path) -> std::result::Result<Dump, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let dump: Dump = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if dump.version != DUMP_VERSION {
        return Err(format!(
            "it is format version {}, this pmr reads version {DUMP_VERSION}",
            dump.version
        ));
    }
    Ok(dump)
}

/// The saved list, and a warning when it came from the backup.
pub fn read(path: &Path) -> Result<(Dump, Option<String>)> {
    let bak = backup_path(path);
    if !path.exists() && !bak.exists() {
        return Err(Error::NotFound(format!(
            "nothing was saved ({} does not exist); run pmr save first",
            path.display()
        )));
    }
    let main_err = match parse(path) {
        Ok(d) => return Ok((d, None)),
        Err(e) => e,
    };
    match parse(&bak) {
        Ok(d) => Ok((
            d,
            Some(format!(
                "{} is unreadable ({main_err}): using the previous save, {}",
                path.display(),
                bak.display()
            )),
        )),
        Err(bak_err) => Err(Error::Config(format!(
            "{} is unreadable ({main_err}) and so is {} ({bak_err}): nothing was started",
            path.display(),
            bak.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dump(n: usize) -> Dump {
        let mut d = Dump::new(Vec::new());
        d.saved_at = n as u64;
        d
    }

    #[test]
    fn writes_keep_the_previous_as_backup_and_are_private() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dump.json");
        write(&p, &dump(1)).unwrap();
        assert!(!backup_path(&p).exists());
        write(&p, &dump(2)).unwrap();
        assert_eq!(read(&p).unwrap().0.saved_at, 2);
        assert_eq!(parse(&backup_path(&p)).unwrap().saved_at, 1);
        for f in [&p, &backup_path(&p)] {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(!t.path().join("dump.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_dump_falls_back_to_the_backup() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dump.json");
        write(&p, &dump(1)).unwrap();
        write(&p, &dump(2)).unwrap();
        std::fs::write(&p, "{ truncated").unwrap();
        let (d, warning) = read(&p).unwrap();
        assert_eq!(d.saved_at, 1);
        assert!(warning.unwrap().contains("using the previous save"));
    }

    #[test]
    fn both_corrupt_is_one_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dump.json");
        std::fs::write(&p, "garbage").unwrap();
        std::fs::write(backup_path(&p), "[]").unwrap();
        let e = read(&p).unwrap_err();
        assert_eq!(e.code(), "PMR_CONFIG");
        assert!(e.to_string().contains("nothing was started"), "{e}");
    }

    #[test]
    fn nothing_saved() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            read(&t.path().join("dump.json")).unwrap_err().code(),
            "PMR_NOT_FOUND"
        );
    }
}
