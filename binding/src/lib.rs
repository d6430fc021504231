//! The Node-API face of pmr: converts arguments, results and errors between
//! JavaScript and the `pmr` core crate, nothing more.

// napi-derive leaves out the export registration when compiling tests, so
// under `cargo clippy --all-targets` every export looks unused.
#![cfg_attr(test, allow(dead_code))]

mod api;
mod cli;
mod daemon;
mod runtime;

use napi::bindgen_prelude::*;

/// A JS Error for failures that are not pmr's own (those travel as outcome
/// JSON with their stable code, see `pmr::control::outcome_json`).
fn to_js(e: pmr::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

/// The native daemon shipped beside this addon: in a checkout and in the
/// npm platform package alike, `pmr-daemon` sits next to the `.node` file.
pub(crate) fn daemon_binary() -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: Dl_info is plain pointers and integers, for which all-zero
    // is a valid value (null pointers); dladdr fills it in.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = daemon_binary as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables for an address inside
    // this library, and writes into `info`, a valid out-parameter.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(file.to_bytes())).parent()?;
    Some(dir.join("pmr-daemon"))
}
