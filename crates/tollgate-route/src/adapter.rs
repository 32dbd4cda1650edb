//! Backend-kind adapters: which endpoint of a vLLM, SGLang or MindIE server says what about its
//! load, and how to read it into one normalised [`Scraped`] (routing.md §0, §1.4).
//!
//! Pure and runtime-free: the proxy's control thread fetches the bodies (`tollgate_proxy::scrape`)
//! and hands them here. The per-kind facts live in three tables read top to bottom:
//!
//! * [`health_probe`]: the active health endpoint, or none (OpenAI-compatible clouds get passive
//!   health only: we never spend a customer's quota on probes).
//! * [`load_sources`]: the endpoints to scrape, in order of preference. [`can_fill`] says whether
//!   the next one could still add a signal, so a fallback is fetched only when needed.
//! * [`parse`]: one parser per [`Source`]; Prometheus names are keyed by kind, because MindIE's
//!   unprefixed names are vLLM's without `vllm:` and must never be read as each other.
//!
//! # Aggregation across data-parallel ranks
//!
//! A DP server reports each series once per rank (vLLM label `engine`, SGLang `dp_rank` or one
//! `/v1/loads` entry per rank). Counts (queue, running, capacity, counters) are **summed over
//! ranks**; series repeated *within* a rank (SGLang TP/PP replicas with
//! `--enable-metrics-for-all-schedulers`) count once (their max). KV usage takes the **max** over
//! everything: the pressure signal errs towards full, because a rank that runs out of KV blocks
//! preempts whatever its siblings have free, and the server's internal DP balancer is not perfect.
//! Gauge hit rates take the mean over ranks. NaN and infinite samples carry no load information
//! and are ignored.
//!
//! # Errors
//!
//! Garbage in is an `Err` naming the line or field, never a panic. A well-formed body that lacks a
//! signal leaves it `None` (unknown), never zero.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::load::Scraped;

mod prometheus;

/// Largest body [`parse`] accepts, and what the scraper reads at most. A vLLM `/metrics` with
/// histograms is ~100 KiB per engine; 4 MiB leaves room for DP-16 and LoRA label sets. Raising it
/// raises the memory and CPU one misbehaving backend can cost the control thread per scrape.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Tokens per MindIE KV block: `/v1/status` counts blocks, and `cacheBlockSize` defaults to 128
/// (routing.md §1.3). A deployment that changes it reports a capacity off by that ratio.
pub const MINDIE_BLOCK_TOKENS: f64 = 128.0;

/// Kind of inference backend; decides request rewriting, quirks and where its load is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// vLLM OpenAI server.
    Vllm,
    /// SGLang server.
    Sglang,
    /// Huawei MindIE (ignores `stream_options`; usage on the finish chunk).
    Mindie,
    /// OpenAI-compatible cloud API (TLS, gateway-injected API key).
    Openai,
}

impl BackendKind {
    /// Lowercase name, as in config.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Vllm => "vllm",
            BackendKind::Sglang => "sglang",
            BackendKind::Mindie => "mindie",
            BackendKind::Openai => "openai",
        }
    }

    /// Whether the backend honours `stream_options.include_usage`.
    pub fn honours_stream_options(self) -> bool {
        match self {
            BackendKind::Vllm | BackendKind::Sglang | BackendKind::Openai => true,
            BackendKind::Mindie => false,
        }
    }
}

/// Which of a backend's listeners serves an endpoint. Only MindIE splits them (business,
/// management on 1026, metrics on 1027); every other kind serves everything on [`Listener::Api`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// The API (MindIE: business) listener.
    Api,
    /// MindIE's management listener: health, `/v1/status`.
    Management,
    /// MindIE's metrics listener: `/metrics`.
    Metrics,
}

impl Listener {
    /// Lowercase name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::Management => "management",
            Listener::Metrics => "metrics",
        }
    }
}

