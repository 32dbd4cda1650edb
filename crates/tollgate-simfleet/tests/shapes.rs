//! Each personality's HTTP surface: SSE chunk shapes and usage rules, non-streaming bodies,
//! metrics names, MindIE's three ports, SGLang loads, keep-alive and verifiable tokens.
// Test helpers outside #[test] fns are test code too (.clippy.toml only exempts #[test] fns).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{Mode, Outcome};

const CHAT: &str = "/v1/chat/completions";

fn parsed(events: &[String]) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).expect("chunk json"))
        .collect()
}

#[test]
fn vllm_stream_has_usage_chunk_only_when_include_usage() {
    for mode in [Mode::Model, Mode::Instant] {
        let f = fleet(Personality::Vllm, mode);
        let addr = f.addr("b").expect("addr");
        let n = if mode == Mode::Model { 5 } else { 64 };
        for include in [false, true] {
            let r = request(addr, "POST", CHAT, &[], &chat(true, include, 5));
            assert_eq!(r.status, 200);
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("text/event-stream"))
            );
            let ev = r.events();
            assert_eq!(ev.last().map(String::as_str), Some("[DONE]"));
            let chunks = parsed(&ev);
            assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
            let rid = assert_sequential(&contents(&ev), n);
            assert_eq!(r.header("x-simfleet-request-id"), Some(rid.as_str()));
            let finish_idx = chunks
                .iter()
                .position(|c| c["choices"][0]["finish_reason"].is_string())
                .expect("finish");
            assert!(
                chunks[finish_idx].get("usage").is_none(),
                "vLLM never puts usage on the finish chunk"
            );
            if include {
                assert_eq!(finish_idx, chunks.len() - 2);
                let u = &chunks[chunks.len() - 1];
                assert_eq!(u["choices"].as_array().map(Vec::len), Some(0));
                assert_eq!(u["usage"]["completion_tokens"], n);
                assert!(u["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0);
            } else {
                assert_eq!(finish_idx, chunks.len() - 1);
                assert!(chunks.iter().all(|c| c.get("usage").is_none()));
            }
        }
    }
}

#[test]
fn mindie_puts_usage_on_finish_chunk_and_ignores_stream_options() {
    let f = fast_model(Personality::Mindie);
    let addr = f.addr("b").expect("addr");
    for include in [false, true] {
        let r = request(addr, "POST", CHAT, &[], &chat(true, include, 4));
        let ev = r.events();
        let chunks = parsed(&ev);
        let last = chunks.last().expect("chunks");
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        assert_eq!(last["usage"]["completion_tokens"], 4);
        assert!(last["usage"]["prompt_tokens_details"]["cached_tokens"].is_u64());
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
        );
        assert_eq!(ev.last().map(String::as_str), Some("[DONE]"));
    }
}

