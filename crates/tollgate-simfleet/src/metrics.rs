//! Prometheus text and load/status JSON in each real server's exact names and shapes
//! (routing.md §1): `vllm:*`, `sglang:*` and MindIE's unprefixed names, all labelled
//! `model_name`, plus SGLang's `/v1/loads` / `/get_load` and MindIE's `/v1/status`.
//!
//! Pure functions of a [`Gauges`] snapshot and a few counters, so they are trivially testable.

use std::fmt::Write;

use crate::engine::{Gauges, Personality};

/// Inputs beyond the engine gauges.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Model name label.
    pub model: String,
    /// Requests finished with reason `length`.
    pub finished_length: u64,
    /// Requests finished with reason `stop`.
    pub finished_stop: u64,
    /// Generation tokens per second since the previous scrape.
    pub gen_throughput: f64,
    /// Unix time (s) for `timestamp` fields.
    pub unix_s: u64,
}

fn series(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, String)]) {
    // Counters are defined without `_total` and exposed with it, HELP/TYPE included, as Python's
    // prometheus_client (vLLM, SGLang) and prometheus-cpp (MindIE) print them.
    let sample = if kind == "counter" {
        format!("{name}_total")
    } else {
        name.to_string()
    };
    let _ = writeln!(out, "# HELP {sample} {help}");
    let _ = writeln!(out, "# TYPE {sample} {kind}");
    for (labels, value) in rows {
        let _ = writeln!(out, "{sample}{{{labels}}} {value}");
    }
}

fn hit_rate(g: &Gauges) -> f64 {
    if g.prefix_queries_tokens == 0 {
        0.0
    } else {
        g.prefix_hits_tokens as f64 / g.prefix_queries_tokens as f64
    }
}

/// Used KV blocks (rounded up).
fn used_blocks(g: &Gauges) -> u64 {
    let bs = u64::from(g.block_size.max(1));
    g.kv_used_tokens.div_ceil(bs)
}

/// `/metrics` body for a personality.
pub fn render(p: Personality, g: &Gauges, x: &Extra) -> String {
    match p {
        Personality::Vllm => render_vllm(g, x),
        Personality::Sglang => render_sglang(g, x),
        Personality::Mindie => render_mindie(g, x),
    }
}

fn render_vllm(g: &Gauges, x: &Extra) -> String {
    let m = format!("model_name=\"{}\"", x.model);
    let one = |v: String| vec![(m.clone(), v)];
    let mut o = String::with_capacity(4096);
    series(
        &mut o,
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        &one(g.running.to_string()),
    );
    series(
        &mut o,
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        &one(g.waiting.to_string()),
    );
    series(
        &mut o,
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        &one(g.kv_usage.to_string()),
    );
    series(
        &mut o,
        "vllm:prefix_cache_queries",
        "counter",
        "Prefix cache queries, in terms of number of queried tokens.",
        &one(g.prefix_queries_tokens.to_string()),
    );
    series(
        &mut o,
        "vllm:prefix_cache_hits",
        "counter",
        "Prefix cache hits, in terms of number of cached tokens.",
        &one(g.prefix_hits_tokens.to_string()),
    );
    series(
        &mut o,
        "vllm:num_preemptions",
        "counter",
        "Cumulative number of preemption from the engine.",
        &one(g.preemptions.to_string()),
    );
    series(
        &mut o,
        "vllm:prompt_tokens",
        "counter",
        "Number of prefill tokens processed.",
        &one(g.prompt_tokens_total.to_string()),
    );
    series(
        &mut o,
        "vllm:generation_tokens",
        "counter",
        "Number of generation tokens processed.",
        &one(g.generation_tokens_total.to_string()),
    );
    let rows: Vec<(String, String)> = [
        ("stop", x.finished_stop),
        ("length", x.finished_length),
        ("abort", 0),
    ]
    .iter()
    .map(|(r, n)| (format!("finished_reason=\"{r}\",{m}"), n.to_string()))
    .collect();
    series(
        &mut o,
        "vllm:request_success",
        "counter",
        "Count of successfully processed requests.",
        &rows,
    );
    let info = format!(
        "block_size=\"{}\",enable_prefix_caching=\"True\",num_gpu_blocks=\"{}\",{m}",
        g.block_size, g.num_blocks
    );
    series(
        &mut o,
        "vllm:cache_config_info",
        "gauge",
        "Information of the LLMEngine CacheConfig",
        &[(info, "1.0".into())],
    );
    o
}