/// A load endpoint's body format, naming the parser [`parse`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Prometheus text exposition (`/metrics`); metric names depend on the kind.
    Prometheus,
    /// SGLang `GET /v1/loads`: one entry per DP rank.
    SglangLoads,
    /// MindIE `GET /v1/status` (management listener).
    MindieStatus,
    /// vLLM `GET /load` → `{"server_load": N}` (needs `--enable-server-load-tracking`, so never in
    /// a default set).
    VllmLoad,
}

impl Source {
    /// Lowercase name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Prometheus => "prometheus",
            Source::SglangLoads => "sglang_loads",
            Source::MindieStatus => "mindie_status",
            Source::VllmLoad => "vllm_load",
        }
    }
}

/// The active health probe of a kind: a `GET` that answers 2xx when the server can take work.
///
/// vLLM `/health` (503 once the engine is dead); SGLang `/health`; MindIE `/v2/health/ready` on
/// the management listener (its `/health` is marked for deprecation); OpenAI clouds: none.
pub fn health_probe(kind: BackendKind) -> Option<(Listener, &'static str)> {
    match kind {
        BackendKind::Vllm | BackendKind::Sglang => Some((Listener::Api, "/health")),
        BackendKind::Mindie => Some((Listener::Management, "/v2/health/ready")),
        BackendKind::Openai => None,
    }
}

/// The load endpoints of a kind, in order of preference. The scraper fetches each one that
/// [`can_fill`] a still-missing signal and keeps the first value it gets for each.
///
/// * vLLM: `/metrics` has every signal (`/load` needs a server flag and says less).
/// * SGLang: `/v1/loads` first: it needs no flag and has every signal per DP rank (`include=core`
///   skips the memory, speculative, LoRA and disaggregation sections we do not read); `/metrics`
///   (needs `--enable-metrics`) only when `/v1/loads` failed or lacked something, e.g. an
///   older server without the endpoint.
/// * MindIE: `/v1/status` (management) for queue, running and KV blocks, which is always on;
///   then `/metrics` (metrics listener, needs `MIES_SERVICE_MONITOR_MODE=1`) for the prefix-cache
///   counters and preemptions that `/v1/status` lacks.
/// * OpenAI clouds: nothing to scrape; latency and 429s are all we learn.
pub fn load_sources(kind: BackendKind) -> &'static [(Listener, &'static str, Source)] {
    match kind {
        BackendKind::Vllm => &[(Listener::Api, "/metrics", Source::Prometheus)],
        BackendKind::Sglang => &[
            (Listener::Api, "/v1/loads?include=core", Source::SglangLoads),
            (Listener::Api, "/metrics", Source::Prometheus),
        ],
        BackendKind::Mindie => &[
            (Listener::Management, "/v1/status", Source::MindieStatus),
            (Listener::Metrics, "/metrics", Source::Prometheus),
        ],
        BackendKind::Openai => &[],
    }
}

/// A [`Scraped`] field, for the "which source provides what" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Queue,
    Running,
    Kv,
    Capacity,
    PrefixHit,
    PrefixQueries,
    PrefixHits,
    Preemptions,
}

impl Field {
    fn missing(self, s: &Scraped) -> bool {
        match self {
            Field::Queue => s.queue.is_none(),
            Field::Running => s.running.is_none(),
            Field::Kv => s.kv_frac.is_none(),
            Field::Capacity => s.kv_capacity_tokens.is_none(),
            Field::PrefixHit => s.prefix_hit.is_none(),
            Field::PrefixQueries | Field::PrefixHits => s.prefix_counters.is_none(),
            Field::Preemptions => s.preemptions.is_none(),
        }
    }
}

