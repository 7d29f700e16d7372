//! Runbook: YAML text → typed model → diagnostics and plan. Pure: no I/O beyond taking a `&str`
//! (the `cmd_*` entry points read the files and print).

pub mod diag;
pub mod duration;
pub mod kinds;
pub mod load;
pub mod model;
pub mod tree;
mod typed_error;
pub mod vars;

pub use diag::{Diagnostic, Severity};
pub use load::{Loaded, load};
pub use model::*;

use crate::cli::{PlanArgs, ValidateArgs};
use crate::exit;

/// `cutover validate`.
pub fn cmd_validate(_args: &ValidateArgs) -> i32 {
    eprintln!("cutover: validate is not implemented yet");
    exit::INVALID
}

/// `cutover plan`.
pub fn cmd_plan(_args: &PlanArgs) -> i32 {
    eprintln!("cutover: plan is not implemented yet");
    exit::INVALID
}
