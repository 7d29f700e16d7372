//! The crate's one duration grammar and its formatters.
//!
//! Grammar: one or more `<number><unit>` parts, units `d`, `h`, `m`, `s`, largest first and each at
//! most once (`30s`, `10m`, `1h30m`, `2d`). Two readers apply it: a runbook ([`Rules::WHOLE`]: whole
//! numbers, a unit on every part, at most a year) and a simulator scenario ([`Rules::SCENARIO`]:
//! fractions allowed, `1.5s`, and a bare number is seconds, `90`).
//!
//! Formatters: [`readable_ms`] (`1h 02m 03s`, `4m 05s`, `6.2s`, `120ms`: headless lines and reports)
//! and [`compact_ms`] (`1h02m`, `4m05s`, `12s`, `850ms`: the console's narrow columns). The runbook's
//! canonical form (`1h30m`, what `Duration::from_secs` prints) is the grammar written back.

/// What a reader of the grammar allows beyond it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Parts may be fractions (`1.5s`).
    pub fractions: bool,
    /// A number alone means seconds (`90`).
    pub bare_seconds: bool,
    /// The largest accepted total, in seconds.
    pub max_secs: f64,
}

impl Rules {
    /// A runbook's: whole numbers, every part with its unit, at most one year.
    pub const WHOLE: Rules = Rules {
        fractions: false,
        bare_seconds: false,
        max_secs: 366.0 * 24.0 * 3600.0,
    };
    /// A simulator scenario's: fractions, and bare seconds.
    pub const SCENARIO: Rules = Rules {
        fractions: true,
        bare_seconds: true,
        max_secs: f64::MAX,
    };
}

/// The seconds `text` stands for under `rules`, or `None` when it is not a duration.
pub fn parse_secs(text: &str, rules: Rules) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if rules.bare_seconds
        && let Some(n) = number(t, rules)
    {
        return (n <= rules.max_secs).then_some(n);
    }
    let mut secs = 0.0_f64;
    let mut start = 0;
    let mut last_rank = None;
    for (i, c) in t.char_indices() {
        let (rank, unit) = match c {
            'd' => (0, 86_400.0),
            'h' => (1, 3_600.0),
            'm' => (2, 60.0),
            's' => (3, 1.0),
            _ => continue,
        };
        let n = number(&t[start..i], rules)?;
        if last_rank.is_some_and(|last| rank <= last) {
            return None;
        }
        last_rank = Some(rank);
        secs += n * unit;
        start = i + c.len_utf8();
    }
    // A number left without its unit, or no part at all.
    if start != t.len() || last_rank.is_none() || !secs.is_finite() || secs > rules.max_secs {
        return None;
    }
    Some(secs)
}

/// A part's number: ASCII digits, with one `.` when fractions are allowed.
fn number(text: &str, rules: Rules) -> Option<f64> {
    let dots = text.bytes().filter(|b| *b == b'.').count();
    let digits = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if text.is_empty() || !digits || dots > usize::from(rules.fractions) || text == "." {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `1h 02m 03s`, `4m 05s`, `6.2s`, `120ms`.
pub fn readable_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m {:02}s", s / 3600, (s / 60) % 60, s % 60),
    }
}

/// `1h02m`, `4m05s`, `12s`, `850ms`: the two largest units.
pub fn compact_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s == 0 {
        return format!("{ms}ms");
    }
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_rules_take_whole_parts_with_units_largest_first() {
        for (text, secs) in [
            ("30s", 30.0),
            ("10m", 600.0),
            ("1h30m", 5_400.0),
            ("2d", 172_800.0),
            ("0s", 0.0),
        ] {
            assert_eq!(parse_secs(text, Rules::WHOLE), Some(secs), "{text}");
        }
        for text in [
            "", "10", "m", "10x", "30m1h", "1h1h", "-5m", "1.5s", "400d", "1 h",
        ] {
            assert_eq!(parse_secs(text, Rules::WHOLE), None, "{text}");
        }
    }

    #[test]
    fn the_scenario_rules_also_take_fractions_and_bare_seconds() {
        assert_eq!(parse_secs("90", Rules::SCENARIO), Some(90.0));
        assert_eq!(parse_secs("1.5s", Rules::SCENARIO), Some(1.5));
        assert_eq!(parse_secs("0.02", Rules::SCENARIO), Some(0.02));
        assert_eq!(parse_secs("45m", Rules::SCENARIO), Some(2_700.0));
        assert_eq!(parse_secs("ten", Rules::SCENARIO), None);
        assert_eq!(parse_secs("-3s", Rules::SCENARIO), None);
    }

    #[test]
    fn formatters() {
        assert_eq!(readable_ms(120), "120ms");
        assert_eq!(readable_ms(6_250), "6.2s");
        assert_eq!(readable_ms(245_000), "4m 05s");
        assert_eq!(compact_ms(850), "850ms");
        assert_eq!(compact_ms(245_000), "4m05s");
        assert_eq!(compact_ms(3_720_000), "1h02m");
    }
}