/// Whether fetching `source` from a `kind` backend could fill a signal `have` still lacks. The
/// scraper skips a source that cannot (e.g. SGLang `/metrics` after a complete `/v1/loads`).
pub fn can_fill(kind: BackendKind, source: Source, have: &Scraped) -> bool {
    use Field::*;
    let fields: &[Field] = match (source, kind) {
        (Source::Prometheus, k) => {
            return prom_table(k).is_some_and(|t| t.iter().any(|m| m.field.missing(have)));
        }
        (Source::SglangLoads, _) => &[Queue, Running, Kv, Capacity, PrefixHit],
        (Source::MindieStatus, _) => &[Queue, Running, Kv, Capacity],
        (Source::VllmLoad, _) => &[Running],
    };
    fields.iter().any(|f| f.missing(have))
}

/// Reads `body` (the answer of a `source` endpoint of a `kind` backend) into `out`, overwriting
/// the fields the body provides and leaving the others alone. Prefix-cache counters land in
/// `prefix_counters`; call [`finish`] to turn them into `prefix_hit`.
///
/// # Errors
///
/// A body over [`MAX_BODY_BYTES`], a malformed line (`line N: ...`) or JSON field
/// (`loads[1].num_running_reqs: ...`), or Prometheus text for a kind that has no metric names.
pub fn parse(
    kind: BackendKind,
    source: Source,
    body: &str,
    out: &mut Scraped,
) -> Result<(), String> {
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "{}: body of {} bytes exceeds the {MAX_BODY_BYTES}-byte cap",
            source.as_str(),
            body.len()
        ));
    }
    match source {
        Source::Prometheus => {
            let table = prom_table(kind).ok_or_else(|| {
                format!("{} backends have no Prometheus load metrics", kind.as_str())
            })?;
            parse_prometheus(table, body, out)
        }
        Source::SglangLoads => parse_sglang_loads(body, out),
        Source::MindieStatus => parse_mindie_status(body, out),
        Source::VllmLoad => parse_vllm_load(body, out),
    }
}

/// Fills the fields of `cur` that are `None` from `other` (the first source to provide a signal
/// wins; later sources only fill gaps).
pub fn merge_missing(cur: &mut Scraped, other: &Scraped) {
    fn fill<T: Copy>(a: &mut Option<T>, b: Option<T>) {
        if a.is_none() {
            *a = b;
        }
    }
    fill(&mut cur.queue, other.queue);
    fill(&mut cur.running, other.running);
    fill(&mut cur.kv_frac, other.kv_frac);
    fill(&mut cur.kv_capacity_tokens, other.kv_capacity_tokens);
    fill(&mut cur.prefix_hit, other.prefix_hit);
    fill(&mut cur.prefix_counters, other.prefix_counters);
    fill(&mut cur.preemptions, other.preemptions);
}

/// Derives `prefix_hit` from the prefix-cache counters of this scrape and the previous one:
/// Δhits / Δqueries over the interval, clamped to 0..1.
///
/// * Counters in both and Δqueries > 0: that ratio replaces any gauge value (MindIE's
///   `npu_prefix_cache_hit_rate` is a lifetime average; the interval rate is what routing wants).
/// * Δqueries = 0 (no lookups since the last scrape): the previous `prefix_hit` carries over, the
///   last rate observed; if there is none, whatever the parser set stays.
/// * A counter went backwards (server restart): no interval value; the parser's gauge, if any,
///   stays. The next scrape measures from the new baseline.
/// * No counters (first scrape, or a kind without them): nothing changes.
///
/// Every other field is a gauge and is left alone.
pub fn finish(prev: Option<&Scraped>, cur: &mut Scraped) {
    let Some(prev) = prev else { return };
    let (Some((q1, h1)), Some((q0, h0))) = (cur.prefix_counters, prev.prefix_counters) else {
        return;
    };
    let (dq, dh) = (q1 - q0, h1 - h0);
    if dq < 0.0 || dh < 0.0 {
        return;
    }
    if dq > 0.0 {
        cur.prefix_hit = Some((dh / dq).clamp(0.0, 1.0));
    } else if prev.prefix_hit.is_some() {
        cur.prefix_hit = prev.prefix_hit;
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus: per-kind metric tables.

/// How the series of one metric combine (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agg {
    /// Sum over DP ranks (max within a rank).
    Sum,
    /// Max over every series.
    Max,
    /// Mean over DP ranks (max within a rank).
    Mean,
}

/// Where a metric's number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The sample value.
    Value,
    /// `label_a × label_b` of an info gauge (vLLM `cache_config_info`).
    LabelProduct(&'static str, &'static str),
}

