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
