//! Top-N usage reports behind `tollgate usage`: totals, then for each requested dimension the
//! groups that spent the most tokens.
//!
//! The report is a plain value computed from records, so the CLI only parses flags, calls
//! [`crate::read_range`] and [`report`], and prints [`Report::to_table`] or [`Report::to_json`].
//!
//! # Columns
//! `requests`, `errors` (status ≥ 400), `prompt`, `completion`, `total` tokens (prompt +
//! completion) and, per group, `share` = the group's total tokens as a percentage of all total
//! tokens in the range (0 when the range has no tokens at all).
//!
//! # Ordering and the "(other)" row
//! Groups are ranked by total tokens, then requests (both descending), then name (ascending), so
//! equal inputs always print the same report. When there are more groups than `top`, the rest are
//! summed into one `(other)` row, so every table adds up to the totals. `top = 0` means no limit.
//!
//! # Group names
//! `tenant`, `key` (key id), `model` and `backend` are the record's field. `project` and
//! `consumer` are only unique within their tenant (and project), so they are shown qualified:
//! `acme/search`, `acme/search/web`; an unauthenticated `"-"` stays `"-"`.

mod table;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::Record;
use crate::time::format_ms;

/// A dimension to group usage by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By tenant.
    Tenant,
    /// By project, qualified by tenant (`tenant/project`).
    Project,
    /// By consumer, qualified by tenant and project (`tenant/project/consumer`).
    Consumer,
    /// By API key id.
    Key,
    /// By requested model.
    Model,
    /// By backend that served the request.
    Backend,
}

/// Token and request counts of a set of records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Requests.
    pub requests: u64,
    /// Requests answered with status 400 or above.
    pub errors: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt plus completion tokens.
    pub total_tokens: u64,
}

/// One row of a group table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Group name (see the module doc), or `(other)`.
    pub name: String,
    /// The group's counts.
    #[serde(flatten)]
    pub usage: Usage,
    /// Share of all total tokens in the range, in percent, rounded to 0.01.
    pub share_pct: f64,
}

/// The Top-N table of one dimension.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupTable {
    /// The dimension.
    pub by: GroupBy,
    /// Distinct groups in the range.
    pub groups: usize,
    /// The top groups, best first.
    pub top: Vec<Row>,
    /// The groups beyond `top`, summed; `None` when every group is listed.
    pub other: Option<Row>,
    /// How many groups `other` sums.
    pub other_groups: usize,
}

/// A usage report over `[since, until)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Start of the range, RFC 3339 UTC.
    pub since: String,
    /// End of the range (excluded), RFC 3339 UTC.
    pub until: String,
    /// Start of the range, Unix ms.
    pub since_ms: i64,
    /// End of the range (excluded), Unix ms.
    pub until_ms: i64,
    /// Unreadable ledger lines met while reading (set with [`Report::with_skipped`]).
    pub skipped_lines: u64,
    /// Counts over every record in the range.
    pub totals: Usage,
    /// One table per requested dimension, in the order requested.
    pub by: Vec<GroupTable>,
}

impl GroupBy {
    /// Every dimension, in CLI order.
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Tenant,
        GroupBy::Project,
        GroupBy::Consumer,
        GroupBy::Key,
        GroupBy::Model,
        GroupBy::Backend,
    ];

    /// The CLI spelling: `tenant`, `project`, `consumer`, `key`, `model`, `backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Tenant => "tenant",
            GroupBy::Project => "project",
            GroupBy::Consumer => "consumer",
            GroupBy::Key => "key",
            GroupBy::Model => "model",
            GroupBy::Backend => "backend",
        }
    }

    /// The name of the group `r` belongs to.
    fn name_of(self, r: &Record) -> Cow<'_, str> {
        match self {
            GroupBy::Tenant => Cow::Borrowed(&r.tenant),
            GroupBy::Key => Cow::Borrowed(&r.key_id),
            GroupBy::Model => Cow::Borrowed(&r.model),
            GroupBy::Backend => Cow::Borrowed(&r.backend),
            GroupBy::Project if r.project == "-" => Cow::Borrowed("-"),
            GroupBy::Project => Cow::Owned(format!("{}/{}", r.tenant, r.project)),
            GroupBy::Consumer if r.consumer == "-" => Cow::Borrowed("-"),
            GroupBy::Consumer => Cow::Owned(format!("{}/{}/{}", r.tenant, r.project, r.consumer)),
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown group {s:?}: expected one of tenant, project, consumer, key, model, \
                     backend"
                )
            })
    }
}