#[test]
fn sglang_stream_follows_vllm_usage_rule() {
    let f = fast_model(Personality::Sglang);
    let addr = f.addr("b").expect("addr");
    let r = request(addr, "POST", CHAT, &[], &chat(true, true, 3));
    let chunks = parsed(&r.events());
    assert_eq!(
        chunks.last().expect("usage")["choices"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let r = request(addr, "POST", CHAT, &[], &chat(true, false, 3));
    assert!(parsed(&r.events()).iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn non_streaming_bodies_carry_usage() {
    for mode in [Mode::Model, Mode::Instant] {
        let f = fleet(Personality::Vllm, mode);
        let addr = f.addr("b").expect("addr");
        let r = request(addr, "POST", CHAT, &[], &chat(false, false, 3));
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["object"], "chat.completion");
        let n = if mode == Mode::Model { 3 } else { 4 };
        assert_eq!(v["usage"]["completion_tokens"], n);
        assert!(v["usage"]["prompt_tokens_details"]["cached_tokens"].is_u64());
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .to_string();
        assert!(text.starts_with("«r") && text.matches('«').count() == n as usize);
        let r = request(
            addr,
            "POST",
            "/v1/completions",
            &[],
            r#"{"prompt":"Hello","max_tokens":2}"#,
        );
        let v = r.json();
        assert_eq!(v["object"], "text_completion");
        assert!(
            v["choices"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("«r"))
        );
        if mode == Mode::Instant {
            assert!(
                r.body.len() < 400,
                "instant body is small: {}",
                r.body.len()
            );
        }
    }
}

#[test]
fn completions_stream_has_text_chunks() {
    let f = fast_model(Personality::Vllm);
    let addr = f.addr("b").expect("addr");
    let r = request(
        addr,
        "POST",
        "/v1/completions",
        &[],
        r#"{"prompt":"Hi","max_tokens":3,"stream":true}"#,
    );
    let ev = r.events();
    let chunks = parsed(&ev);
    assert_eq!(chunks[0]["object"], "text_completion");
    assert_sequential(&contents(&ev), 3);
}

#[test]
fn vllm_metrics_names_and_labels() {
    let f = fast_model(Personality::Vllm);
    let addr = f.addr("b").expect("addr");
    request(addr, "POST", CHAT, &[], &chat(false, false, 2));
    let m = request(addr, "GET", "/metrics", &[], "").text();
    for name in [
        "vllm:num_requests_running{model_name=\"llama-3-8b\"}",
        "vllm:num_requests_waiting{",
        "vllm:kv_cache_usage_perc{",
        "vllm:prefix_cache_queries_total{",
        "vllm:prefix_cache_hits_total{",
        "vllm:num_preemptions_total{",
        "vllm:prompt_tokens_total{",
        "vllm:generation_tokens_total{model_name=\"llama-3-8b\"} 2",
        "vllm:request_success_total{finished_reason=\"length\",model_name=\"llama-3-8b\"} 1",
        "vllm:cache_config_info{block_size=\"16\",enable_prefix_caching=\"True\",num_gpu_blocks=\"",
        "# TYPE vllm:prompt_tokens_total counter",
        "# HELP vllm:num_requests_waiting ",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
    assert_eq!(
        request(addr, "GET", "/load", &[], "").json()["server_load"],
        0
    );
    assert_eq!(request(addr, "GET", "/health", &[], "").status, 200);
    let models = request(addr, "GET", "/v1/models", &[], "").json();
    assert_eq!(models["data"][0]["id"], "llama-3-8b");
    assert_eq!(request(addr, "GET", "/nope", &[], "").status, 404);
}

#[test]
fn sglang_metrics_and_loads() {
    let f = fast_model(Personality::Sglang);
    let addr = f.addr("b").expect("addr");
    request(addr, "POST", CHAT, &[], &chat(false, false, 2));
    let m = request(addr, "GET", "/metrics", &[], "").text();
    for name in [
        "sglang:num_running_reqs{",
        "sglang:num_queue_reqs{",
        "sglang:token_usage{",
        "sglang:cache_hit_rate{",
        "sglang:max_total_num_tokens{",
        "sglang:num_used_tokens{",
        "sglang:gen_throughput{",
        "sglang:prompt_tokens_total{",
        "sglang:generation_tokens_total{model_name=\"llama-3-8b\"} 2",
        "sglang:cache_config_info{num_pages=\"",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
    let loads = request(addr, "GET", "/v1/loads", &[], "").json();
    let e = &loads[0];
    for k in [
        "dp_rank",
        "timestamp",
        "num_running_reqs",
        "num_waiting_reqs",
        "num_used_tokens",
        "num_total_tokens",
        "max_total_num_tokens",
        "token_usage",
        "gen_throughput",
        "cache_hit_rate",
        "utilization",
        "max_running_requests",
    ] {
        assert!(e.get(k).is_some(), "loads lacks {k}: {e}");
    }
    assert!(
        request(addr, "GET", "/get_load", &[], "").json()[0]
            .get("num_reqs")
            .is_some()
    );
    assert_eq!(
        request(addr, "GET", "/health_generate", &[], "").status,
        200
    );
}

#[test]
fn mindie_serves_three_ports() {
    let f = fast_model(Personality::Mindie);
    let info = f.backends().remove(0);
    let (api, mgmt, met) = (
        info.api_addr,
        info.management_addr.expect("mgmt"),
        info.metrics_addr.expect("metrics"),
    );
    assert!(api != mgmt && mgmt != met);
    assert_eq!(
        request(api, "POST", CHAT, &[], &chat(false, false, 2)).status,
        200
    );
    assert_eq!(
        request(api, "GET", "/metrics", &[], "").status,
        404,
        "no metrics on business port"
    );
    assert_eq!(request(mgmt, "GET", "/health", &[], "").status, 200);
    assert_eq!(request(mgmt, "GET", "/v2/health/live", &[], "").status, 200);
    assert_eq!(
        request(mgmt, "GET", "/v2/health/ready", &[], "").status,
        200
    );
    assert_eq!(
        request(mgmt, "POST", CHAT, &[], &chat(false, false, 2)).status,
        404
    );
    let st = request(mgmt, "GET", "/v1/status", &[], "").json();
    for k in [
        "availSlotsNum",
        "availBlockNum",
        "waitingRequestNum",
        "runningRequestNum",
        "swappedRequestNum",
        "freeNpuBlockNums",
        "freeCpuBlockNums",
        "totalNpuBlockNums",
        "totalCpuBlockNums",
    ] {
        assert!(st["resource"].get(k).is_some(), "status lacks {k}");
    }
    assert!(st.get("service").is_some() && st.get("linkStatus").is_some());
    let m = request(met, "GET", "/metrics", &[], "").text();
    for name in [
        "num_requests_waiting{model_name=",
        "num_requests_running{",
        "npu_cache_usage_perc{",
        "npu_prefix_cache_hit_rate{",
        "num_preemptions_total{",
        "prompt_tokens_total{",
        "generation_tokens_total{model_name=\"llama-3-8b\"} 2",
        "request_success_total{model_name=\"llama-3-8b\"} 1",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
    assert!(!m.contains("vllm:"), "MindIE names are unprefixed");
}

#[test]
fn keep_alive_reuses_connection_and_counts_conn_seq() {
    let f = fast_model(Personality::Vllm);
    let addr = f.addr("b").expect("addr");
    let mut s = connect(addr);
    let mut buf = Vec::new();
    let mut rids = Vec::new();
    for i in 0..3 {
        send(&mut s, "POST", CHAT, &[], &chat(i % 2 == 0, false, 2));
        let r = read_response(&mut s, &mut buf).expect("response");
        rids.push(r.header("x-simfleet-request-id").expect("rid").to_string());
    }
    let recs = wait_records(&f, 3);
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.conn_id == recs[0].conn_id));
    assert_eq!(
        recs.iter().map(|r| r.conn_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        recs.iter()
            .map(|r| r.request_id.clone())
            .collect::<Vec<_>>(),
        rids
    );
    assert!(
        recs.iter()
            .all(|r| r.outcome == Outcome::Completed && r.ended_at_us.is_some())
    );
    assert_eq!(f.stats("b").expect("stats").connections_accepted, 1);
}

#[test]
fn records_capture_request_details() {
    let f = fleet(Personality::Vllm, Mode::Instant);
    let addr = f.addr("b").expect("addr");
    request(
        addr,
        "POST",
        CHAT,
        &[("X-Custom", "yes")],
        &chat(true, true, 3),
    );
    let r = &wait_records(&f, 1)[0];
    assert_eq!(r.backend, "b");
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, CHAT);
    assert!(r.headers.iter().any(|(k, v)| k == "x-custom" && v == "yes"));
    assert!(r.stream && r.include_usage);
    assert!(r.body.contains("Hello there"));
    assert_eq!(r.tokens_emitted, 64);
    assert!(r.prompt_tokens > 0);
    f.clear_records();
    assert!(f.records().is_empty());
}

#[test]
fn chunked_request_bodies_are_accepted() {
    let f = fleet(Personality::Vllm, Mode::Instant);
    let mut s = connect(f.addr("b").expect("addr"));
    let body = chat(false, false, 2);
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    std::io::Write::write_all(&mut s, req.as_bytes()).expect("write");
    let r = read_response(&mut s, &mut Vec::new()).expect("resp");
    assert_eq!(r.status, 200);
    assert_eq!(wait_records(&f, 1)[0].body, body);
}

#[test]
fn longer_prompt_gets_later_first_token() {
    let f = fleet(Personality::Vllm, Mode::Model);
    let addr = f.addr("b").expect("addr");
    let long = "lorem ipsum dolor sit amet ".repeat(1500);
    let mut seen = 0;
    let mut ttft = |prompt: &str| {
        let body = serde_json::json!({"messages":[{"role":"user","content":prompt}],"stream":true,"max_tokens":1})
            .to_string();
        request(addr, "POST", CHAT, &[], &body);
        seen += 1;
        let r = wait_records(&f, seen).pop().expect("record");
        r.first_token_at_us.expect("ttft") - r.started_at_us
    };
    let short_t = ttft("hi");
    let long_t = ttft(&long);
    assert!(
        long_t > short_t + 20_000,
        "long {long_t} µs vs short {short_t} µs"
    );
}

#[test]
fn model_mode_gauges_and_tokens_flow() {
    let f = fast_model(Personality::Vllm);
    let addr = f.addr("b").expect("addr");
    let r = request(addr, "POST", CHAT, &[], &chat(true, false, 8));
    assert_sequential(&contents(&r.events()), 8);
    // Gauges are published after the events are dispatched: poll.
    assert!(eventually(|| f
        .gauges("b")
        .is_some_and(
            |g| g.generation_tokens_total == 8 && g.requests_finished == 1
        )));
    wait_records(&f, 1);
    let s = f.stats("b").expect("stats");
    assert_eq!(s.tokens_generated, 8);
    assert!(eventually(|| f
        .stats("b")
        .is_some_and(|s| s.active_streams == 0)));
}

#[test]
fn shutdown_closes_every_listener() {
    let f = fast_model(Personality::Mindie);
    let info = f.backends().remove(0);
    f.shutdown();
    for a in [Some(info.api_addr), info.management_addr, info.metrics_addr]
        .into_iter()
        .flatten()
    {
        assert!(std::net::TcpStream::connect(a).is_err(), "{a} still open");
    }
}

#[tokio::test]
async fn fleet_starts_and_stops_inside_a_tokio_runtime() {
    let f = fleet(Personality::Vllm, Mode::Instant);
    let addr = f.addr("b").expect("addr");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    assert!(out.starts_with(b"HTTP/1.1 200 OK"));
    f.set_refusing("b", true);
    f.set_refusing("b", false);
    drop(f);
}

#[test]
fn records_are_appended_to_record_path_as_json_lines() {
    let path = std::env::temp_dir().join(format!("simfleet-records-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut cfg = tollgate_simfleet::FleetConfig::single("b", Personality::Sglang, Mode::Instant);
    cfg.backends[0].record_path = Some(path.clone());
    let f = tollgate_simfleet::Fleet::start(cfg).expect("start");
    let addr = f.addr("b").expect("addr");
    for _ in 0..2 {
        request(addr, "POST", CHAT, &[], &chat(true, false, 1));
    }
    wait_records(&f, 2);
    let text = std::fs::read_to_string(&path).expect("file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["outcome"], "Completed");
    assert_eq!(lines[1]["tokens_emitted"], 64);
    let _ = std::fs::remove_file(&path);
}
