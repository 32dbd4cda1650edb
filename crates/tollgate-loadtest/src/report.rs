//! The result of one run: a JSON document with every number, and its Markdown table row.
//!
//! The JSON is the archive (results/*.json); [`table`] rebuilds a side-by-side Markdown table
//! from any number of them, so a report can be regenerated without re-running anything.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::prom::{BackendDelta, Imbalance};
use crate::scenario::Plan;
use crate::stats::Stats;

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `tollgate-loadtest <version>`.
    pub tool: String,
    /// Row label (contender name).
    pub label: String,
    /// Target URL.
    pub target: String,
    /// Model name sent.
    pub model: String,
    /// Unix time the run started (s).
    pub started_unix_s: u64,
    /// The validated scenario, overrides applied.
    pub plan: Plan,
    /// Client-side statistics.
    #[serde(flatten)]
    pub stats: Stats,
    /// Per-backend deltas, in `--backend-metrics` order.
    #[serde(default)]
    pub backends: Vec<BackendDelta>,
    /// Spread over the backends (when scraped).
    #[serde(default)]
    pub imbalance: Option<Imbalance>,
    /// Anything the reader should know (scrape failures, aborted requests).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Header of the side-by-side table.
pub const HEADER: &str = "| label | TTFT p50 | TTFT p90 | TTFT p99 | ITL p50 | ITL p99 | E2E p99 | out tok/s | req/s | hit % | imbal. CV | good % | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn errors(r: &Report) -> String {
    let total: u64 = r.stats.requests.errors.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = r
        .stats
        .requests
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

/// One Markdown table row (latencies in ms).
pub fn row(r: &Report) -> String {
    let s = &r.stats;
    let hit = s
        .prefix_hit
        .map_or_else(|| "–".to_string(), |h| format!("{:.1}", h * 100.0));
    let cv = r
        .imbalance
        .as_ref()
        .map_or_else(|| "–".to_string(), |i| format!("{:.2}", i.requests_cv));
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {} | {} | {:.0} | {} |",
        r.label,
        ms(s.ttft_ms.p50),
        ms(s.ttft_ms.p90),
        ms(s.ttft_ms.p99),
        ms(s.itl_ms.p50),
        ms(s.itl_ms.p99),
        ms(s.e2e_ms.p99),
        s.output_tokens_per_s,
        s.requests_per_s,
        hit,
        cv,
        s.goodput.attainment * 100.0,
        errors(r),
    )
}

/// A side-by-side table of several runs (latencies in ms).
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    for r in reports {
        let _ = writeln!(out, "{}", row(r));
    }
    out
}

/// Per-backend shares of one run, as a small Markdown table.
pub fn backend_table(r: &Report) -> String {
    let mut out = String::from(
        "| backend | requests | req share | prompt tok | gen tok | prefix hit % |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for b in &r.backends {
        let hit = b
            .prefix_hit
            .map_or_else(|| "–".to_string(), |h| format!("{:.1}", h * 100.0));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {:.0} | {:.0} | {} |",
            b.url, b.requests, b.request_share, b.prompt_tokens, b.generation_tokens, hit
        );
    }
    out
}
