//! Shared builders for the integration tests: a rule with sensible defaults and a few subjects.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tollgate_quota::{Dim, Filter, Kind, LimitRule, Overrun, Rules, Subject};

pub fn rule(name: &str, kind: Kind, limit: u64, window: Duration) -> LimitRule {
    LimitRule {
        name: name.to_string(),
        kind,
        per: vec![Dim::Key],
        filter: Filter::default(),
        limit,
        window,
        tz: jiff::tz::TimeZone::UTC,
        schedule: Vec::new(),
        stream_overrun: Overrun::Allow,
        shared: false,
    }
}

pub fn rules(r: Vec<LimitRule>) -> Arc<Rules> {
    Arc::new(Rules::new(r))
}

pub fn subj<'a>(key: &'a str, tenant: &'a str, model: &'a str) -> Subject<'a> {
    Subject {
        consumer: "c",
        key,
        tenant,
        project: "p",
        model,
    }
}

/// 2026-01-05 00:00:00 UTC, a Monday.
pub const T0: i64 = 1_767_571_200_000;

pub const MIN: Duration = Duration::from_secs(60);
