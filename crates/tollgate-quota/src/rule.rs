//! What a limit *is*: the rule types the config crate builds, the filter that decides whether a
//! rule applies to a request, and the clock arithmetic (window bounds, scheduled ceilings).
//!
//! Everything here is a pure function of the rule and a `now_ms` the caller passes in, so tests
//! drive it with a fake clock and the data path never reads the system time on its own.

use std::time::Duration;

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Milliseconds in a day: windows whose length divides this align to local midnight.
const DAY_MS: i64 = 86_400_000;

/// Shortest window the engine counts. Window tags are whole seconds (see `cell.rs`), so two
/// windows shorter than this could share a tag; shorter configured windows are raised to it.
pub(crate) const MIN_WINDOW_MS: i64 = 1_000;

/// What a rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Requests admitted per window (each admission reserves 1, never refunded).
    Requests,
    /// Requests in flight at once (a slot held until the admission is settled or dropped).
    Concurrency,
    /// Tokens per window, reserved at admission and settled against actual usage.
    Tokens(TokenKind),
}

/// Which tokens a token rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Prompt (input) tokens only.
    Prompt,
    /// Completion (output) tokens only.
    Completion,
    /// Prompt plus completion.
    Total,
}

/// A subject dimension a rule can key its counters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The authenticated consumer.
    Consumer,
    /// The API key id.
    Key,
    /// The requested model.
    Model,
    /// The tenant.
    Tenant,
    /// The project.
    Project,
}

/// What a token rule does when a stream runs past its reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overrun {
    /// Let the stream finish; the overrun is charged (and may push usage over the limit).
    Allow,
    /// End the stream once the budget cannot cover more completion tokens.
    Cut,
}

/// Which requests a rule applies to. Every non-empty list must match; empty lists match anything.
/// Models are globs (`*` any run, `?` one character); the other fields are exact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Consumers (exact).
    pub consumers: Vec<String>,
    /// Key ids (exact).
    pub keys: Vec<String>,
    /// Tenants (exact).
    pub tenants: Vec<String>,
    /// Projects (exact).
    pub projects: Vec<String>,
    /// Model globs.
    pub models: Vec<String>,
}

/// One entry of a rule's schedule: on the given days, between `from_min` and `to_min` (minutes
/// after local midnight), the ceiling is `limit`. `to_min <= from_min` crosses midnight; the day
/// set names the day the window *starts* on (a Fri 22:00–06:00 entry covers Saturday 03:00).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleWindow {
    /// Monday first.
    pub days: [bool; 7],
    /// Start, minutes after local midnight (inclusive).
    pub from_min: u16,
    /// End, minutes after local midnight (exclusive).
    pub to_min: u16,
    /// Ceiling while this entry is active.
    pub limit: u64,
}

/// One limit, as compiled by the config crate.
#[derive(Clone, Debug)]
pub struct LimitRule {
    /// Unique name; counters are keyed by it, so a reload that keeps the name keeps the usage.
    pub name: String,
    /// What is counted.
    pub kind: Kind,
    /// Dimensions the counter is keyed on (empty = one counter for the whole rule).
    pub per: Vec<Dim>,
    /// Which requests the rule applies to.
    pub filter: Filter,
    /// Base ceiling (used when no schedule entry matches).
    pub limit: u64,
    /// Fixed window length (ignored by `Concurrency`). Raised to 1 s if shorter.
    pub window: Duration,
    /// Time zone for window alignment and the schedule.
    pub tz: TimeZone,
    /// First matching entry gives the ceiling; none matching = `limit`.
    pub schedule: Vec<ScheduleWindow>,
    /// Stream overrun policy (token rules counting completion).
    pub stream_overrun: Overrun,
    /// Use the cluster store when one is configured (`Requests` and `Tokens` only).
    pub shared: bool,
}

/// A subject viewed through a filter or a `per` list.
pub(crate) fn dim_value<'a>(subj: &crate::Subject<'a>, dim: Dim) -> &'a str {
    match dim {
        Dim::Consumer => subj.consumer,
        Dim::Key => subj.key,
        Dim::Model => subj.model,
        Dim::Tenant => subj.tenant,
        Dim::Project => subj.project,
    }
}