/// One metric the adapter reads. `alt` orders alternatives for the same field: the lowest `alt`
/// present in the body wins (vLLM's deprecated `gpu_cache_usage_perc` only when
/// `kv_cache_usage_perc` is absent).
#[derive(Debug, Clone, Copy)]
struct Metric {
    name: &'static str,
    field: Field,
    agg: Agg,
    read: Read,
    alt: u8,
}

const fn m(name: &'static str, field: Field, agg: Agg) -> Metric {
    Metric {
        name,
        field,
        agg,
        read: Read::Value,
        alt: 0,
    }
}

const fn alt(mut metric: Metric) -> Metric {
    metric.alt = 1;
    metric
}

const VLLM: &[Metric] = &[
    m("vllm:num_requests_waiting", Field::Queue, Agg::Sum),
    m("vllm:num_requests_running", Field::Running, Agg::Sum),
    m("vllm:kv_cache_usage_perc", Field::Kv, Agg::Max),
    alt(m("vllm:gpu_cache_usage_perc", Field::Kv, Agg::Max)),
    Metric {
        name: "vllm:cache_config_info",
        field: Field::Capacity,
        agg: Agg::Sum,
        read: Read::LabelProduct("block_size", "num_gpu_blocks"),
        alt: 0,
    },
    m(
        "vllm:prefix_cache_queries_total",
        Field::PrefixQueries,
        Agg::Sum,
    ),
    m("vllm:prefix_cache_hits_total", Field::PrefixHits, Agg::Sum),
    alt(m(
        "vllm:gpu_prefix_cache_queries_total",
        Field::PrefixQueries,
        Agg::Sum,
    )),
    alt(m(
        "vllm:gpu_prefix_cache_hits_total",
        Field::PrefixHits,
        Agg::Sum,
    )),
    m("vllm:num_preemptions_total", Field::Preemptions, Agg::Sum),
];

const SGLANG: &[Metric] = &[
    m("sglang:num_queue_reqs", Field::Queue, Agg::Sum),
    m("sglang:num_running_reqs", Field::Running, Agg::Sum),
    m("sglang:token_usage", Field::Kv, Agg::Max),
    m("sglang:max_total_num_tokens", Field::Capacity, Agg::Sum),
    m("sglang:cache_hit_rate", Field::PrefixHit, Agg::Mean),
];

/// MindIE's names are unprefixed: keyed by kind so vLLM-like names are never misread.
const MINDIE: &[Metric] = &[
    m("num_requests_waiting", Field::Queue, Agg::Sum),
    m("num_requests_running", Field::Running, Agg::Sum),
    m("npu_cache_usage_perc", Field::Kv, Agg::Max),
    m("npu_prefix_cache_hit_rate", Field::PrefixHit, Agg::Mean),
    m("all_radix_match_num", Field::PrefixQueries, Agg::Sum),
    m("npu_radix_match_hit_num", Field::PrefixHits, Agg::Sum),
    m("num_preemptions_total", Field::Preemptions, Agg::Sum),
];

fn prom_table(kind: BackendKind) -> Option<&'static [Metric]> {
    match kind {
        BackendKind::Vllm => Some(VLLM),
        BackendKind::Sglang => Some(SGLANG),
        BackendKind::Mindie => Some(MINDIE),
        BackendKind::Openai => None,
    }
}

/// Samples of one table entry: (DP rank label, value).
type Seen = Vec<(Option<String>, f64)>;

