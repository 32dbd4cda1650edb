//! Backend-kind adapters: per-kind endpoint tables, the Prometheus and JSON load parsers on the
//! exact bodies the simulated fleet serves plus real-world quirks (DP `engine` labels, SGLang's
//! wrapped `/v1/loads`, escaped label values, NaN, timestamps, counter resets), and garbage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tollgate_route::Scraped;
use tollgate_route::adapter::{
    BackendKind, Listener, MAX_BODY_BYTES, Source, can_fill, finish, health_probe, load_sources,
    merge_missing, parse,
};

use BackendKind::{Mindie, Openai, Sglang, Vllm};

fn parsed(kind: BackendKind, source: Source, body: &str) -> Scraped {
    let mut s = Scraped::default();
    parse(kind, source, body, &mut s).unwrap_or_else(|e| panic!("{e}\n{body}"));
    s
}

fn err(kind: BackendKind, source: Source, body: &str) -> String {
    let mut s = Scraped::default();
    match parse(kind, source, body, &mut s) {
        Ok(()) => panic!("accepted garbage: {body:?} -> {s:?}"),
        Err(e) => e,
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

// ---------------------------------------------------------------------------------------------
// Tables.

#[test]
fn kind_names_and_stream_options() {
    let names: Vec<_> = [Vllm, Sglang, Mindie, Openai]
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(names, ["vllm", "sglang", "mindie", "openai"]);
    assert!(Vllm.honours_stream_options() && Sglang.honours_stream_options());
    assert!(Openai.honours_stream_options());
    assert!(!Mindie.honours_stream_options());
}

#[test]
fn health_probe_per_kind() {
    assert_eq!(health_probe(Vllm), Some((Listener::Api, "/health")));
    assert_eq!(health_probe(Sglang), Some((Listener::Api, "/health")));
    assert_eq!(
        health_probe(Mindie),
        Some((Listener::Management, "/v2/health/ready"))
    );
    assert_eq!(health_probe(Openai), None, "clouds get passive health only");
}

#[test]
fn default_load_sources_per_kind() {
    assert_eq!(
        load_sources(Vllm),
        &[(Listener::Api, "/metrics", Source::Prometheus)]
    );
    assert_eq!(
        load_sources(Sglang),
        &[
            (Listener::Api, "/v1/loads?include=core", Source::SglangLoads),
            (Listener::Api, "/metrics", Source::Prometheus)
        ]
    );
    assert_eq!(
        load_sources(Mindie),
        &[
            (Listener::Management, "/v1/status", Source::MindieStatus),
            (Listener::Metrics, "/metrics", Source::Prometheus)
        ]
    );
    assert!(load_sources(Openai).is_empty());
    for k in [Vllm, Sglang, Mindie, Openai] {
        assert!(
            load_sources(k)
                .iter()
                .all(|(_, _, s)| *s != Source::VllmLoad),
            "/load needs a server flag: never a default"
        );
    }
}

#[test]
fn sglang_metrics_fallback_only_when_loads_left_a_gap() {
    let full = parsed(Sglang, Source::SglangLoads, SGLANG_LOADS_SIM);
    assert!(!can_fill(Sglang, Source::Prometheus, &full), "{full:?}");
    assert!(can_fill(Sglang, Source::Prometheus, &Scraped::default()));
    let old = parsed(
        Sglang,
        Source::SglangLoads,
        r#"[{"dp_rank":0,"num_running_reqs":1,"num_waiting_reqs":0,"token_usage":0.1,"max_total_num_tokens":100}]"#,
    );
    assert!(
        can_fill(Sglang, Source::Prometheus, &old),
        "cache_hit_rate missing: {old:?}"
    );
}

#[test]
fn mindie_metrics_still_fetched_after_status_for_prefix_and_preemptions() {
    let st = parsed(Mindie, Source::MindieStatus, MINDIE_STATUS_SIM);
    assert!(st.queue.is_some() && st.kv_frac.is_some());
    assert!(can_fill(Mindie, Source::Prometheus, &st));
    let mut all = st.clone();
    merge_missing(
        &mut all,
        &parsed(Mindie, Source::Prometheus, MINDIE_METRICS_SIM),
    );
    assert!(!can_fill(Mindie, Source::Prometheus, &all), "{all:?}");
    assert!(!can_fill(Mindie, Source::MindieStatus, &all));
    assert!(!can_fill(Openai, Source::Prometheus, &Scraped::default()));
}

#[test]
fn merge_keeps_first_source_and_fills_gaps() {
    let mut a = Scraped {
        queue: Some(1.0),
        kv_frac: Some(0.5),
        ..Scraped::default()
    };
    let b = Scraped {
        queue: Some(9.0),
        running: Some(2.0),
        kv_frac: Some(0.9),
        prefix_counters: Some((10.0, 5.0)),
        ..Scraped::default()
    };
    merge_missing(&mut a, &b);
    assert_eq!(a.queue, Some(1.0));
    assert_eq!(a.kv_frac, Some(0.5));
    assert_eq!(a.running, Some(2.0));
    assert_eq!(a.prefix_counters, Some((10.0, 5.0)));
    assert_eq!(a.preemptions, None);
}

// ---------------------------------------------------------------------------------------------
// vLLM.

/// The simulated fleet's vLLM `/metrics` (crates/tollgate-simfleet/src/metrics.rs) under load.
const VLLM_SIM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="llama-3-8b"} 3
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="llama-3-8b"} 2
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="llama-3-8b"} 0.25
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{model_name="llama-3-8b"} 1200
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{model_name="llama-3-8b"} 320
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{model_name="llama-3-8b"} 4
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="llama-3-8b"} 1200
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{finished_reason="stop",model_name="llama-3-8b"} 0
vllm:request_success_total{finished_reason="length",model_name="llama-3-8b"} 7
vllm:request_success_total{finished_reason="abort",model_name="llama-3-8b"} 0
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",enable_prefix_caching="True",num_gpu_blocks="26875",model_name="llama-3-8b"} 1.0
"#;

