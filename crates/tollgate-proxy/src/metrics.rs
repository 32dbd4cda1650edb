//! Metrics without locks on the data path. Each worker records into its own `WorkerMetrics`
//! (plain fields, hdrhistogram) and publishes a copy every `metrics.publish_interval_ms` into its
//! own `ArcSwap` slot. A scrape on the admin port merges the slots. A scrape therefore sees each
//! worker as of its last publish (default ≤ 250 ms old) — the price of never sharing a cache line
//! with the request path.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;

/// Latency histogram bucket bounds exported to Prometheus, in seconds. Chosen to resolve both
/// gateway overhead (sub-millisecond) and model latencies (seconds to minutes).
const BUCKETS_S: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// Key of the requests counter.
pub type ReqKey = (Arc<str>, Arc<str>, u16);

/// One worker's metrics.
#[derive(Clone)]
pub struct WorkerMetrics {
    /// Which I/O driver this worker runs (`io_uring` or `epoll`).
    pub driver: &'static str,
    /// Requests by (model, backend, status).
    pub requests: HashMap<ReqKey, u64>,
    /// Whole-request duration in microseconds.
    pub duration_us: Histogram<u64>,
    /// Time to first response body byte in microseconds (streams and non-streams).
    pub ttft_us: Histogram<u64>,
    /// Upstream errors by (backend, code).
    pub upstream_errors: HashMap<(Arc<str>, &'static str), u64>,
    /// Retries to a different backend.
    pub retries: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Connections open now.
    pub active_connections: i64,
    /// SSE streams being relayed now.
    pub active_streams: i64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Tokens by (model, "prompt"|"completion") as reported by backends.
    pub tokens: HashMap<(Arc<str>, &'static str), u64>,
    /// Client streams ended with an SSE error event after the first byte.
    pub stream_errors: u64,
    /// Upstream requests aborted because the client went away.
    pub client_aborts: u64,
    /// Content-scanning hits by (rule id, action, direction).
    pub scan_hits: HashMap<ScanKey, u64>,
    /// Backend picks by (pool, backend, policy).
    pub picks: HashMap<PickKey, u64>,
    /// Picks that went to a backend credited with the prompt's prefix.
    pub prefix_matched: u64,
    /// Picks served by a lower-priority tier.
    pub tier_fallbacks: u64,
    /// Picks made with no healthy backend left (health ignored).
    pub fail_open: u64,
    /// Ejections this worker triggered.
    pub ejections: u64,
    /// Retries refused by the retry budget.
    pub retry_budget_exhausted: u64,
    /// Tokens used by (tenant, model): (prompt, completion). Settled usage, `-` = no tenant.
    pub tenant_tokens: HashMap<TenantModel, (u64, u64)>,
    /// Requests refused by auth, IP or model rules, by reason.
    pub denied: HashMap<&'static str, u64>,
    /// Requests refused by a limit, by (limit name, kind).
    pub throttled: HashMap<(Arc<str>, &'static str), u64>,
    /// Tokens reserved at admission (settled requests).
    pub quota_reserved: u64,
    /// Tokens actually used by those requests.
    pub quota_settled: u64,
    /// Tokens used beyond the reservation.
    pub quota_overrun: u64,
    /// Streams cut by a token limit.
    pub stream_cuts: u64,
}

/// Key of the tenant token counter: (tenant, model).
pub type TenantModel = (Arc<str>, Arc<str>);

/// Key of the picks counter: (pool, backend, policy).
pub type PickKey = (Arc<str>, Arc<str>, &'static str);

/// Key of the scan-hits counter: (rule id, action, direction).
pub type ScanKey = (&'static str, &'static str, &'static str);

fn hist() -> Histogram<u64> {
    // 1 µs .. 1 hour, 2 significant digits: ~1 % error, a few KiB per histogram.
    Histogram::new_with_bounds(1, 3_600_000_000, 2)
        .unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable_hist()))
}

#[allow(clippy::panic)]
fn unreachable_hist() -> Histogram<u64> {
    // hdrhistogram only fails on invalid bounds/precision, which are constants above.
    panic!("hdrhistogram constants are valid")
}

impl WorkerMetrics {
    /// Fresh metrics for a worker.
    pub fn new(driver: &'static str) -> WorkerMetrics {
        WorkerMetrics {
            driver,
            requests: HashMap::new(),
            duration_us: hist(),
            ttft_us: hist(),
            upstream_errors: HashMap::new(),
            retries: 0,
            bytes_in: 0,
            bytes_out: 0,
            active_connections: 0,
            active_streams: 0,
            connections_total: 0,
            tokens: HashMap::new(),
            stream_errors: 0,
            client_aborts: 0,
            scan_hits: HashMap::new(),
            picks: HashMap::new(),
            prefix_matched: 0,
            tier_fallbacks: 0,
            fail_open: 0,
            ejections: 0,
            retry_budget_exhausted: 0,
            tenant_tokens: HashMap::new(),
            denied: HashMap::new(),
            throttled: HashMap::new(),
            quota_reserved: 0,
            quota_settled: 0,
            quota_overrun: 0,
            stream_cuts: 0,
        }
    }
}

/// Metrics state shared between workers (their publish slots) and the admin scrape.
pub struct SharedMetrics {
    /// One slot per worker.
    pub slots: Vec<ArcSwap<WorkerMetrics>>,
    /// Successful reloads.
    pub reload_ok: AtomicU64,
    /// Failed reloads.
    pub reload_err: AtomicU64,
    /// Current config generation.
    pub generation: AtomicU64,
}

impl SharedMetrics {
    /// Slots for `workers` workers.
    pub fn new(drivers: &[&'static str]) -> SharedMetrics {
        SharedMetrics {
            slots: drivers
                .iter()
                .map(|d| ArcSwap::from_pointee(WorkerMetrics::new(d)))
                .collect(),
            reload_ok: AtomicU64::new(0),
            reload_err: AtomicU64::new(0),
            generation: AtomicU64::new(1),
        }
    }

    /// Render everything in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let snaps: Vec<Arc<WorkerMetrics>> = self.slots.iter().map(|s| s.load_full()).collect();
        let mut out = String::with_capacity(8192);
        let mut requests: HashMap<&ReqKey, u64> = HashMap::new();
        let mut errors: HashMap<&(Arc<str>, &'static str), u64> = HashMap::new();
        let mut tokens: HashMap<&(Arc<str>, &'static str), u64> = HashMap::new();
        let mut scan: HashMap<&ScanKey, u64> = HashMap::new();
        let mut picks: HashMap<&PickKey, u64> = HashMap::new();
        let (mut pmatch, mut tfall, mut fopen, mut ejections, mut rbx) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut dur = hist();
        let mut ttft = hist();
        let (mut retries, mut bin, mut bout, mut ac, mut astr, mut ct, mut serr, mut aborts) =
            (0u64, 0u64, 0u64, 0i64, 0i64, 0u64, 0u64, 0u64);
        for s in &snaps {
            for (k, v) in &s.requests {
                *requests.entry(k).or_default() += v;
            }
            for (k, v) in &s.upstream_errors {
                *errors.entry(k).or_default() += v;
            }
            for (k, v) in &s.scan_hits {
                *scan.entry(k).or_default() += v;
            }
            for (k, v) in &s.tokens {
                *tokens.entry(k).or_default() += v;
            }
            for (k, v) in &s.picks {
                *picks.entry(k).or_default() += v;
            }
            pmatch += s.prefix_matched;
            tfall += s.tier_fallbacks;
            fopen += s.fail_open;
            ejections += s.ejections;
            rbx += s.retry_budget_exhausted;
            let _ = dur.add(&s.duration_us);
            let _ = ttft.add(&s.ttft_us);
            retries += s.retries;
            bin += s.bytes_in;
            bout += s.bytes_out;
            ac += s.active_connections;
            astr += s.active_streams;
            ct += s.connections_total;
            serr += s.stream_errors;
            aborts += s.client_aborts;
        }
        let _ = writeln!(
            out,
            "# HELP tollgate_requests_total Requests answered, by model, backend and status."
        );
        let _ = writeln!(out, "# TYPE tollgate_requests_total counter");
        let mut rk: Vec<_> = requests.into_iter().collect();
        rk.sort_by(|a, b| a.0.cmp(b.0));
        for ((m, b, st), v) in rk {
            let _ = writeln!(
                out,
                "tollgate_requests_total{{model=\"{}\",backend=\"{}\",status=\"{st}\"}} {v}",
                esc(m),
                esc(b)
            );
        }
        histogram(
            &mut out,
            "gen_ai_server_request_duration_seconds",
            "Time from request head to last response byte.",
            &dur,
        );
        histogram(
            &mut out,
            "gen_ai_server_time_to_first_token_seconds",
            "Time from request head to the first response body byte sent to the client.",
            &ttft,
        );
        let _ = writeln!(
            out,
            "# HELP tollgate_upstream_errors_total Upstream failures by backend and error code."
        );
        let _ = writeln!(out, "# TYPE tollgate_upstream_errors_total counter");
        let mut ek: Vec<_> = errors.into_iter().collect();
        ek.sort_by(|a, b| a.0.cmp(b.0));
        for ((b, code), v) in ek {
            let _ = writeln!(
                out,
                "tollgate_upstream_errors_total{{backend=\"{}\",code=\"{code}\"}} {v}",
                esc(b)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tollgate_tokens_total Tokens reported by backends, by model and type."
        );
        let _ = writeln!(out, "# TYPE tollgate_tokens_total counter");
        let mut tk: Vec<_> = tokens.into_iter().collect();
        tk.sort_by(|a, b| a.0.cmp(b.0));
        for ((m, t), v) in tk {
            let _ = writeln!(
                out,
                "tollgate_tokens_total{{model=\"{}\",type=\"{t}\"}} {v}",
                esc(m)
            );
        }
        scalar(
            &mut out,
            "tollgate_upstream_retries_total",
            "counter",
            "Retries on a different backend before the first byte.",
            retries as f64,
        );
        scalar(
            &mut out,
            "tollgate_retry_budget_exhausted_total",
            "counter",
            "Retries refused because the retry budget was spent.",
            rbx as f64,
        );
        let _ = writeln!(
            out,
            "# HELP tollgate_route_picks_total Backend picks by pool, backend and policy."
        );
        let _ = writeln!(out, "# TYPE tollgate_route_picks_total counter");
        let mut pk: Vec<_> = picks.into_iter().collect();
        pk.sort_by(|a, b| a.0.cmp(b.0));
        for ((p, b, pol), v) in pk {
            let _ = writeln!(
                out,
                "tollgate_route_picks_total{{pool=\"{}\",backend=\"{}\",policy=\"{pol}\"}} {v}",
                esc(p),
                esc(b)
            );
        }
        scalar(
            &mut out,
            "tollgate_route_prefix_matched_total",
            "counter",
            "Picks that went to a backend credited with the prompt's prefix (prefix_affinity).",
            pmatch as f64,
        );
        scalar(
            &mut out,
            "tollgate_route_tier_fallbacks_total",
            "counter",
            "Picks served by a lower-priority tier because the higher tiers were unhealthy or saturated.",
            tfall as f64,
        );
        scalar(
            &mut out,
            "tollgate_route_fail_open_total",
            "counter",
            "Picks made with no healthy backend left in the pool (health ignored).",
            fopen as f64,
        );
        scalar(
            &mut out,
            "tollgate_backend_ejections_total",
            "counter",
            "Passive-health ejections (consecutive failures).",
            ejections as f64,
        );
        scalar(
            &mut out,
            "tollgate_bytes_received_total",
            "counter",
            "Bytes read from clients.",
            bin as f64,
        );
        scalar(
            &mut out,
            "tollgate_bytes_sent_total",
            "counter",
            "Bytes written to clients.",
            bout as f64,
        );
        scalar(
            &mut out,
            "tollgate_connections_active",
            "gauge",
            "Client connections open.",
            ac as f64,
        );
        scalar(
            &mut out,
            "tollgate_streams_active",
            "gauge",
            "SSE streams being relayed.",
            astr as f64,
        );
        scalar(
            &mut out,
            "tollgate_connections_total",
            "counter",
            "Client connections accepted.",
            ct as f64,
        );
        let _ = writeln!(
            out,
            "# HELP tollgate_scan_hits_total Content-scanning rule hits, by rule, action and direction."
        );
        let _ = writeln!(out, "# TYPE tollgate_scan_hits_total counter");
        let mut sk: Vec<_> = scan.into_iter().collect();
        sk.sort();
        for ((rule, action, dir), v) in sk {
            let _ = writeln!(
                out,
                "tollgate_scan_hits_total{{rule=\"{}\",action=\"{action}\",direction=\"{dir}\"}} {v}",
                esc(rule)
            );
        }
        scalar(
            &mut out,
            "tollgate_stream_errors_total",
            "counter",
            "Streams ended with an SSE error event after the first byte.",
            serr as f64,
        );
        scalar(
            &mut out,
            "tollgate_client_aborts_total",
            "counter",
            "Upstream requests closed because the client went away.",
            aborts as f64,
        );
        let _ = writeln!(
            out,
            "# HELP tollgate_config_reload_total Config reloads by result."
        );
        let _ = writeln!(out, "# TYPE tollgate_config_reload_total counter");
        let _ = writeln!(
            out,
            "tollgate_config_reload_total{{result=\"ok\"}} {}",
            self.reload_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "tollgate_config_reload_total{{result=\"error\"}} {}",
            self.reload_err.load(Ordering::Relaxed)
        );
        scalar(
            &mut out,
            "tollgate_config_generation",
            "gauge",
            "Generation of the config snapshot in force.",
            self.generation.load(Ordering::Relaxed) as f64,
        );
        let _ = writeln!(
            out,
            "# HELP tollgate_worker_info Data-plane workers and their I/O driver."
        );
        let _ = writeln!(out, "# TYPE tollgate_worker_info gauge");
        for (i, s) in snaps.iter().enumerate() {
            let _ = writeln!(
                out,
                "tollgate_worker_info{{worker=\"{i}\",driver=\"{}\"}} 1",
                s.driver
            );
        }
        render_governance(&mut out, &snaps);
        out
    }
}

/// Per-worker governance counters: tokens by tenant and model, denials, throttles, drift.
fn render_governance(out: &mut String, snaps: &[Arc<WorkerMetrics>]) {
    let mut tt: HashMap<&TenantModel, (u64, u64)> = HashMap::new();
    let mut denied: HashMap<&'static str, u64> = HashMap::new();
    let mut thr: HashMap<&(Arc<str>, &'static str), u64> = HashMap::new();
    let (mut res, mut set, mut over, mut cuts) = (0u64, 0u64, 0u64, 0u64);
    for s in snaps {
        for (k, v) in &s.tenant_tokens {
            let e = tt.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        for (k, v) in &s.denied {
            *denied.entry(k).or_default() += v;
        }
        for (k, v) in &s.throttled {
            *thr.entry(k).or_default() += v;
        }
        res += s.quota_reserved;
        set += s.quota_settled;
        over += s.quota_overrun;
        cuts += s.stream_cuts;
    }
    let _ = writeln!(
        out,
        "# HELP gen_ai_client_token_usage_total Tokens used, by tenant, model and token type (OpenTelemetry gen_ai.client.token.usage as a counter; settled usage).\n# TYPE gen_ai_client_token_usage_total counter"
    );
    let mut rows: Vec<_> = tt.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for ((tenant, model), (p, c)) in rows {
        for (ty, v) in [("input", p), ("output", c)] {
            let _ = writeln!(
                out,
                "gen_ai_client_token_usage_total{{tenant=\"{}\",gen_ai_request_model=\"{}\",gen_ai_token_type=\"{ty}\"}} {v}",
                esc(tenant),
                esc(model)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP tollgate_requests_denied_total Requests refused by IP rules, API keys or model permissions, by reason.\n# TYPE tollgate_requests_denied_total counter"
    );
    let mut d: Vec<_> = denied.into_iter().collect();
    d.sort();
    for (r, v) in d {
        let _ = writeln!(out, "tollgate_requests_denied_total{{reason=\"{r}\"}} {v}");
    }
    let _ = writeln!(
        out,
        "# HELP tollgate_requests_throttled_total Requests refused by a limit (429), by limit and kind.\n# TYPE tollgate_requests_throttled_total counter"
    );
    let mut t: Vec<_> = thr.into_iter().collect();
    t.sort();
    for ((rule, kind), v) in t {
        let _ = writeln!(
            out,
            "tollgate_requests_throttled_total{{limit=\"{}\",reason=\"{kind}\"}} {v}",
            esc(rule)
        );
    }
    scalar(
        out,
        "tollgate_quota_reserved_tokens_total",
        "counter",
        "Tokens reserved at admission by requests that have since settled.",
        res as f64,
    );
    scalar(
        out,
        "tollgate_quota_settled_tokens_total",
        "counter",
        "Tokens those requests actually used (reserved - settled = refunded; drift).",
        set as f64,
    );
    scalar(
        out,
        "tollgate_quota_overrun_tokens_total",
        "counter",
        "Tokens used beyond the reservation (backend ignored max_tokens, or an allowed stream overrun).",
        over as f64,
    );
    scalar(
        out,
        "tollgate_quota_stream_cuts_total",
        "counter",
        "Streams ended with an error event because a token limit with stream_overrun = cut ran out.",
        cuts as f64,
    );
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn scalar(out: &mut String, name: &str, kind: &str, help: &str, v: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
    );
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram<u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for b in BUCKETS_S {
        let us = (b * 1e6) as u64;
        let c = if h.is_empty() {
            0
        } else {
            h.count_between(0, us)
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
    let sum = h.mean() * h.len() as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {}", h.len());
}

/// Process-wide limit state: outstanding reservations, concurrency in use, and in cluster mode
/// the Redis link (up, errors, fallback admissions, leases).
pub fn render_quota(out: &mut String, s: &tollgate_quota::QuotaStats) {
    scalar(
        out,
        "tollgate_quota_outstanding_tokens",
        "gauge",
        "Tokens reserved by requests still running (summed over the token limits that apply).",
        s.reserved_tokens as f64,
    );
    scalar(
        out,
        "tollgate_quota_concurrency_in_use",
        "gauge",
        "Concurrency-limit slots held by running requests.",
        s.concurrency_in_use as f64,
    );
    scalar(
        out,
        "tollgate_quota_counters",
        "gauge",
        "Limit counters in memory (one per limit × subject; idle ones are collected).",
        s.cells as f64,
    );
    if !s.cluster {
        return;
    }
    scalar(
        out,
        "tollgate_quota_redis_up",
        "gauge",
        "1 while the shared quota store (Redis) answers; 0 = serving on the local fallback share.",
        if s.up { 1.0 } else { 0.0 },
    );
    scalar(
        out,
        "tollgate_quota_redis_errors_total",
        "counter",
        "Failed Redis round trips (connect, I/O, timeout, error replies).",
        s.redis_errors as f64,
    );
    scalar(
        out,
        "tollgate_quota_fallback_admissions_total",
        "counter",
        "Requests admitted from the local fallback share while Redis was down.",
        s.fallback_admissions as f64,
    );
    scalar(
        out,
        "tollgate_quota_leases_taken_total",
        "counter",
        "Budget leases taken from Redis.",
        s.leases_taken as f64,
    );
    scalar(
        out,
        "tollgate_quota_leases_returned_total",
        "counter",
        "Unused lease returns to Redis.",
        s.leases_returned as f64,
    );
}

/// The usage ledger's writer: records appended, committed, dropped; commits; errors; backlog.
pub fn render_ledger(out: &mut String, s: &tollgate_ledger::LedgerStats) {
    let _ = writeln!(
        out,
        "# HELP tollgate_ledger_records_total Usage-ledger records by state (appended by workers, committed to disk, dropped).\n# TYPE tollgate_ledger_records_total counter"
    );
    for (st, v) in [
        ("appended", s.appended),
        ("committed", s.committed),
        ("dropped", s.dropped),
    ] {
        let _ = writeln!(out, "tollgate_ledger_records_total{{state=\"{st}\"}} {v}");
    }
    scalar(
        out,
        "tollgate_ledger_commits_total",
        "counter",
        "Group commits (one write, plus fdatasync when ledger.fsync).",
        s.commits as f64,
    );
    scalar(
        out,
        "tollgate_ledger_write_errors_total",
        "counter",
        "Failed ledger writes (records stay pending and are retried).",
        s.write_errors as f64,
    );
    scalar(
        out,
        "tollgate_ledger_pending_records",
        "gauge",
        "Records appended but not yet committed.",
        s.pending as f64,
    );
    scalar(
        out,
        "tollgate_ledger_last_commit_seconds",
        "gauge",
        "Duration of the last commit.",
        s.last_commit_us as f64 / 1e6,
    );
}
