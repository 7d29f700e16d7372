//! Where a replay goes: the `--at`/`--event` flags and the `t` prompt, parsed into a [`Jump`].

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

/// A place on a run's timeline, resolved against its index by [`super::Replay::jump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    /// After the `n`-th event of the run (1 is the run's start).
    Position(usize),
    /// After the event with this journal id (as `cutover verify` and reports name events).
    Event(i64),
    /// After the last event recorded at or before this time (the first event when earlier).
    Time(DateTime<Utc>),
    /// After the run's last event.
    End,
}

/// Parses `#ID` (a journal event id), a full RFC 3339 time, or `HH:MM[:SS]` in UTC (the first
/// such time at or after the run's start at `first`, so a run that crosses midnight works).
pub fn parse_jump(input: &str, first: DateTime<Utc>) -> Result<Jump, String> {
    let s = input.trim();
    if let Some(id) = s.strip_prefix('#') {
        return id
            .trim()
            .parse::<i64>()
            .map(Jump::Event)
            .map_err(|_| format!("{s:?}: an event is #ID, e.g. #1234"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Jump::Time(t.with_timezone(&Utc)));
    }
    let time = NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .map_err(|_| format!("{s:?}: give HH:MM or HH:MM:SS (UTC), a full RFC 3339 time, or #EVENT-ID"))?;
    let mut at = first.date_naive().and_time(time).and_utc();
    // The time of day on the run's first day, or the next day when that is before the start.
    if at + TimeDelta::seconds(60) <= first {
        at += TimeDelta::days(1);
    }
    Ok(Jump::Time(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn times_event_ids_and_mistakes() {
        let start = t("2026-11-21T22:30:00Z");
        assert_eq!(parse_jump("#42", start), Ok(Jump::Event(42)));
        assert_eq!(
            parse_jump("23:15", start),
            Ok(Jump::Time(t("2026-11-21T23:15:00Z")))
        );
        // Before the start's time of day: the next day (the run crossed midnight).
        assert_eq!(
            parse_jump("01:02:03", start),
            Ok(Jump::Time(t("2026-11-22T01:02:03Z")))
        );
        // The start's own minute stays on its day.
        assert_eq!(
            parse_jump("22:30", start),
            Ok(Jump::Time(t("2026-11-21T22:30:00Z")))
        );
        assert_eq!(
            parse_jump("2026-11-22T00:00:00+01:00", start),
            Ok(Jump::Time(t("2026-11-21T23:00:00Z")))
        );
        assert!(parse_jump("tomorrow", start).is_err());
        assert!(parse_jump("#x", start).is_err());
    }
}