fn parse_prometheus(table: &[Metric], body: &str, out: &mut Scraped) -> Result<(), String> {
    let mut seen: Vec<Seen> = vec![Vec::new(); table.len()];
    prometheus::for_each_sample(body, |s| {
        let Some(i) = table.iter().position(|m| m.name == s.name) else {
            return;
        };
        let (Some(metric), Some(slot)) = (table.get(i), seen.get_mut(i)) else {
            return;
        };
        let v = match metric.read {
            Read::Value => s.value,
            Read::LabelProduct(a, b) => {
                let num = |k| s.label(k).and_then(|v| v.trim().parse::<f64>().ok());
                match (num(a), num(b)) {
                    (Some(x), Some(y)) => x * y,
                    _ => return,
                }
            }
        };
        if v.is_finite() {
            let rank = s.label("engine").or_else(|| s.label("dp_rank"));
            slot.push((rank.map(|r| r.into_owned()), v));
        }
    })?;
    let value = |field: Field| -> Option<f64> {
        let best = table
            .iter()
            .zip(&seen)
            .filter(|(m, s)| m.field == field && !s.is_empty())
            .min_by_key(|(m, _)| m.alt)?;
        aggregate(best.0.agg, best.1)
    };
    let frac = |v: Option<f64>| v.map(|x| x.clamp(0.0, 1.0));
    set(&mut out.queue, value(Field::Queue));
    set(&mut out.running, value(Field::Running));
    set(&mut out.kv_frac, frac(value(Field::Kv)));
    set(&mut out.kv_capacity_tokens, value(Field::Capacity));
    set(&mut out.prefix_hit, frac(value(Field::PrefixHit)));
    if let (Some(q), Some(h)) = (value(Field::PrefixQueries), value(Field::PrefixHits)) {
        out.prefix_counters = Some((q, h));
    }
    set(&mut out.preemptions, value(Field::Preemptions));
    Ok(())
}

/// Overwrites `slot` when the body had a value.
fn set(slot: &mut Option<f64>, v: Option<f64>) {
    if v.is_some() {
        *slot = v;
    }
}

