//! Every `dmf.import` package file is present (relative to the runbook) and hashed: its sha256 is what the
//! install record will carry, so the file tested on Friday is provably the one imported on Saturday.

use super::{Ctx, fix, line};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::steps::StepKind;

const CHECK: &str = "package";

pub fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for phase in &cx.opts.runbook.phases {
        for step in phase.steps.iter().flatten() {
            let StepKind::DmfImport(s) = &step.kind else {
                continue;
            };
            let subject = format!("{}: {}", step.id, s.package_file);
            let path = cx.opts.dir.join(&s.package_file);
            out.push(match std::fs::read(&path) {
                Ok(bytes) => line(
                    CHECK,
                    subject,
                    CheckStatus::Ok,
                    format!(
                        "{} bytes, sha256 {}{}",
                        bytes.len(),
                        crate::util::sha256_hex(&bytes),
                        s.package_version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
                    ),
                ),
                Err(e) => fix(
                    line(CHECK, subject, CheckStatus::Error, format!("{}: {e}", path.display())),
                    format!("put the package at {} (relative to the runbook) or correct `package_file` of step {}", path.display(), step.id),
                ),
            });
        }
    }
    out
}
