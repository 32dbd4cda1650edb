//! Backend `/metrics` scraping: how the requests and tokens of a run spread over the backends,
//! and how balanced their queues were while it ran.
//!
//! Each backend is scraped before and after the run; counters are compared as deltas (the fleet
//! may have served an earlier run). Series are summed over labels. Names are tried in order —
//! SGLang, vLLM, MindIE (routing.md §1) — so one run may mix personalities.
//!
//! Per-backend prefix hit, by what the server exposes:
//! - vLLM: Δ`vllm:prefix_cache_hits_total` / Δ`vllm:prefix_cache_queries_total` (exact).
//! - SGLang with `sglang:cached_tokens_total`: Δcached / Δ`sglang:prompt_tokens_total`.
//! - SGLang without it (the simulated fleet): `sglang:cache_hit_rate` is a cumulative ratio, so
//!   hits ≈ rate × prompt tokens at each scrape and Δhits follows (approximate: the server counts
//!   queries at admission and prompt tokens at first token).
//! - MindIE: Δ`npu_radix_match_hit_num` / Δ`all_radix_match_num`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metric name → value summed over all label sets.
pub type Sample = BTreeMap<String, f64>;

/// Finished requests, by personality.
const REQUESTS: &[&str] = &[
    "sglang:num_requests_total",
    "vllm:request_success_total",
    "request_success_total",
];
/// Prompt tokens.
const PROMPT: &[&str] = &[
    "sglang:prompt_tokens_total",
    "vllm:prompt_tokens_total",
    "prompt_tokens_total",
];
/// Generated tokens.
const GENERATION: &[&str] = &[
    "sglang:generation_tokens_total",
    "vllm:generation_tokens_total",
    "generation_tokens_total",
];
/// Running requests (gauge).
const RUNNING: &[&str] = &[
    "sglang:num_running_reqs",
    "vllm:num_requests_running",
    "num_requests_running",
];
/// Waiting requests (gauge).
const WAITING: &[&str] = &[
    "sglang:num_queue_reqs",
    "vllm:num_requests_waiting",
    "num_requests_waiting",
];
/// KV usage 0–1 (gauge).
const KV: &[&str] = &[
    "sglang:token_usage",
    "vllm:kv_cache_usage_perc",
    "npu_cache_usage_perc",
];
/// Preemptions / retractions (counter).
const PREEMPT: &[&str] = &["vllm:num_preemptions_total", "num_preemptions_total"];

/// Parses Prometheus text exposition, summing each metric over its label sets.
pub fn parse(text: &str) -> Sample {
    let mut out = Sample::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) if line.as_bytes()[i] == b'{' => {
                let close = match line[i..].rfind('}') {
                    Some(c) => i + c,
                    None => continue,
                };
                (&line[..i], &line[close + 1..])
            }
            Some(i) => (&line[..i], &line[i..]),
            None => continue,
        };
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let v = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        *out.entry(name.to_string()).or_default() += v;
    }
    out
}

fn first(s: &Sample, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| s.get(*n).copied())
}

/// Hits and queries (tokens) as of one scrape, by the rules in the module docs.
fn hits_queries(s: &Sample) -> Option<(f64, f64, &'static str)> {
    if let (Some(h), Some(q)) = (
        s.get("vllm:prefix_cache_hits_total"),
        s.get("vllm:prefix_cache_queries_total"),
    ) {
        return Some((*h, *q, "vllm:prefix_cache_hits/queries"));
    }
    if let (Some(h), Some(p)) = (
        s.get("sglang:cached_tokens_total"),
        s.get("sglang:prompt_tokens_total"),
    ) {
        return Some((*h, *p, "sglang:cached_tokens/prompt_tokens"));
    }
    if let (Some(r), Some(p)) = (
        s.get("sglang:cache_hit_rate"),
        s.get("sglang:prompt_tokens_total"),
    ) {
        return Some((r * p, *p, "sglang:cache_hit_rate×prompt_tokens (approx.)"));
    }
    if let (Some(h), Some(q)) = (
        s.get("npu_radix_match_hit_num"),
        s.get("all_radix_match_num"),
    ) {
        return Some((*h, *q, "npu_radix_match_hit_num/all_radix_match_num"));
    }
    None
}

