//! Small text helpers shared by the panes: durations, countdowns, truncation, sparklines.

use chrono::{DateTime, Utc};

/// `1h02m`, `4m05s`, `12s`, `850ms` (the crate's compact duration formatter).
pub use crate::util::duration::compact_ms as duration_ms;

/// `hh:mm:ss` of an elapsed time (hours grow past 24).
pub fn clock_ms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Milliseconds from `from` to `to`, 0 when `to` is earlier.
pub fn since_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

/// `in 3h12m` or `3h12m ago` (`overdue 5m` when `overdue` wording is asked for).
pub fn countdown(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ms = (deadline - now).num_milliseconds();
    if ms >= 0 {
        format!("in {}", duration_ms(ms.unsigned_abs()))
    } else {
        format!("overdue {}", duration_ms(ms.unsigned_abs()))
    }
}

/// `HH:MM:SS` in UTC.
pub fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// Cuts `s` to `width` characters, ending with `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Pads or cuts `s` to exactly `width` characters.
pub fn pad(s: &str, width: usize) -> String {
    let f = fit(s, width);
    let n = f.chars().count();
    format!("{f}{}", " ".repeat(width.saturating_sub(n)))
}

/// Right-aligns `s` in `width` characters.
pub fn rpad(s: &str, width: usize) -> String {
    let f = fit(s, width);
    let n = f.chars().count();
    format!("{}{f}", " ".repeat(width.saturating_sub(n)))
}

/// 1234567 → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A text sparkline of the last `width` values (absolute), scaled to the largest shown; zero is `▁`
/// only when every value is zero, so a row that drifted and recovered shows its shape.
pub fn sparkline<I>(values: I, width: usize) -> String
where
    I: DoubleEndedIterator<Item = i64> + ExactSizeIterator,
{
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let n = values.len();
    let vals: Vec<u64> = values
        .skip(n.saturating_sub(width))
        .map(i64::unsigned_abs)
        .collect();
    let max = vals.iter().copied().max().unwrap_or(0);
    vals.iter()
        .map(|&v| match v.saturating_mul(7).checked_div(max) {
            None => BARS[0],
            Some(i) => BARS[usize::try_from(i).unwrap_or(7).min(7)],
        })
        .collect()
}

/// A text gauge `████░░░░` of `width` cells.
pub fn bar(done: u64, total: u64, width: usize) -> String {
    let total = total.max(1);
    let filled = usize::try_from(done.min(total).saturating_mul(width as u64) / total).unwrap_or(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled.min(width)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_000), "12s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
        assert_eq!(clock_ms(3_723_000), "01:02:03");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(rpad("ab", 4), "  ab");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(sparkline([0, 4, 8, -8].into_iter(), 3), "▄██");
        assert_eq!(sparkline([0, 0].into_iter(), 5), "▁▁");
        assert_eq!(bar(1, 4, 8), "██░░░░░░");
        assert_eq!(bar(9, 4, 4), "████");
    }
}
