//! Schedules and window alignment with a test clock: ceilings switch exactly at local minute
//! boundaries (DST dates included), midnight-crossing entries, windows aligned to local midnight,
//! and the config-syntax parsers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use jiff::Zoned;
use jiff::tz::TimeZone;
use tollgate_quota::{
    Estimate, Kind, LimitRule, QuotaShared, ScheduleWindow, WorkerQuota, parse_days,
    parse_duration, parse_hhmm,
};

fn ms(s: &str) -> i64 {
    s.parse::<Zoned>().unwrap().timestamp().as_millisecond()
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn office_hours(days: &str) -> LimitRule {
    let mut r = rule("sched", Kind::Requests, 1, Duration::from_secs(86_400));
    r.tz = berlin();
    r.schedule = vec![ScheduleWindow {
        days: parse_days(days).unwrap(),
        from_min: parse_hhmm("09:00").unwrap(),
        to_min: parse_hhmm("18:00").unwrap(),
        limit: 5,
    }];
    r
}

#[test]
fn weekday_window_switches_exactly_at_0900_and_1800_local() {
    let r = office_hours("mon-fri");
    // Monday 2026-01-05, CET (UTC+1).
    assert_eq!(r.limit_at(ms("2026-01-05T08:59:59.999[Europe/Berlin]")), 1);
    assert_eq!(r.limit_at(ms("2026-01-05T09:00:00.000[Europe/Berlin]")), 5);
    assert_eq!(
        ms("2026-01-05T09:00:00[Europe/Berlin]"),
        ms("2026-01-05T08:00:00[UTC]")
    );
    assert_eq!(r.limit_at(ms("2026-01-05T17:59:59.999[Europe/Berlin]")), 5);
    assert_eq!(r.limit_at(ms("2026-01-05T18:00:00.000[Europe/Berlin]")), 1);
    // Saturday: no entry applies.
    assert_eq!(r.limit_at(ms("2026-01-10T10:00:00[Europe/Berlin]")), 1);
}

#[test]
fn switch_follows_local_time_on_dst_change_dates() {
    let r = office_hours("daily");
    // Spring forward (Sunday 2026-03-29): 09:00 CEST = 07:00 UTC.
    assert_eq!(r.limit_at(ms("2026-03-29T06:59:59.999[UTC]")), 1);
    assert_eq!(r.limit_at(ms("2026-03-29T07:00:00.000[UTC]")), 5);
    assert_eq!(r.limit_at(ms("2026-03-29T15:59:59.999[UTC]")), 5);
    assert_eq!(r.limit_at(ms("2026-03-29T16:00:00.000[UTC]")), 1);
    // Fall back (Sunday 2026-10-25): 09:00 CET = 08:00 UTC.
    assert_eq!(r.limit_at(ms("2026-10-25T07:59:59.999[UTC]")), 1);
    assert_eq!(r.limit_at(ms("2026-10-25T08:00:00.000[UTC]")), 5);
}

#[test]
fn midnight_crossing_entry_belongs_to_the_day_it_starts() {
    let mut r = rule("night", Kind::Requests, 1, MIN);
    r.tz = berlin();
    r.schedule = vec![ScheduleWindow {
        days: parse_days("fri").unwrap(),
        from_min: parse_hhmm("22:00").unwrap(),
        to_min: parse_hhmm("06:00").unwrap(),
        limit: 9,
    }];
    // Friday 2026-01-09.
    assert_eq!(r.limit_at(ms("2026-01-09T21:59:59.999[Europe/Berlin]")), 1);
    assert_eq!(r.limit_at(ms("2026-01-09T22:00:00[Europe/Berlin]")), 9);
    assert_eq!(r.limit_at(ms("2026-01-09T23:59:59.999[Europe/Berlin]")), 9);
    assert_eq!(r.limit_at(ms("2026-01-10T00:00:00[Europe/Berlin]")), 9);
    assert_eq!(r.limit_at(ms("2026-01-10T05:59:59.999[Europe/Berlin]")), 9);
    assert_eq!(r.limit_at(ms("2026-01-10T06:00:00[Europe/Berlin]")), 1);
    // Friday early morning belongs to Thursday's (absent) entry.
    assert_eq!(r.limit_at(ms("2026-01-09T03:00:00[Europe/Berlin]")), 1);
}

#[test]
fn first_matching_schedule_entry_wins() {
    let mut r = office_hours("mon-fri");
    r.schedule.push(ScheduleWindow {
        days: [true; 7],
        from_min: 0,
        to_min: 0, // whole day
        limit: 7,
    });
    assert_eq!(r.limit_at(ms("2026-01-05T10:00:00[Europe/Berlin]")), 5);
    assert_eq!(r.limit_at(ms("2026-01-05T20:00:00[Europe/Berlin]")), 7);
    assert_eq!(r.limit_at(ms("2026-01-10T10:00:00[Europe/Berlin]")), 7);
}

#[test]
fn admit_sees_the_new_ceiling_at_the_exact_millisecond_and_keeps_the_counter() {
    let mut r = office_hours("mon-fri");
    r.limit = 10;
    r.schedule[0].limit = 3;
    let rs = rules(vec![r]);
    let mut w = WorkerQuota::new(QuotaShared::new(None));
    let sj = subj("k", "t", "m");
    for _ in 0..5 {
        w.admit(
            &rs,
            &sj,
            Estimate::default(),
            ms("2026-01-05T08:59:59.000[Europe/Berlin]"),
        )
        .unwrap();
    }
    w.admit(
        &rs,
        &sj,
        Estimate::default(),
        ms("2026-01-05T08:59:59.999[Europe/Berlin]"),
    )
    .unwrap();
    // 09:00: the ceiling drops to 3 but the counter (6) is not reset.
    let d = w
        .admit(
            &rs,
            &sj,
            Estimate::default(),
            ms("2026-01-05T09:00:00.000[Europe/Berlin]"),
        )
        .unwrap_err();
    match d {
        tollgate_quota::Denied::Throttled { retry_after_s, .. } => {
            // Daily window ends at local midnight: 15 h.
            assert_eq!(retry_after_s, 15 * 3600);
        }
        tollgate_quota::Denied::Pending => panic!(),
    }
    // 18:00: back to 10, same counter: 4 more.
    let evening = ms("2026-01-05T18:00:00.000[Europe/Berlin]");
    for _ in 0..4 {
        w.admit(&rs, &sj, Estimate::default(), evening).unwrap();
    }
    assert!(w.admit(&rs, &sj, Estimate::default(), evening).is_err());
    // Next local day: fresh window.
    w.admit(
        &rs,
        &sj,
        Estimate::default(),
        ms("2026-01-06T00:00:00[Europe/Berlin]"),
    )
    .unwrap();
}

fn bounds(window: Duration, tz: TimeZone, at: &str) -> (i64, i64) {
    let mut r = rule("w", Kind::Requests, 1, window);
    r.tz = tz;
    r.window_bounds(ms(at))
}

#[test]
fn daily_windows_start_at_local_midnight_including_dst_days() {
    let day = Duration::from_secs(86_400);
    assert_eq!(
        bounds(day, berlin(), "2026-01-05T12:34:56[Europe/Berlin]"),
        (
            ms("2026-01-05T00:00:00[Europe/Berlin]"),
            ms("2026-01-06T00:00:00[Europe/Berlin]")
        )
    );
    // Spring forward: a 23 h day.
    let (s, e) = bounds(day, berlin(), "2026-03-29T12:00:00[Europe/Berlin]");
    assert_eq!(s, ms("2026-03-29T00:00:00[Europe/Berlin]"));
    assert_eq!(e - s, 23 * 3_600_000);
    // Fall back: a 25 h day.
    let (s, e) = bounds(day, berlin(), "2026-10-25T23:30:00[Europe/Berlin]");
    assert_eq!(s, ms("2026-10-25T00:00:00[Europe/Berlin]"));
    assert_eq!(e - s, 25 * 3_600_000);
}

#[test]
fn hourly_windows_follow_the_local_hour_and_odd_lengths_align_to_the_epoch() {
    let hour = Duration::from_secs(3600);
    let kolkata = TimeZone::get("Asia/Kolkata").unwrap(); // UTC+5:30
    assert_eq!(
        bounds(hour, kolkata, "2026-01-05T10:15:00[Asia/Kolkata]"),
        (
            ms("2026-01-05T10:00:00[Asia/Kolkata]"),
            ms("2026-01-05T11:00:00[Asia/Kolkata]")
        )
    );
    // 7 minutes does not divide a day: epoch-aligned whatever the zone.
    let (s, e) = bounds(
        Duration::from_secs(420),
        berlin(),
        "2026-01-05T10:15:00[UTC]",
    );
    assert_eq!(s % 420_000, 0);
    assert_eq!(e - s, 420_000);
    // Retry-After at the end of a minute window counts from now.
    let (s, e) = bounds(MIN, TimeZone::UTC, "2026-01-05T10:15:30.5[UTC]");
    assert_eq!(
        (s, e),
        (
            ms("2026-01-05T10:15:00[UTC]"),
            ms("2026-01-05T10:16:00[UTC]")
        )
    );
}

#[test]
fn every_instant_lies_in_its_window_across_a_dst_day() {
    let tz = berlin();
    for window_s in [1800u64, 3600, 7200, 86_400] {
        let mut r = rule("w", Kind::Requests, 1, Duration::from_secs(window_s));
        r.tz = tz.clone();
        let start = ms("2026-10-24T20:00:00[UTC]");
        let mut prev_end = None;
        let mut t = start;
        while t < start + 2 * 86_400_000 {
            let (s, e) = r.window_bounds(t);
            assert!(s <= t && t < e, "{window_s}: {t} not in [{s},{e})");
            if let Some(pe) = prev_end
                && s >= pe
            {
                assert_eq!(s, pe, "windows must tile without gaps");
            }
            prev_end = Some(e);
            t += 600_000;
        }
    }
}

#[test]
fn parsers_accept_the_config_syntax_and_reject_junk() {
    assert_eq!(parse_hhmm("09:00"), Ok(540));
    assert_eq!(parse_hhmm("9:05"), Ok(545));
    assert_eq!(parse_hhmm("24:00"), Ok(1440));
    assert_eq!(parse_hhmm("00:00"), Ok(0));
    for bad in ["", "9", "25:00", "12:60", "24:01", "ab:cd", "1:5", "-1:00"] {
        assert!(parse_hhmm(bad).is_err(), "{bad}");
    }
    let wk = [true, true, true, true, true, false, false];
    assert_eq!(parse_days("mon-fri"), Ok(wk));
    assert_eq!(parse_days("Mon-Fri"), Ok(wk));
    assert_eq!(parse_days("weekdays"), Ok(wk));
    assert_eq!(
        parse_days("sat,sun"),
        Ok([false, false, false, false, false, true, true])
    );
    assert_eq!(parse_days("daily"), Ok([true; 7]));
    assert_eq!(parse_days("*"), Ok([true; 7]));
    assert_eq!(
        parse_days("fri-mon"),
        Ok([true, false, false, false, true, true, true])
    );
    assert_eq!(
        parse_days("wednesday"),
        Ok([false, false, true, false, false, false, false])
    );
    for bad in ["", "funday", "mon-", "mo", "mon,,tue"] {
        assert!(parse_days(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    for bad in [
        "",
        "0s",
        "10",
        "s",
        "1w",
        "1.5h",
        "-1s",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}