#[test]
fn vllm_simfleet_metrics() {
    let s = parsed(Vllm, Source::Prometheus, VLLM_SIM);
    assert_eq!(s.running, Some(3.0));
    assert_eq!(s.queue, Some(2.0));
    assert_eq!(s.kv_frac, Some(0.25));
    assert_eq!(s.kv_capacity_tokens, Some(16.0 * 26875.0));
    assert_eq!(s.prefix_counters, Some((1200.0, 320.0)));
    assert_eq!(s.preemptions, Some(4.0));
    assert_eq!(s.prefix_hit, None, "vLLM's hit rate needs two scrapes");
}

/// What vLLM V1 prints with `--data-parallel-size 2`: every series once per `engine`, plus the
/// histogram, `_created` and info series a real server adds, CRLF line ends and a timestamp.
const VLLM_DP: &str = "# HELP vllm:num_requests_running Number of requests in model execution batches.\r
# TYPE vllm:num_requests_running gauge\r
vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 5.0\r
vllm:num_requests_running{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 7.0\r
vllm:num_requests_waiting{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 1.0\r
vllm:num_requests_waiting{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.0 1719000000000\r
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.125\r
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 6.25e-1\r
vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 1000.0\r
vllm:prefix_cache_queries_total{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 3000.0\r
vllm:prefix_cache_queries_created{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 1.7190000001e+09\r
vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 250.0\r
vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 750.0\r
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.001\",model_name=\"m\"} 0.0\r
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 12.0\r
vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"m\"} NaN\r
vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",engine=\"0\",num_gpu_blocks=\"1000\"} 1.0\r
vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",engine=\"1\",num_gpu_blocks=\"1000\"} 1.0\r
\r
";

#[test]
fn vllm_data_parallel_sums_counts_and_takes_max_kv() {
    let s = parsed(Vllm, Source::Prometheus, VLLM_DP);
    assert_eq!(s.running, Some(12.0));
    assert_eq!(s.queue, Some(1.0));
    assert_eq!(s.kv_frac, Some(0.625), "max over engines");
    assert_eq!(s.kv_capacity_tokens, Some(2.0 * 16.0 * 1000.0));
    assert_eq!(s.prefix_counters, Some((4000.0, 1000.0)));
    assert_eq!(s.preemptions, None, "absent, not zero");
}

#[test]
fn vllm_deprecated_kv_name_is_a_fallback_only() {
    let old = "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n";
    assert_eq!(parsed(Vllm, Source::Prometheus, old).kv_frac, Some(0.5));
    let both = format!("{old}vllm:kv_cache_usage_perc{{model_name=\"m\"}} 0.75\n");
    assert_eq!(parsed(Vllm, Source::Prometheus, &both).kv_frac, Some(0.75));
    let old_prefix = "vllm:gpu_prefix_cache_queries_total 10\nvllm:gpu_prefix_cache_hits_total 4\n";
    assert_eq!(
        parsed(Vllm, Source::Prometheus, old_prefix).prefix_counters,
        Some((10.0, 4.0))
    );
}

#[test]
fn label_values_with_escapes_commas_and_braces_do_not_confuse_the_parser() {
    let body = r#"# HELP weird A "quoted" help, with {braces}
vllm:lora_requests_info{running_lora_adapters="a,b",waiting_lora_adapters="x\"}y",max_lora="1"} 1
vllm:num_requests_running{model_name="C:\\models\\llama \"8b\", v2\nnew",engine="0",} 2
vllm:num_requests_waiting { model_name = "m" , engine = "0" } 3
vllm:kv_cache_usage_perc{model_name="m"}	0.5	-1
"#;
    let s = parsed(Vllm, Source::Prometheus, body);
    assert_eq!(s.running, Some(2.0));
    assert_eq!(s.queue, Some(3.0));
    assert_eq!(s.kv_frac, Some(0.5));
}

#[test]
fn nan_and_infinite_samples_are_ignored_and_fractions_clamped() {
    let body = "vllm:num_requests_running{engine=\"0\"} NaN\n\
                vllm:num_requests_running{engine=\"1\"} 4\n\
                vllm:num_requests_waiting +Inf\n\
                vllm:kv_cache_usage_perc 1.5\n";
    let s = parsed(Vllm, Source::Prometheus, body);
    assert_eq!(s.running, Some(4.0));
    assert_eq!(s.queue, None);
    assert_eq!(s.kv_frac, Some(1.0));
}

#[test]
fn cache_config_info_without_numeric_blocks_leaves_capacity_unknown() {
    let body = "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1.0\n";
    assert_eq!(
        parsed(Vllm, Source::Prometheus, body).kv_capacity_tokens,
        None
    );
}

#[test]
fn prometheus3_quoted_names_parse() {
    let body = "{\"vllm:num_requests_running\", model_name=\"m\", \"dotted.label\"=\"x\"} 6\n";
    assert_eq!(parsed(Vllm, Source::Prometheus, body).running, Some(6.0));
}

#[test]
fn vllm_load_endpoint() {
    assert_eq!(
        parsed(Vllm, Source::VllmLoad, r#"{"server_load":5}"#).running,
        Some(5.0)
    );
    assert!(err(Vllm, Source::VllmLoad, r#"{"server_load":"5"}"#).contains("server_load"));
    assert!(err(Vllm, Source::VllmLoad, "[1]").contains("expected an object"));
}

// ---------------------------------------------------------------------------------------------
// SGLang.

const SGLANG_METRICS_SIM: &str = r#"# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="llama-3-8b"} 8
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="llama-3-8b"} 3
# HELP sglang:num_used_tokens The number of used tokens.
# TYPE sglang:num_used_tokens gauge
sglang:num_used_tokens{model_name="llama-3-8b"} 21500
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="llama-3-8b"} 0.05
# HELP sglang:max_total_num_tokens Maximum total number of tokens in the KV cache pool.
# TYPE sglang:max_total_num_tokens gauge
sglang:max_total_num_tokens{model_name="llama-3-8b"} 430000
# HELP sglang:cache_hit_rate The prefix cache hit rate.
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{model_name="llama-3-8b"} 0.4
# HELP sglang:gen_throughput The generation throughput (token/s).
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{model_name="llama-3-8b"} 812.500
# HELP sglang:num_requests_total The number of processed requests.
# TYPE sglang:num_requests_total counter
sglang:num_requests_total{model_name="llama-3-8b"} 40
# HELP sglang:cache_config_info Cache configuration information.
# TYPE sglang:cache_config_info gauge
sglang:cache_config_info{num_pages="430000",page_size="1",model_name="llama-3-8b"} 1
"#;

const SGLANG_LOADS_SIM: &str = r#"[{"dp_rank":0,"timestamp":1795327418,"num_running_reqs":8,"num_waiting_reqs":3,"num_used_tokens":21500,"num_total_tokens":21500,"max_total_num_tokens":430000,"token_usage":0.05,"gen_throughput":812.500,"cache_hit_rate":0.4,"utilization":0.0078125,"max_running_requests":1024}]"#;

#[test]
fn sglang_simfleet_metrics_and_loads_agree() {
    let m = parsed(Sglang, Source::Prometheus, SGLANG_METRICS_SIM);
    let l = parsed(Sglang, Source::SglangLoads, SGLANG_LOADS_SIM);
    for s in [&m, &l] {
        assert_eq!(s.running, Some(8.0));
        assert_eq!(s.queue, Some(3.0));
        assert_eq!(s.kv_frac, Some(0.05));
        assert_eq!(s.kv_capacity_tokens, Some(430000.0));
        assert_eq!(s.prefix_hit, Some(0.4));
        assert_eq!(s.prefix_counters, None);
    }
    assert_eq!(m, l);
}

#[test]
fn sglang_metrics_sum_dp_ranks_and_count_tp_replicas_once() {
    let body = "\
sglang:num_running_reqs{dp_rank=\"0\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 4\n\
sglang:num_running_reqs{dp_rank=\"0\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"1\"} 4\n\
sglang:num_running_reqs{dp_rank=\"1\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 6\n\
sglang:token_usage{dp_rank=\"0\",tp_rank=\"0\"} 0.2\n\
sglang:token_usage{dp_rank=\"1\",tp_rank=\"0\"} 0.7\n\
sglang:cache_hit_rate{dp_rank=\"0\"} 0.2\n\
sglang:cache_hit_rate{dp_rank=\"1\"} 0.6\n";
    let s = parsed(Sglang, Source::Prometheus, body);
    assert_eq!(s.running, Some(10.0));
    assert_eq!(s.kv_frac, Some(0.7));
    assert!(close(s.prefix_hit, 0.4), "{s:?}");
}

#[test]
fn sglang_loads_per_rank_list_aggregates() {
    let body = r#"[
      {"dp_rank":0,"num_running_reqs":2,"num_waiting_reqs":1,"token_usage":0.3,"max_total_num_tokens":1000,"cache_hit_rate":0.5},
      {"dp_rank":1,"num_running_reqs":5,"num_waiting_reqs":0,"token_usage":0.9,"max_total_num_tokens":1000,"cache_hit_rate":0.1}
    ]"#;
    let s = parsed(Sglang, Source::SglangLoads, body);
    assert_eq!(s.running, Some(7.0));
    assert_eq!(s.queue, Some(1.0));
    assert_eq!(s.kv_frac, Some(0.9));
    assert_eq!(s.kv_capacity_tokens, Some(2000.0));
    assert!(close(s.prefix_hit, 0.3));
}

/// Real SGLang's `/v1/loads` wraps the ranks (http_server.py `get_loads`).
#[test]
fn sglang_loads_wrapped_object_as_real_servers_answer() {
    let body = r#"{"timestamp":"2026-05-01T10:00:00+00:00","version":"0.5.9","dp_rank_count":2,
      "loads":[
        {"dp_rank":0,"timestamp":1.7e9,"num_running_reqs":1,"num_waiting_reqs":2,"num_used_tokens":10,"num_total_tokens":12,"max_total_num_tokens":500,"token_usage":0.02,"gen_throughput":1.5,"cache_hit_rate":0.0,"utilization":0.01,"max_running_requests":64,"memory":null,"queues":{"waiting":2,"grammar":0,"paused":0,"retracted":0},"num_total_reqs":3},
        {"dp_rank":1,"timestamp":1.7e9,"num_running_reqs":3,"num_waiting_reqs":0,"num_used_tokens":50,"num_total_tokens":50,"max_total_num_tokens":500,"token_usage":0.1,"gen_throughput":2.5,"cache_hit_rate":1.0,"utilization":0.05,"max_running_requests":64,"memory":null,"num_total_reqs":3}
      ],
      "aggregate":{"total_running_reqs":4,"total_waiting_reqs":2}}"#;
    let s = parsed(Sglang, Source::SglangLoads, body);
    assert_eq!(s.running, Some(4.0));
    assert_eq!(s.queue, Some(2.0));
    assert_eq!(s.kv_frac, Some(0.1));
    assert_eq!(s.kv_capacity_tokens, Some(1000.0));
    assert_eq!(s.prefix_hit, Some(0.5));
}

#[test]
fn sglang_loads_nulls_and_empty_lists_are_unknown_not_zero() {
    let s = parsed(Sglang, Source::SglangLoads, "[]");
    assert_eq!(s, Scraped::default());
    let s = parsed(
        Sglang,
        Source::SglangLoads,
        r#"{"loads":[{"dp_rank":0,"num_running_reqs":null,"num_waiting_reqs":4}]}"#,
    );
    assert_eq!(s.running, None);
    assert_eq!(s.queue, Some(4.0));
}

#[test]
fn sglang_loads_garbage_names_the_field() {
    let e = err(
        Sglang,
        Source::SglangLoads,
        r#"[{"num_running_reqs":1},{"num_waiting_reqs":"x"}]"#,
    );
    assert!(
        e.contains("loads[1].num_waiting_reqs") && e.contains("a string"),
        "{e}"
    );
    let e = err(Sglang, Source::SglangLoads, r#"[1]"#);
    assert!(e.contains("loads[0]"), "{e}");
    let e = err(Sglang, Source::SglangLoads, r#"{"loads":{}}"#);
    assert!(e.contains("`loads`"), "{e}");
    let e = err(Sglang, Source::SglangLoads, r#"{"status":"ok"}"#);
    assert!(e.contains("expected a list"), "{e}");
    let e = err(Sglang, Source::SglangLoads, "[{\"num_running_reqs\": 1,");
    assert!(e.contains("invalid JSON"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// MindIE.

const MINDIE_STATUS_SIM: &str = r#"{"service":{"roleStatus":"RoleReady","currentRole":"None"},"resource":{"availSlotsNum":195,"availBlockNum":2519,"waitingRequestNum":6,"runningRequestNum":5,"swappedRequestNum":0,"freeNpuBlockNums":2519,"freeCpuBlockNums":0,"totalNpuBlockNums":3359,"totalCpuBlockNums":0},"linkStatus":{}}"#;

const MINDIE_METRICS_SIM: &str = r#"# HELP num_requests_waiting Number of requests waiting to be processed.
# TYPE num_requests_waiting gauge
num_requests_waiting{model_name="llama-3-8b"} 6
# HELP num_requests_running Number of requests currently running on NPU.
# TYPE num_requests_running gauge
num_requests_running{model_name="llama-3-8b"} 5
# HELP num_requests_swapped Number of requests swapped to CPU.
# TYPE num_requests_swapped gauge
num_requests_swapped{model_name="llama-3-8b"} 0
# HELP npu_cache_usage_perc NPU KV-cache usage. 1 means 100 percent usage.
# TYPE npu_cache_usage_perc gauge
npu_cache_usage_perc{model_name="llama-3-8b"} 0.25
# HELP npu_prefix_cache_hit_rate NPU prefix cache block hit rate.
# TYPE npu_prefix_cache_hit_rate gauge
npu_prefix_cache_hit_rate{model_name="llama-3-8b"} 0.125
# HELP all_radix_match_num Prompt tokens looked up in the prefix cache.
# TYPE all_radix_match_num gauge
all_radix_match_num{model_name="llama-3-8b"} 8192
# HELP npu_radix_match_hit_num Prompt tokens found in the prefix cache.
# TYPE npu_radix_match_hit_num gauge
npu_radix_match_hit_num{model_name="llama-3-8b"} 1024
# HELP num_preemptions_total Cumulative number of preemption from the engine.
# TYPE num_preemptions_total counter
num_preemptions_total{model_name="llama-3-8b"} 2
# HELP request_success_total Count of successfully processed requests.
# TYPE request_success_total counter
request_success_total{model_name="llama-3-8b"} 30
"#;

#[test]
fn mindie_status_blocks_to_kv() {
    let s = parsed(Mindie, Source::MindieStatus, MINDIE_STATUS_SIM);
    assert_eq!(s.queue, Some(6.0));
    assert_eq!(s.running, Some(5.0));
    assert!(close(s.kv_frac, 1.0 - 2519.0 / 3359.0));
    assert_eq!(s.kv_capacity_tokens, Some(3359.0 * 128.0));
    assert_eq!(s.prefix_counters, None);
}

#[test]
fn mindie_status_without_blocks_or_resource_is_unknown() {
    let s = parsed(
        Mindie,
        Source::MindieStatus,
        r#"{"resource":{"waitingRequestNum":1,"totalNpuBlockNums":0,"freeNpuBlockNums":0}}"#,
    );
    assert_eq!(s.queue, Some(1.0));
    assert_eq!(
        (s.kv_frac, s.kv_capacity_tokens),
        (None, None),
        "0 total blocks is no data"
    );
    assert_eq!(
        parsed(Mindie, Source::MindieStatus, r#"{"service":{}}"#),
        Scraped::default()
    );
    let e = err(Mindie, Source::MindieStatus, r#"{"resource":[1]}"#);
    assert!(e.contains("`resource`"), "{e}");
    let e = err(
        Mindie,
        Source::MindieStatus,
        r#"{"resource":{"runningRequestNum":true}}"#,
    );
    assert!(
        e.contains("resource.runningRequestNum") && e.contains("boolean"),
        "{e}"
    );
}

#[test]
fn mindie_unprefixed_metrics() {
    let s = parsed(Mindie, Source::Prometheus, MINDIE_METRICS_SIM);
    assert_eq!(s.queue, Some(6.0));
    assert_eq!(s.running, Some(5.0));
    assert_eq!(s.kv_frac, Some(0.25));
    assert_eq!(s.prefix_hit, Some(0.125));
    assert_eq!(s.prefix_counters, Some((8192.0, 1024.0)));
    assert_eq!(s.preemptions, Some(2.0));
}

#[test]
fn names_are_keyed_by_kind() {
    // vLLM's names minus the prefix are MindIE's: neither parser reads the other's body.
    assert_eq!(
        parsed(Vllm, Source::Prometheus, MINDIE_METRICS_SIM),
        Scraped::default()
    );
    assert_eq!(
        parsed(Mindie, Source::Prometheus, VLLM_SIM),
        Scraped::default()
    );
    assert_eq!(
        parsed(Sglang, Source::Prometheus, VLLM_SIM),
        Scraped::default()
    );
    assert!(err(Openai, Source::Prometheus, VLLM_SIM).contains("openai"));
}

// ---------------------------------------------------------------------------------------------
// finish: prefix hit from counter deltas.

fn counters(q: f64, h: f64) -> Scraped {
    Scraped {
        prefix_counters: Some((q, h)),
        ..Scraped::default()
    }
}

#[test]
fn prefix_hit_is_the_interval_ratio_of_counter_deltas() {
    let prev = counters(1000.0, 100.0);
    let mut cur = counters(1400.0, 400.0);
    finish(Some(&prev), &mut cur);
    assert!(close(cur.prefix_hit, 0.75));
    let mut first = counters(1000.0, 100.0);
    finish(None, &mut first);
    assert_eq!(first.prefix_hit, None, "one scrape is not an interval");
}

#[test]
fn counter_reset_yields_no_interval_value() {
    let prev = Scraped {
        prefix_hit: Some(0.9),
        ..counters(5000.0, 4000.0)
    };
    let mut cur = counters(10.0, 2.0);
    finish(Some(&prev), &mut cur);
    assert_eq!(cur.prefix_hit, None);
    // The next scrape measures from the new baseline.
    let mut next = counters(110.0, 52.0);
    finish(Some(&cur), &mut next);
    assert!(close(next.prefix_hit, 0.5));
}

#[test]
fn idle_interval_carries_the_last_rate() {
    let prev = Scraped {
        prefix_hit: Some(0.3),
        ..counters(50.0, 15.0)
    };
    let mut cur = counters(50.0, 15.0);
    finish(Some(&prev), &mut cur);
    assert_eq!(cur.prefix_hit, Some(0.3));
}

#[test]
fn interval_rate_replaces_mindie_lifetime_gauge_and_reset_keeps_it() {
    let prev = parsed(Mindie, Source::Prometheus, MINDIE_METRICS_SIM);
    let later = MINDIE_METRICS_SIM
        .replace("} 8192", "} 9192")
        .replace("} 1024", "} 1924");
    let mut cur = parsed(Mindie, Source::Prometheus, &later);
    assert_eq!(cur.prefix_hit, Some(0.125), "parser leaves the gauge");
    finish(Some(&prev), &mut cur);
    assert!(close(cur.prefix_hit, 0.9), "{cur:?}");
    let restarted = MINDIE_METRICS_SIM.replace("} 8192", "} 8");
    let mut cur = parsed(Mindie, Source::Prometheus, &restarted);
    finish(Some(&prev), &mut cur);
    assert_eq!(cur.prefix_hit, Some(0.125), "reset: the gauge stays");
}

#[test]
fn finish_leaves_gauges_alone() {
    let prev = parsed(Vllm, Source::Prometheus, VLLM_SIM);
    let mut cur = prev.clone();
    finish(Some(&prev), &mut cur);
    assert_eq!(
        Scraped {
            prefix_hit: None,
            ..cur
        },
        prev
    );
}

// ---------------------------------------------------------------------------------------------
// Garbage.

#[test]
fn garbage_prometheus_lines_name_the_line() {
    let cases: &[(&str, &str)] = &[
        ("vllm:num_requests_running 1\n<html>oops</html>\n", "line 2"),
        ("x 1\ny{a=\"1\" 2\n", "line 2"),
        ("# ok\n\nz{a=\"\\q\"} 1\n", "line 3"),
        ("m{a=1} 1\n", "quoted"),
        ("m{a} 1\n", "expected '='"),
        ("m{a=\"b\" c=\"d\"} 1\n", "expected ','"),
        ("m{a=\"b\"} one\n", "value"),
        ("m{a=\"b\"}\n", "value"),
        ("m 1 2 3\n", "after the timestamp"),
        ("m 1 soon\n", "timestamp"),
        ("9m 1\n", "metric name"),
        ("m{a=\"unterminated} 1\n", "unterminated"),
        ("{a=\"b\"} 1\n", "no metric name"),
    ];
    for (body, want) in cases {
        let e = err(Vllm, Source::Prometheus, body);
        assert!(e.contains(want), "{body:?}: {e}");
    }
}

#[test]
fn valid_bodies_without_signals_leave_them_unknown() {
    for body in [
        "",
        "\n\n",
        "# HELP a b\n# TYPE a gauge\n",
        "# EOF\n",
        "other_metric 1\n",
    ] {
        assert_eq!(parsed(Vllm, Source::Prometheus, body), Scraped::default());
    }
}

#[test]
fn oversized_body_is_refused_before_parsing() {
    let body = "#".repeat(MAX_BODY_BYTES + 1);
    assert!(err(Vllm, Source::Prometheus, &body).contains("cap"));
}

#[test]
fn a_distinct_rank_label_on_every_line_still_parses_in_linear_time() {
    let mut body = String::new();
    let mut n = 0u32;
    while body.len() < MAX_BODY_BYTES - 64 {
        body.push_str(&format!("vllm:num_requests_running{{engine=\"{n}\"}} 1\n"));
        n += 1;
    }
    let start = std::time::Instant::now();
    let s = parsed(Vllm, Source::Prometheus, &body);
    assert_eq!(s.running, Some(f64::from(n)));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn parse_overwrites_only_what_the_body_has() {
    let mut s = Scraped {
        queue: Some(99.0),
        preemptions: Some(7.0),
        ..Scraped::default()
    };
    parse(
        Vllm,
        Source::Prometheus,
        "vllm:num_requests_waiting 1\n",
        &mut s,
    )
    .unwrap();
    assert_eq!(s.queue, Some(1.0));
    assert_eq!(s.preemptions, Some(7.0));
}

// ---------------------------------------------------------------------------------------------
// Never panics.

/// Fragments that steer random lines into the parser's deeper states.
fn exposition_line() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "vllm:num_requests_running",
        "num_requests_waiting",
        "sglang:token_usage",
        "vllm:cache_config_info",
        "{",
        "}",
        "\"",
        "\\",
        "\\\"",
        "=",
        ",",
        " ",
        "\t",
        "engine",
        "block_size",
        "num_gpu_blocks",
        "\"16\"",
        "\"0\"",
        "1",
        "0.5",
        "NaN",
        "+Inf",
        "-1e308",
        "1e999",
        "#",
        "\r",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn prometheus_parser_never_panics_on_arbitrary_text(body in ".{0,400}") {
        for kind in [Vllm, Sglang, Mindie, Openai] {
            let mut s = Scraped::default();
            let _ = parse(kind, Source::Prometheus, &body, &mut s);
        }
    }

    #[test]
    fn prometheus_parser_never_panics_on_near_valid_lines(
        lines in prop::collection::vec(exposition_line(), 0..12)
    ) {
        let body = lines.join("\n");
        for kind in [Vllm, Sglang, Mindie] {
            let mut s = Scraped::default();
            if parse(kind, Source::Prometheus, &body, &mut s).is_ok() {
                for v in [s.queue, s.running, s.kv_capacity_tokens].into_iter().flatten() {
                    prop_assert!(v.is_finite());
                }
                if let Some(kv) = s.kv_frac {
                    prop_assert!((0.0..=1.0).contains(&kv));
                }
            }
        }
    }

    #[test]
    fn json_parsers_never_panic(body in ".{0,300}") {
        for source in [Source::SglangLoads, Source::MindieStatus, Source::VllmLoad] {
            let mut s = Scraped::default();
            let _ = parse(Sglang, source, &body, &mut s);
        }
    }

    #[test]
    fn finish_never_yields_a_rate_outside_0_1(
        q0 in 0.0f64..1e9, h0 in 0.0f64..1e9, q1 in 0.0f64..1e9, h1 in 0.0f64..1e9
    ) {
        let mut cur = counters(q1, h1);
        finish(Some(&counters(q0, h0)), &mut cur);
        if let Some(p) = cur.prefix_hit {
            prop_assert!((0.0..=1.0).contains(&p));
        }
    }
}