impl Usage {
    fn add_record(&mut self, r: &Record) {
        self.requests += 1;
        self.errors += u64::from(r.is_error());
        self.prompt_tokens = self.prompt_tokens.saturating_add(r.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(r.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(r.total_tokens());
    }

    fn add(&mut self, o: &Usage) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.prompt_tokens = self.prompt_tokens.saturating_add(o.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(o.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(o.total_tokens);
    }
}

impl Report {
    /// Records how many unreadable lines the read met ([`crate::ReadResult::skipped`]), so the
    /// report can warn that it may be incomplete.
    pub fn with_skipped(mut self, skipped_lines: u64) -> Self {
        self.skipped_lines = skipped_lines;
        self
    }

    /// Pretty-printed JSON (the shape of [`Report`]'s fields).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode report: {e}\"}}"))
    }

    /// Aligned text tables for a terminal; see the crate README for an example.
    pub fn to_table(&self) -> String {
        table::render(self)
    }
}

/// Builds the report of `records` with `since_ms <= ts_ms < until_ms` (records outside are
/// ignored), with one Top-`top` table per entry of `by` (`top = 0`: all groups).
pub fn report(
    records: &[Record],
    by: &[GroupBy],
    top: usize,
    since_ms: i64,
    until_ms: i64,
) -> Report {
    let in_range: Vec<&Record> = records
        .iter()
        .filter(|r| (since_ms..until_ms).contains(&r.ts_ms))
        .collect();
    let mut totals = Usage::default();
    for r in &in_range {
        totals.add_record(r);
    }
    let tables = by
        .iter()
        .map(|&g| group_table(&in_range, g, top, totals.total_tokens))
        .collect();
    Report {
        since: format_ms(since_ms),
        until: format_ms(until_ms),
        since_ms,
        until_ms,
        skipped_lines: 0,
        totals,
        by: tables,
    }
}

fn group_table(records: &[&Record], by: GroupBy, top: usize, all_tokens: u64) -> GroupTable {
    let mut groups: HashMap<Cow<'_, str>, Usage> = HashMap::new();
    for r in records {
        groups.entry(by.name_of(r)).or_default().add_record(r);
    }
    let mut ranked: Vec<(Cow<'_, str>, Usage)> = groups.into_iter().collect();
    ranked.sort_by(|(an, a), (bn, b)| {
        b.total_tokens
            .cmp(&a.total_tokens)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| an.cmp(bn))
    });
    let count = ranked.len();
    let keep = if top == 0 { count } else { top.min(count) };
    let rest = ranked.split_off(keep);
    let row = |name: String, usage: Usage| Row {
        share_pct: share(usage.total_tokens, all_tokens),
        name,
        usage,
    };
    let other = (!rest.is_empty()).then(|| {
        let mut sum = Usage::default();
        for (_, u) in &rest {
            sum.add(u);
        }
        row("(other)".to_string(), sum)
    });
    GroupTable {
        by,
        groups: count,
        top: ranked
            .into_iter()
            .map(|(name, u)| row(name.into_owned(), u))
            .collect(),
        other,
        other_groups: rest.len(),
    }
}

/// `part / all` in percent, rounded to 0.01; 0 when `all` is 0.
fn share(part: u64, all: u64) -> f64 {
    if all == 0 {
        return 0.0;
    }
    // u64 → f64 loses precision only above 2^53 tokens, far beyond any real range.
    let pct = part as f64 * 100.0 / all as f64;
    (pct * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
