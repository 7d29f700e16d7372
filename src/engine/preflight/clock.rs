//! Clock skew: each service's `Date` header against this machine's clock half-way through the call (the
//! header has one-second resolution). Tokens carry `nbf`/`exp` and certificate assertions are checked with
//! five minutes of leeway, so more than that is an error; more than a minute a warning.

use super::{Ctx, fix, line};
use crate::model::event::{CheckStatus, PreflightCheck};

const CHECK: &str = "clock";
const WARN_S: i64 = 60;
const ERROR_S: i64 = 300;

pub fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for (name, env) in &cx.envs {
        let Some((headers, mid)) = &env.answer else {
            continue;
        };
        let date = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok());
        let Some(date) = date else {
            out.push(line(
                CHECK,
                name,
                CheckStatus::Warning,
                "the answer carried no `Date` header: skew not measured",
            ));
            continue;
        };
        let skew = (date.with_timezone(&chrono::Utc) - *mid).num_milliseconds();
        let secs = (skew as f64 / 1000.0).round() as i64;
        let ahead = if secs >= 0 { "ahead of" } else { "behind" };
        let msg = format!("the service's clock is {}s {ahead} this machine's", secs.abs());
        let status = match secs.abs() {
            s if s > ERROR_S => CheckStatus::Error,
            s if s > WARN_S => CheckStatus::Warning,
            _ => CheckStatus::Ok,
        };
        let l = line(CHECK, name, status, msg);
        out.push(if status == CheckStatus::Ok {
            l
        } else {
            fix(l, "synchronise this machine's clock (NTP: `timedatectl set-ntp true` or the OS's time settings)")
        });
    }
    out
}