fn render_sglang(g: &Gauges, x: &Extra) -> String {
    let m = format!("model_name=\"{}\"", x.model);
    let one = |v: String| vec![(m.clone(), v)];
    let mut o = String::with_capacity(4096);
    series(
        &mut o,
        "sglang:num_running_reqs",
        "gauge",
        "The number of running requests.",
        &one(g.running.to_string()),
    );
    series(
        &mut o,
        "sglang:num_queue_reqs",
        "gauge",
        "The number of requests in the waiting queue.",
        &one(g.waiting.to_string()),
    );
    series(
        &mut o,
        "sglang:num_used_tokens",
        "gauge",
        "The number of used tokens.",
        &one(g.kv_used_tokens.to_string()),
    );
    series(
        &mut o,
        "sglang:token_usage",
        "gauge",
        "The token usage.",
        &one(g.kv_usage.to_string()),
    );
    series(
        &mut o,
        "sglang:max_total_num_tokens",
        "gauge",
        "Maximum total number of tokens in the KV cache pool.",
        &one(g.kv_capacity_tokens.to_string()),
    );
    series(
        &mut o,
        "sglang:cache_hit_rate",
        "gauge",
        "The prefix cache hit rate.",
        &one(hit_rate(g).to_string()),
    );
    series(
        &mut o,
        "sglang:gen_throughput",
        "gauge",
        "The generation throughput (token/s).",
        &one(format!("{:.3}", x.gen_throughput)),
    );
    series(
        &mut o,
        "sglang:max_running_requests",
        "gauge",
        "The maximum number of running requests.",
        &one(g.max_num_seqs.to_string()),
    );
    series(
        &mut o,
        "sglang:prompt_tokens",
        "counter",
        "Number of prefill tokens processed.",
        &one(g.prompt_tokens_total.to_string()),
    );
    series(
        &mut o,
        "sglang:generation_tokens",
        "counter",
        "Number of generation tokens processed.",
        &one(g.generation_tokens_total.to_string()),
    );
    series(
        &mut o,
        "sglang:num_requests",
        "counter",
        "The number of processed requests.",
        &one(g.requests_finished.to_string()),
    );
    let info = format!(
        "num_pages=\"{}\",page_size=\"{}\",{m}",
        g.num_blocks, g.block_size
    );
    series(
        &mut o,
        "sglang:cache_config_info",
        "gauge",
        "Cache configuration information.",
        &[(info, "1".into())],
    );
    o
}

fn render_mindie(g: &Gauges, x: &Extra) -> String {
    let m = format!("model_name=\"{}\"", x.model);
    let one = |v: String| vec![(m.clone(), v)];
    let mut o = String::with_capacity(4096);
    series(
        &mut o,
        "num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        &one(g.waiting.to_string()),
    );
    series(
        &mut o,
        "num_requests_running",
        "gauge",
        "Number of requests currently running on NPU.",
        &one(g.running.to_string()),
    );
    series(
        &mut o,
        "num_requests_swapped",
        "gauge",
        "Number of requests swapped to CPU.",
        &one("0".into()),
    );
    series(
        &mut o,
        "npu_cache_usage_perc",
        "gauge",
        "NPU KV-cache usage. 1 means 100 percent usage.",
        &one(g.kv_usage.to_string()),
    );
    series(
        &mut o,
        "npu_prefix_cache_hit_rate",
        "gauge",
        "NPU prefix cache block hit rate.",
        &one(hit_rate(g).to_string()),
    );
    series(
        &mut o,
        "all_radix_match_num",
        "gauge",
        "Prompt tokens looked up in the prefix cache.",
        &one(g.prefix_queries_tokens.to_string()),
    );
    series(
        &mut o,
        "npu_radix_match_hit_num",
        "gauge",
        "Prompt tokens found in the prefix cache.",
        &one(g.prefix_hits_tokens.to_string()),
    );
    series(
        &mut o,
        "num_preemptions",
        "counter",
        "Cumulative number of preemption from the engine.",
        &one(g.preemptions.to_string()),
    );
    series(
        &mut o,
        "prompt_tokens",
        "counter",
        "Number of prefill tokens processed.",
        &one(g.prompt_tokens_total.to_string()),
    );
    series(
        &mut o,
        "generation_tokens",
        "counter",
        "Number of generation tokens processed.",
        &one(g.generation_tokens_total.to_string()),
    );
    series(
        &mut o,
        "request_success",
        "counter",
        "Count of successfully processed requests.",
        &one((x.finished_length + x.finished_stop).to_string()),
    );
    o
}

/// vLLM `GET /load`.
pub fn vllm_load(in_flight: u64) -> String {
    format!(r#"{{"server_load":{in_flight}}}"#)
}

/// SGLang `GET /v1/loads`: a list with one entry (dp_rank 0).
pub fn sglang_loads(g: &Gauges, x: &Extra) -> String {
    let util = if g.max_num_seqs == 0 {
        0.0
    } else {
        f64::from(g.running) / f64::from(g.max_num_seqs)
    };
    format!(
        r#"[{{"dp_rank":0,"timestamp":{},"num_running_reqs":{},"num_waiting_reqs":{},"num_used_tokens":{},"num_total_tokens":{},"max_total_num_tokens":{},"token_usage":{},"gen_throughput":{:.3},"cache_hit_rate":{},"utilization":{},"max_running_requests":{}}}]"#,
        x.unix_s,
        g.running,
        g.waiting,
        g.kv_used_tokens,
        g.kv_used_tokens,
        g.kv_capacity_tokens,
        g.kv_usage,
        x.gen_throughput,
        hit_rate(g),
        util,
        g.max_num_seqs
    )
}

/// SGLang's deprecated `GET /get_load` shim.
pub fn sglang_get_load(g: &Gauges, x: &Extra) -> String {
    format!(
        r#"[{{"dp_rank":0,"num_reqs":{},"num_waiting_reqs":{},"num_tokens":{},"num_pending_tokens":0,"ts_tic":{}}}]"#,
        g.running + g.waiting,
        g.waiting,
        g.kv_used_tokens,
        x.unix_s
    )
}

/// MindIE `GET /v1/status` (management port).
pub fn mindie_status(g: &Gauges) -> String {
    let free = g.num_blocks.saturating_sub(used_blocks(g));
    format!(
        r#"{{"service":{{"roleStatus":"RoleReady","currentRole":"None"}},"resource":{{"availSlotsNum":{},"availBlockNum":{free},"waitingRequestNum":{},"runningRequestNum":{},"swappedRequestNum":0,"freeNpuBlockNums":{free},"freeCpuBlockNums":0,"totalNpuBlockNums":{},"totalCpuBlockNums":0}},"linkStatus":{{}}}}"#,
        g.max_num_seqs.saturating_sub(g.running),
        g.waiting,
        g.running,
        g.num_blocks
    )
}
