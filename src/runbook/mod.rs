//! Runbook: YAML text → typed model → diagnostics and plan. Pure: no I/O beyond taking a `&str`
//! (the edge reads the files and prints), no terminal: a diagnostic renders as plain text, or with
//! the styles the caller passes.

pub mod diag;
pub mod duration;
pub mod load;
pub mod model;
pub mod plan;
pub mod schema;
pub mod starter;
pub mod steps;
mod structure;
pub mod tree;
mod typed_error;
pub mod validate;
mod validate_auth;
mod validate_flow;
pub mod vars;

pub use diag::{Diagnostic, Severity, Styles};
pub use load::{Loaded, load};
pub use model::*;
pub use validate::{validate, validate_loaded};
pub use vars::{EnvLookup, ProcessEnv};
