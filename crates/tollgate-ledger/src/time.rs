//! The times a person types on the `tollgate usage` command line, turned into Unix milliseconds.
//!
//! Lives here rather than in the CLI so the accepted forms and their error messages are tested
//! next to the reports that use them.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Parses a CLI time into Unix milliseconds.
///
/// Accepted forms:
/// - RFC 3339 with an offset: `2026-11-22T10:00:00Z`, `2026-11-22T10:00:00.250+01:00`;
/// - a date, meaning midnight UTC: `2026-11-22`;
/// - `now` (returns `now_ms`);
/// - a relative time before `now_ms`: `-90m`, `-2h`, `-7d` (minutes, hours, days).
///
/// The error names the input and what was wrong with it.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(
            "empty time: expected RFC 3339, a date (YYYY-MM-DD), now, or -90m/-2h/-7d".into(),
        );
    }
    if s.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(rel) = s.strip_prefix('-') {
        return parse_relative(s, rel, now_ms);
    }
    if is_plain_date(s) {
        let date: Date = s.parse().map_err(|e| format!("bad date {s:?}: {e}"))?;
        let zoned = date
            .to_zoned(TimeZone::UTC)
            .map_err(|e| format!("bad date {s:?}: {e}"))?;
        return Ok(zoned.timestamp().as_millisecond());
    }
    if s.contains('T') || s.contains('t') || s.contains(' ') {
        let ts: Timestamp = s.parse().map_err(|e| {
            format!(
                "bad time {s:?}: {e} (expected RFC 3339 with an offset, e.g. 2026-11-22T10:00:00Z)"
            )
        })?;
        return Ok(ts.as_millisecond());
    }
    Err(format!(
        "bad time {s:?}: expected RFC 3339 (2026-11-22T10:00:00Z), a date (2026-11-22), now, \
         or a relative time (-90m, -2h, -7d)"
    ))
}

/// Formats Unix milliseconds as RFC 3339 in UTC, e.g. `2026-11-22T10:00:00Z`.
///
/// Milliseconds outside jiff's range (year ±9999) are shown as the raw number.
pub fn format_ms(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("{ms}ms"),
    }
}

/// `YYYY-MM-DD` and nothing else.
fn is_plain_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// `rel` is `s` without its leading `-`: a count and a unit.
fn parse_relative(s: &str, rel: &str, now_ms: i64) -> Result<i64, String> {
    let Some(unit) = rel.chars().last() else {
        return Err(format!(
            "bad relative time {s:?}: missing number and unit (e.g. -2h)"
        ));
    };
    let unit_ms = match unit {
        'm' => MINUTE_MS,
        'h' => HOUR_MS,
        'd' => DAY_MS,
        _ => {
            return Err(format!(
                "bad relative time {s:?}: unit must be m (minutes), h (hours) or d (days)"
            ));
        }
    };
    let digits = &rel[..rel.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad relative time {s:?}: expected a whole number before the unit (e.g. -90m)"
        ));
    }
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("bad relative time {s:?}: number too large"))?;
    n.checked_mul(unit_ms)
        .and_then(|back| now_ms.checked_sub(back))
        .ok_or_else(|| format!("bad relative time {s:?}: number too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, i64)] = &[
            ("now", NOW),
            (" NOW ", NOW),
            ("-90m", NOW - 90 * MINUTE_MS),
            ("-2h", NOW - 2 * HOUR_MS),
            ("-7d", NOW - 7 * DAY_MS),
            ("-0m", NOW),
            ("1970-01-01", 0),
            ("2026-11-22", 1_795_305_600_000),
            ("2026-11-22T10:00:00Z", 1_795_341_600_000),
            ("2026-11-22T10:00:00+01:00", 1_795_338_000_000),
            ("2026-11-22T10:00:00.250Z", 1_795_341_600_250),
            ("2026-11-22t10:00:00z", 1_795_341_600_000),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_time(input, NOW), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejected_forms_say_what_was_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "empty time"),
            ("yesterday", "expected RFC 3339"),
            ("-", "missing number and unit"),
            ("-5x", "unit must be m"),
            ("-h", "whole number"),
            ("-1.5h", "whole number"),
            ("--2h", "whole number"),
            ("-99999999999999999999d", "too large"),
            ("-9999999999999d", "too large"),
            ("+2h", "expected RFC 3339"),
            ("2026-13-01", "bad date"),
            ("2026-02-30", "bad date"),
            ("2026-11-22T10:00:00", "offset"),
            ("1795000000000", "expected RFC 3339"),
        ];
        for &(input, want) in cases {
            let err = parse_time(input, NOW).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn format_is_rfc3339_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_795_341_600_250), "2026-11-22T10:00:00.25Z");
        assert_eq!(format_ms(i64::MAX), format!("{}ms", i64::MAX));
    }
}