/// What one backend did during the run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackendDelta {
    /// The scraped URL.
    pub url: String,
    /// Finished requests.
    pub requests: f64,
    /// Prompt tokens.
    pub prompt_tokens: f64,
    /// Generated tokens.
    pub generation_tokens: f64,
    /// Prefix-cache hit ratio over the run, if the backend exposes it.
    pub prefix_hit: Option<f64>,
    /// Which metrics the hit ratio came from.
    pub prefix_hit_source: Option<String>,
    /// Preemptions (vLLM, MindIE).
    pub preemptions: Option<f64>,
    /// Share of all backends' requests (0–1).
    pub request_share: f64,
    /// Share of all backends' prompt tokens (0–1).
    pub prompt_share: f64,
    /// A scrape failed: the numbers are zeros.
    pub scrape_error: Option<String>,
}

/// Per-backend counter deltas between two scrapes of the same URL.
pub fn delta(url: &str, before: &Sample, after: &Sample) -> BackendDelta {
    let d = |names: &[&str]| match (first(before, names), first(after, names)) {
        (Some(b), Some(a)) => (a - b).max(0.0),
        (None, Some(a)) => a,
        _ => 0.0,
    };
    let (prefix_hit, prefix_hit_source) = match (hits_queries(before), hits_queries(after)) {
        (Some((hb, qb, _)), Some((ha, qa, src))) if qa - qb > 0.0 => (
            Some(((ha - hb) / (qa - qb)).clamp(0.0, 1.0)),
            Some(src.to_string()),
        ),
        (None, Some((ha, qa, src))) if qa > 0.0 => {
            (Some((ha / qa).clamp(0.0, 1.0)), Some(src.to_string()))
        }
        _ => (None, None),
    };
    BackendDelta {
        url: url.to_string(),
        requests: d(REQUESTS),
        prompt_tokens: d(PROMPT),
        generation_tokens: d(GENERATION),
        prefix_hit,
        prefix_hit_source,
        preemptions: first(after, PREEMPT).map(|_| d(PREEMPT)),
        ..BackendDelta::default()
    }
}

/// Coefficient of variation (population σ / mean); 0 for an empty or all-zero set.
pub fn cv(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    var.sqrt() / mean
}

/// How evenly the work spread.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Imbalance {
    /// CV of per-backend finished requests.
    pub requests_cv: f64,
    /// CV of per-backend prompt tokens.
    pub prompt_tokens_cv: f64,
    /// CV of per-backend generated tokens.
    pub generation_tokens_cv: f64,
    /// Mean over samples of the CV of (running + waiting) across backends.
    pub load_cv_mean: Option<f64>,
    /// Highest waiting-queue length any backend showed in a sample.
    pub peak_waiting: Option<f64>,
    /// Mean KV usage (0–1) over samples and backends.
    pub kv_usage_mean: Option<f64>,
    /// Load samples taken during the measurement window.
    pub load_samples: u64,
}

/// Fills shares in `ds` and computes the imbalance; `load` holds samples from [`load_point`].
pub fn imbalance(ds: &mut [BackendDelta], load: &[Vec<LoadPoint>]) -> Imbalance {
    let total_req: f64 = ds.iter().map(|d| d.requests).sum();
    let total_prompt: f64 = ds.iter().map(|d| d.prompt_tokens).sum();
    for d in ds.iter_mut() {
        d.request_share = if total_req > 0.0 {
            d.requests / total_req
        } else {
            0.0
        };
        d.prompt_share = if total_prompt > 0.0 {
            d.prompt_tokens / total_prompt
        } else {
            0.0
        };
    }
    let col = |f: fn(&BackendDelta) -> f64| cv(&ds.iter().map(f).collect::<Vec<_>>());
    let cvs: Vec<f64> = load
        .iter()
        .map(|s| cv(&s.iter().map(|p| p.running + p.waiting).collect::<Vec<_>>()))
        .collect();
    let kvs: Vec<f64> = load.iter().flatten().filter_map(|p| p.kv).collect();
    Imbalance {
        requests_cv: col(|d| d.requests),
        prompt_tokens_cv: col(|d| d.prompt_tokens),
        generation_tokens_cv: col(|d| d.generation_tokens),
        load_cv_mean: (!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64),
        peak_waiting: load.iter().flatten().map(|p| p.waiting).reduce(f64::max),
        kv_usage_mean: (!kvs.is_empty()).then(|| kvs.iter().sum::<f64>() / kvs.len() as f64),
        load_samples: load.len() as u64,
    }
}

/// One backend's load gauges at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadPoint {
    /// Running requests.
    pub running: f64,
    /// Waiting requests.
    pub waiting: f64,
    /// KV usage (0–1).
    pub kv: Option<f64>,
}

