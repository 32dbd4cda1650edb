//! Helpers shared by the integration tests: record factory and polling.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use tollgate_ledger::Record;

/// A record with a given id and time, other fields fixed.
pub fn record(id: &str, ts_ms: i64) -> Record {
    Record {
        ts_ms,
        request_id: id.to_string(),
        tenant: "acme".into(),
        project: "search".into(),
        consumer: "web".into(),
        key_id: "k1".into(),
        model: "gpt-x".into(),
        backend: "b1".into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        reserved_tokens: 100,
        status: 200,
        stream: false,
        ttft_ms: None,
        duration_ms: 42.0,
        error: None,
        rule_hits: Vec::new(),
    }
}

/// Polls `cond` every millisecond until it holds; false after `timeout`.
#[allow(clippy::disallowed_methods)] // tests may sleep
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}