impl Filter {
    /// True when every non-empty list matches the subject.
    pub fn matches(&self, subj: &crate::Subject<'_>) -> bool {
        exact_any(&self.consumers, subj.consumer)
            && exact_any(&self.keys, subj.key)
            && exact_any(&self.tenants, subj.tenant)
            && exact_any(&self.projects, subj.project)
            && (self.models.is_empty() || self.models.iter().any(|g| glob_match(g, subj.model)))
    }
}

fn exact_any(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

/// Glob with `*` (any run, possibly empty) and `?` (exactly one character). Iterative with one
/// backtrack point, so it is linear-ish and never recurses on hostile model names.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl LimitRule {
    /// Window length in milliseconds, at least [`MIN_WINDOW_MS`].
    pub(crate) fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX / 4)
            .max(MIN_WINDOW_MS)
    }

    /// The ceiling in force at `now_ms`: the first schedule entry matching the local weekday and
    /// time, else the base `limit`.
    pub fn limit_at(&self, now_ms: i64) -> u64 {
        if self.schedule.is_empty() {
            return self.limit;
        }
        let Some(dt) = self.local(now_ms) else {
            return self.limit;
        };
        let day = usize::try_from(dt.weekday().to_monday_zero_offset()).unwrap_or(0) % 7;
        let yesterday = (day + 6) % 7;
        let minute = u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0);
        for w in &self.schedule {
            let hit = if w.from_min < w.to_min {
                w.days[day] && minute >= w.from_min && minute < w.to_min
            } else {
                // Crosses midnight (or spans a whole day when from == to).
                (w.days[day] && minute >= w.from_min) || (w.days[yesterday] && minute < w.to_min)
            };
            if hit {
                return w.limit;
            }
        }
        self.limit
    }

    /// Milliseconds until the local minute changes (when a scheduled ceiling may next change).
    pub(crate) fn ms_to_next_local_minute(&self, now_ms: i64) -> i64 {
        match self.local(now_ms) {
            Some(dt) => {
                let into = i64::from(dt.second()) * 1000 + i64::from(dt.millisecond());
                (60_000 - into).max(1)
            }
            None => 1,
        }
    }

    /// The fixed window containing `now_ms`, as `[start, end)` in Unix milliseconds.
    ///
    /// A window whose length divides 24 h is aligned to local midnight in the rule's zone (1 h
    /// windows start on the local hour, 1 d windows at local midnight, so a DST day has a 23 h or
    /// 25 h daily window, and the hour repeated at fall-back is one 2 h window). Other lengths
    /// align to the Unix epoch.
    pub fn window_bounds(&self, now_ms: i64) -> (i64, i64) {
        let w = self.window_ms();
        if DAY_MS % w == 0
            && let Some(b) = self.local_bounds(now_ms, w)
        {
            return b;
        }
        let start = now_ms.div_euclid(w) * w;
        (start, start.saturating_add(w))
    }

    fn local(&self, now_ms: i64) -> Option<DateTime> {
        let ts = Timestamp::from_millisecond(now_ms).ok()?;
        Some(self.tz.to_datetime(ts))
    }

    fn local_bounds(&self, now_ms: i64, w: i64) -> Option<(i64, i64)> {
        let dt = self.local(now_ms)?;
        let t = dt.time();
        let into_day = i64::from(t.hour()) * 3_600_000
            + i64::from(t.minute()) * 60_000
            + i64::from(t.second()) * 1000
            + i64::from(t.millisecond());
        let midnight = dt.date().to_datetime(Time::midnight());
        let start_civil = midnight
            .checked_add(SignedDuration::from_millis((into_day / w) * w))
            .ok()?;
        let end_civil = start_civil
            .checked_add(SignedDuration::from_millis(w))
            .ok()?;
        let start = self
            .tz
            .to_ambiguous_timestamp(start_civil)
            .compatible()
            .ok()?
            .as_millisecond();
        let end = self
            .tz
            .to_ambiguous_timestamp(end_civil)
            .compatible()
            .ok()?
            .as_millisecond();
        // A gap or fold can only stretch a window; if it ever fails to contain `now`, fall back
        // to epoch alignment rather than count into a window we are not in.
        (start <= now_ms && now_ms < end).then_some((start, end))
    }
}