/// The load gauges of one scrape.
pub fn load_point(s: &Sample) -> LoadPoint {
    LoadPoint {
        running: first(s, RUNNING).unwrap_or(0.0),
        waiting: first(s, WAITING).unwrap_or(0.0),
        kv: first(s, KV),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGLANG_BEFORE: &str = "# HELP sglang:num_requests_total x\n# TYPE sglang:num_requests_total counter\nsglang:num_requests_total{model_name=\"m\"} 10\nsglang:prompt_tokens_total{model_name=\"m\"} 1000\nsglang:generation_tokens_total{model_name=\"m\"} 100\nsglang:cache_hit_rate{model_name=\"m\"} 0.5\nsglang:num_running_reqs{model_name=\"m\"} 3\nsglang:num_queue_reqs{model_name=\"m\"} 1\nsglang:token_usage{model_name=\"m\"} 0.25\n";
    const SGLANG_AFTER: &str = "sglang:num_requests_total{model_name=\"m\"} 30\nsglang:prompt_tokens_total{model_name=\"m\"} 3000\nsglang:generation_tokens_total{model_name=\"m\"} 300\nsglang:cache_hit_rate{model_name=\"m\"} 0.7\n";

    #[test]
    fn parse_sums_over_labels_and_skips_comments() {
        let s = parse(
            "# TYPE a counter\na_total{x=\"1\"} 2\na_total{x=\"2,}\"} 3.5\nb 7 1700000000\nc{} NaN\nd +Inf\n",
        );
        assert_eq!(s["a_total"], 5.5);
        assert_eq!(s["b"], 7.0);
        assert!(s["c"].is_nan());
        assert_eq!(s["d"], f64::INFINITY);
    }

    #[test]
    fn sglang_deltas_and_approximate_hit() {
        let d = delta("u", &parse(SGLANG_BEFORE), &parse(SGLANG_AFTER));
        assert_eq!(d.requests, 20.0);
        assert_eq!(d.prompt_tokens, 2000.0);
        assert_eq!(d.generation_tokens, 200.0);
        // hits: 0.7×3000 − 0.5×1000 = 1600 over 2000 queries.
        assert_eq!(d.prefix_hit, Some(0.8));
        assert!(d.prefix_hit_source.unwrap().contains("approx"));
        let lp = load_point(&parse(SGLANG_BEFORE));
        assert_eq!((lp.running, lp.waiting, lp.kv), (3.0, 1.0, Some(0.25)));
    }

    #[test]
    fn vllm_hit_is_exact_from_counters() {
        let b = parse(
            "vllm:prefix_cache_hits_total 10\nvllm:prefix_cache_queries_total 100\nvllm:request_success_total{finished_reason=\"length\"} 4\nvllm:request_success_total{finished_reason=\"stop\"} 1\n",
        );
        let a = parse(
            "vllm:prefix_cache_hits_total 70\nvllm:prefix_cache_queries_total 200\nvllm:request_success_total{finished_reason=\"length\"} 9\nvllm:request_success_total{finished_reason=\"stop\"} 1\nvllm:num_preemptions_total 2\n",
        );
        let d = delta("u", &b, &a);
        assert_eq!(d.prefix_hit, Some(0.6));
        assert_eq!(d.requests, 5.0);
        assert_eq!(d.preemptions, Some(2.0));
    }

    #[test]
    fn imbalance_cv_and_shares() {
        let mut ds = vec![
            BackendDelta {
                requests: 30.0,
                prompt_tokens: 300.0,
                ..BackendDelta::default()
            },
            BackendDelta {
                requests: 10.0,
                prompt_tokens: 100.0,
                ..BackendDelta::default()
            },
        ];
        let load = vec![vec![
            LoadPoint {
                running: 2.0,
                waiting: 0.0,
                kv: Some(0.5),
            },
            LoadPoint {
                running: 2.0,
                waiting: 4.0,
                kv: Some(0.1),
            },
        ]];
        let im = imbalance(&mut ds, &load);
        assert_eq!(im.requests_cv, 0.5);
        assert_eq!(ds[0].request_share, 0.75);
        assert_eq!(im.load_cv_mean, Some(0.5));
        assert_eq!(im.peak_waiting, Some(4.0));
        assert_eq!(im.kv_usage_mean, Some(0.3));
        assert_eq!(cv(&[]), 0.0);
        assert_eq!(cv(&[0.0, 0.0]), 0.0);
    }
}
