//! The Node-API face of pmr: converts arguments, results and errors between
//! JavaScript and the `pmr` core crate, nothing more.

// napi-derive leaves out the export registration when compiling tests, so
// under `cargo clippy --all-targets` every export looks unused.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod daemon;
mod handles;
mod runtime;

use napi::bindgen_prelude::*;
use napi::sys;

/// pmr's stable error code as napi's error status: napi-rs creates the JS
/// Error with `code` set to it (`napi_create_error(code, message)`).
#[derive(Debug, Clone, Copy)]
struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A failure as JS sees it: an Error with pmr's `code`, its message, and
/// for a refused ecosystem the `problems`, one object per problem.
pub struct Failure {
    code: &'static str,
    message: String,
    problems: Option<serde_json::Value>,
}

impl From<pmr::Error> for Failure {
    fn from(e: pmr::Error) -> Self {
        Failure {
            code: e.code(),
            message: e.to_wire().message,
            problems: None,
        }
    }
}

impl From<pmr::spec::js_options::Refusal> for Failure {
    fn from(r: pmr::spec::js_options::Refusal) -> Self {
        Failure {
            problems: serde_json::to_value(&r.problems).ok(),
            ..Failure::from(r.error)
        }
    }
}

impl Failure {
    /// The JS Error, held by a napi error that hands back that very object
    /// when it is thrown or a promise is rejected with it (napi-rs reuses a
    /// referenced error value rather than building a new one), so the
    /// properties set here reach the caller.
    ///
    /// # Safety
    /// `env` is the live environment of the calling JS thread.
    unsafe fn into_js(self, env: sys::napi_env) -> Error {
        let base = Error::new(Code(self.code), self.message);
        // SAFETY: env is live (the caller's contract).
        let value = unsafe { JsError::from(base).into_value(env) };
        if value.is_null() {
            // The environment is shutting down: nobody is left to see the code.
            return Error::new(Status::GenericFailure, "the JS environment is closing");
        }
        if let Some(problems) = self.problems {
            let mut obj = Object::from_raw(env, value);
            if let Err(e) = obj.set_named_property("problems", problems) {
                return e;
            }
        }
        // SAFETY: value is the Error object just created in this env.
        Error::from(unsafe { Unknown::from_raw_unchecked(env, value) })
    }
}

/// What a binding function returns: its value, or a JS Error carrying pmr's
/// stable `code` (see `Failure`), thrown or rejected with.
pub struct Outcome<T>(pub std::result::Result<T, Failure>);

impl<T, E: Into<Failure>> From<std::result::Result<T, E>> for Outcome<T> {
    fn from(r: std::result::Result<T, E>) -> Self {
        Outcome(r.map_err(Into::into))
    }
}

impl<T: ToNapiValue> ToNapiValue for Outcome<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val.0 {
            // SAFETY: env is the live env napi-rs converts in.
            Ok(v) => unsafe { T::to_napi_value(env, v) },
            // SAFETY: as above.
            Err(f) => Err(unsafe { f.into_js(env) }),
        }
    }
}

impl<T> TypeName for Outcome<T> {
    fn type_name() -> &'static str {
        "Outcome"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
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