fn aggregate(agg: Agg, seen: &[(Option<String>, f64)]) -> Option<f64> {
    if agg == Agg::Max {
        return seen.iter().map(|(_, v)| *v).reduce(f64::max);
    }
    // Max within a rank, then sum or mean over ranks. A map, not a scan: a hostile body may
    // carry a distinct rank label on every line. Ordered, so float sums are reproducible.
    let mut ranks: BTreeMap<&Option<String>, f64> = BTreeMap::new();
    for (rank, v) in seen {
        ranks
            .entry(rank)
            .and_modify(|best| *best = best.max(*v))
            .or_insert(*v);
    }
    if ranks.is_empty() {
        return None;
    }
    let sum: f64 = ranks.values().sum();
    Some(match agg {
        Agg::Mean => sum / ranks.len() as f64,
        Agg::Sum | Agg::Max => sum,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON sources.

fn json(source: &str, body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("{source}: invalid JSON: {e}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A numeric field: `Ok(None)` when absent or null, `Err` naming `path.key` for another type.
fn num(o: &Map<String, Value>, path: &str, key: &str) -> Result<Option<f64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().filter(|v| v.is_finite())),
        Some(other) => Err(format!(
            "{path}.{key}: expected a number, got {}",
            type_name(other)
        )),
    }
}

/// SGLang `/v1/loads`. Real servers answer `{"timestamp", "version", "dp_rank_count", "loads":
/// [...], "aggregate": {...}}`; routing.md §1.2 and the simulated fleet describe a bare list of
/// per-rank entries. Both are accepted (and a single entry object). Counts are summed over ranks,
/// `token_usage` takes the max, `cache_hit_rate` the mean; our own aggregation is used so the
/// rules match the Prometheus path.
fn parse_sglang_loads(body: &str, out: &mut Scraped) -> Result<(), String> {
    let v = json("/v1/loads", body)?;
    let ranks: &[Value] = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("loads") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(format!(
                    "/v1/loads: `loads` is {}, expected a list",
                    type_name(other)
                ));
            }
            None if o.contains_key("num_running_reqs") || o.contains_key("dp_rank") => {
                std::slice::from_ref(&v)
            }
            None => {
                return Err(
                    "/v1/loads: expected a list of per-rank loads or an object with `loads`".into(),
                );
            }
        },
        other => {
            return Err(format!(
                "/v1/loads: expected a list or an object, got {}",
                type_name(other)
            ));
        }
    };
    let (mut queue, mut running, mut kv, mut cap, mut hit) = (
        Seen::new(),
        Seen::new(),
        Seen::new(),
        Seen::new(),
        Seen::new(),
    );
    for (i, r) in ranks.iter().enumerate() {
        let path = format!("/v1/loads: loads[{i}]");
        let o = r
            .as_object()
            .ok_or_else(|| format!("{path}: expected an object, got {}", type_name(r)))?;
        // Each entry is one rank: key them apart so "max within a rank" never merges two.
        let rank = Some(i.to_string());
        let push = |seen: &mut Seen, key: &str| -> Result<(), String> {
            if let Some(x) = num(o, &path, key)? {
                seen.push((rank.clone(), x));
            }
            Ok(())
        };
        push(&mut running, "num_running_reqs")?;
        push(&mut queue, "num_waiting_reqs")?;
        push(&mut kv, "token_usage")?;
        push(&mut cap, "max_total_num_tokens")?;
        push(&mut hit, "cache_hit_rate")?;
    }
    set(&mut out.queue, aggregate(Agg::Sum, &queue));
    set(&mut out.running, aggregate(Agg::Sum, &running));
    set(
        &mut out.kv_frac,
        aggregate(Agg::Max, &kv).map(|x| x.clamp(0.0, 1.0)),
    );
    set(&mut out.kv_capacity_tokens, aggregate(Agg::Sum, &cap));
    set(
        &mut out.prefix_hit,
        aggregate(Agg::Mean, &hit).map(|x| x.clamp(0.0, 1.0)),
    );
    Ok(())
}

/// MindIE `/v1/status` (management listener): `resource.waitingRequestNum`,
/// `runningRequestNum`, and KV from NPU blocks: usage `1 − free/total`, capacity
/// `total × MINDIE_BLOCK_TOKENS`.
fn parse_mindie_status(body: &str, out: &mut Scraped) -> Result<(), String> {
    let v = json("/v1/status", body)?;
    let o = v
        .as_object()
        .ok_or_else(|| format!("/v1/status: expected an object, got {}", type_name(&v)))?;
    let res = match o.get("resource") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(r)) => r,
        Some(other) => {
            return Err(format!(
                "/v1/status: `resource` is {}, expected an object",
                type_name(other)
            ));
        }
    };
    let path = "/v1/status: resource";
    set(&mut out.queue, num(res, path, "waitingRequestNum")?);
    set(&mut out.running, num(res, path, "runningRequestNum")?);
    let free = num(res, path, "freeNpuBlockNums")?;
    let total = num(res, path, "totalNpuBlockNums")?.filter(|t| *t > 0.0);
    if let Some(total) = total {
        out.kv_capacity_tokens = Some(total * MINDIE_BLOCK_TOKENS);
        if let Some(free) = free {
            out.kv_frac = Some((1.0 - free / total).clamp(0.0, 1.0));
        }
    }
    Ok(())
}

/// vLLM `/load`: `{"server_load": N}`, the requests in flight at the API server (running and
/// waiting together), so it fills `running` and leaves `queue` unknown.
fn parse_vllm_load(body: &str, out: &mut Scraped) -> Result<(), String> {
    let v = json("/load", body)?;
    let o = v
        .as_object()
        .ok_or_else(|| format!("/load: expected an object, got {}", type_name(&v)))?;
    set(&mut out.running, num(o, "/load", "server_load")?);
    Ok(())
}
