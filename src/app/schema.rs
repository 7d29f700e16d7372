//! `cutover schema` (hidden): the runbook JSON schema, as shipped in assets/runbook.schema.json.

use super::exit;

pub fn run() -> i32 {
    super::out!("{}", crate::runbook::schema::generate());
    exit::OK
}
