//! The simulator: F&O, Dataverse, dual-write and Entra ID on one loopback address.

use crate::cli::SimArgs;
use crate::exit;

/// `cutover sim`.
pub fn cmd_sim(_args: &SimArgs) -> i32 {
    eprintln!("cutover: sim is not implemented yet");
    exit::INVALID
}
