//! App output: captured from pipes by the supervisor, written as whole lines
//! to files (rotated by size or day), remembered for `pmr logs --lines`, and
//! tapped live for `pmr logs` subscribers.

pub mod capture;
pub mod file;
pub mod history;
pub mod rotate;
pub mod tail;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::AppSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Out,
    Err,
}

/// One line of app output as subscribers receive it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub app: String,
    pub id: u32,
    pub stream: Stream,
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    pub line: String,
    /// Order of arrival across all instances and streams (lines of one
    /// chunk share it): a line streamed after a history with the same or
    /// a lower number for its instance and stream was already shown.
    #[serde(default)]
    pub seq: u64,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// One line as `log_type: 'json'` writes it (and `pmr logs --json` prints it).
#[derive(Debug, Serialize)]
pub struct JsonLine<'a> {
    /// None where the time is unknown (a line read back from a plain file).
    pub timestamp: Option<&'a str>,
    pub app: &'a str,
    pub id: u32,
    /// The instance number (`NODE_APP_INSTANCE`), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// `out`, `err`, or `pmr` for pmr's own events.
    pub stream: &'a str,
    pub message: &'a str,
}

impl JsonLine<'_> {
    /// The object and its newline.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// The files one instance writes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPaths {
    pub out: PathBuf,
    pub err: PathBuf,
    pub combined: Option<PathBuf>,
}

/// PM2's naming: `<name>-out.log`, and `<name>-out-<id>.log` per instance
/// when an app has several instances (or runs clustered) and logs are not merged.
pub fn paths_for(spec: &AppSpec, id: u32, log_dir: &Path) -> LogPaths {
    let per_instance = !spec.logs.merge_logs
        && (spec.instances > 1 || spec.exec_mode == crate::spec::ExecMode::Cluster);
    let pick = |explicit: &Option<PathBuf>, kind: &str| {
        let base = explicit
            .clone()
            .unwrap_or_else(|| log_dir.join(format!("{}-{kind}.log", spec.name)));
        if per_instance && !is_discard(&base) {
            with_id(&base, id)
        } else {
            base
        }
    };
    LogPaths {
        out: pick(&spec.logs.out_file, "out"),
        err: pick(&spec.logs.error_file, "error"),
        combined: spec.logs.log_file.as_ref().map(|p| {
            if per_instance && !is_discard(p) {
                with_id(p, id)
            } else {
                p.clone()
            }
        }),
    }
}

/// `/dev/null` or `NULL` as a log path means: discard.
pub fn is_discard(p: &Path) -> bool {
    p == Path::new("/dev/null") || p.file_name().is_some_and(|n| n == "NULL")
}

fn with_id(p: &Path, id: u32) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match p.extension() {
        Some(ext) => format!("{stem}-{id}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{id}"),
    };
    p.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_instance_suffix_goes_before_the_extension() {
        assert_eq!(
            with_id(Path::new("/l/api-out.log"), 3),
            PathBuf::from("/l/api-out-3.log")
        );
        assert_eq!(with_id(Path::new("/l/out"), 3), PathBuf::from("/l/out-3"));
        assert!(is_discard(Path::new("/dev/null")));
        assert!(is_discard(Path::new("NULL")));
    }
}
