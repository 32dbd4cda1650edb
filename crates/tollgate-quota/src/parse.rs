//! Small text parsers the config crate calls when it compiles `[[limits]]` tables: durations
//! (`30s`, `1h`), clock times (`09:00`) and day sets (`mon-fri`). They live here so the quota
//! crate owns the meaning of its own syntax; errors are plain strings the config crate wraps with
//! the file, line and field.

use std::time::Duration;

/// Parse `"HH:MM"` (00:00–24:00) into minutes after midnight. `24:00` is accepted as the end of
/// the day (1440).
pub fn parse_hhmm(s: &str) -> Result<u16, String> {
    let s = s.trim();
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("expected HH:MM, got {s:?}"))?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return Err(format!("expected HH:MM, got {s:?}"));
    }
    let h: u16 = h.parse().map_err(|_| format!("bad hour in {s:?}"))?;
    let m: u16 = m.parse().map_err(|_| format!("bad minute in {s:?}"))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("time out of range: {s:?}"));
    }
    Ok(h * 60 + m)
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Result<usize, String> {
    let l = s.trim().to_ascii_lowercase();
    let short = l.get(..3).unwrap_or(&l);
    let full_ok = matches!(
        l.as_str(),
        "monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday" | "sunday"
    );
    if l.len() != 3 && !full_ok {
        return Err(format!("unknown day {s:?}"));
    }
    DAY_NAMES
        .iter()
        .position(|d| *d == short)
        .ok_or_else(|| format!("unknown day {s:?}"))
}

/// Parse a day set, Monday first: `"daily"` or `"*"` (all days), `"weekdays"`, `"weekends"`, or a
/// comma list of days and ranges (`"mon-fri"`, `"sat,sun"`, `"fri-mon"` wraps over the weekend).
pub fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "daily" | "*" | "all" => return Ok([true; 7]),
        "weekdays" => return Ok([true, true, true, true, true, false, false]),
        "weekends" => return Ok([false, false, false, false, false, true, true]),
        "" => return Err("empty day set".to_string()),
        _ => {}
    }
    let mut days = [false; 7];
    for part in t.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[day_index(part)?] = true,
        }
    }
    Ok(days)
}

/// Parse `"<n><unit>"` with unit `ms`, `s`, `m`, `h` or `d` (`"30s"`, `"1m"`, `"1h"`, `"1d"`).
/// Zero is rejected: a zero window or timeout is always a configuration mistake.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("missing unit in {s:?} (use ms, s, m, h or d)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a number before the unit in {s:?}"))?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if n == 0 {
        return Err(format!("duration must be positive: {s:?}"));
    }
    let ms = n
        .checked_mul(ms_per)
        .ok_or_else(|| format!("duration too large: {s:?}"))?;
    Ok(Duration::from_millis(ms))
}
