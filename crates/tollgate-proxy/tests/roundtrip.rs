//! Round trips through the gateway to the simulated fleet: non-streaming, streaming, usage
//! capture per backend kind, keep-alive reuse, the local endpoints, and header hygiene.

// Test threads may block and unwrap; the data-path lint rules do not apply here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use std::io::Write;
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

#[test]
fn nonstream_round_trip_returns_backend_body_and_usage() {
    let env = instant2();
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 4));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(r.header("x-request-id").unwrap().starts_with("tg-"));
}

#[test]
fn stream_relays_every_frame_and_strips_the_injected_usage_chunk() {
    let env = start(&[("a", Personality::Vllm, Mode::Model)], "");
    let r = post(env.addr, "/v1/chat/completions", &chat(true, 6));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let d = data_lines(&r.body);
    assert_eq!(d.last().map(String::as_str), Some("[DONE]"));
    // role chunk + 6 tokens + finish chunk + [DONE]; the usage chunk we asked for is removed.
    assert_eq!(d.len(), 9, "{d:?}");
    assert!(!d.iter().any(|x| x.contains("\"usage\":{")), "{d:?}");
    // tokens arrive in order, exactly once
    let toks: Vec<String> = d
        .iter()
        .filter_map(|x| {
            x.split("«")
                .nth(1)
                .map(|t| t.split('»').next().unwrap().to_string())
        })
        .collect();
    let seqs: Vec<u32> = toks
        .iter()
        .map(|t| t.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (0..6).collect::<Vec<_>>());
    // the backend was asked for usage, so the gateway could meter the stream
    let rec = records(&env, 1);
    assert_eq!(rec.len(), 1);
    assert!(
        rec[0].include_usage,
        "gateway must inject stream_options.include_usage upstream"
    );
    let m = metrics(&env);
    assert!(
        m.contains("tollgate_tokens_total{model=\"m\",type=\"completion\"} 6"),
        "{m}"
    );
}

#[test]
fn stream_keeps_usage_chunk_when_the_client_asked_for_it() {
    let env = start(&[("a", Personality::Vllm, Mode::Instant)], "");
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#;
    let r = post(env.addr, "/v1/chat/completions", body);
    let d = data_lines(&r.body);
    let n = d.len();
    assert!(
        d[n - 2].contains("\"choices\":[]") && d[n - 2].contains("\"usage\""),
        "{d:?}"
    );
}

#[test]
fn mindie_usage_on_finish_chunk_is_synthesised_as_a_trailing_usage_chunk() {
    let env = start(&[("mi", Personality::Mindie, Mode::Instant)], "");
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#;
    let r = post(env.addr, "/v1/chat/completions", body);
    let d = data_lines(&r.body);
    let n = d.len();
    assert_eq!(d[n - 1], "[DONE]");
    let last: serde_json::Value = serde_json::from_str(&d[n - 2]).unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0, "{d:?}");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    // MindIE ignores stream_options: the gateway forwards the client's body unchanged.
    assert!(records(&env, 1)[0].body.contains("\"include_usage\":true"));
}

#[test]
fn keep_alive_reuses_client_and_upstream_connections() {
    let env = start(
        &[("a", Personality::Vllm, Mode::Instant)],
        "workers = 1".replace("workers = 1", "").as_str(),
    );
    let mut s = connect(env.addr);
    for _ in 0..5 {
        s.write_all(&post_req("/v1/chat/completions", &chat(false, 2), ""))
            .unwrap();
        let r = read_response(&mut s).unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.closed);
    }
    let recs = records(&env, 5);
    assert_eq!(recs.len(), 5);
    // one worker served this client connection: the upstream connection was reused
    assert_eq!(
        recs.iter()
            .map(|r| r.conn_id)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1,
        "{:?}",
        recs.iter()
            .map(|r| (r.conn_id, r.conn_seq))
            .collect::<Vec<_>>()
    );
    assert_eq!(recs.last().unwrap().conn_seq, 5);
}

#[test]
fn models_endpoint_lists_configured_models() {
    let env = instant2();
    let r = raw(env.addr, b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["id"], "m");
    let r = raw(env.addr, b"GET /v1/models/m HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(r.json()["id"], "m");
    let r = raw(env.addr, b"GET /v1/models/zz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        env.fleet.records().len(),
        0,
        "local endpoints never reach a backend"
    );
}

#[test]
fn client_headers_never_reach_the_backend_and_cloud_keys_are_injected() {
    let fleet = fleet_of(&[("cloud", Personality::Vllm, Mode::Instant)]);
    let text = config_for(&fleet, "").replace(
        "kind = \"vllm\"",
        "kind = \"openai\"\napi_key = \"sk-upstream-configured\"",
    );
    let env = start_with(fleet, text);
    let req = post_req(
        "/v1/chat/completions",
        &chat(false, 2),
        "authorization: Bearer sk-client-secret-canary\r\nx-simfleet-fault: status=500\r\nx-forwarded-host: evil.example\r\nconnection: keep-alive\r\n",
    );
    let r = raw(env.addr, &req).unwrap();
    assert_eq!(
        r.status,
        200,
        "the client's fault header must not be forwarded: {}",
        r.text()
    );
    let rec = &records(&env, 1)[0];
    let hs: Vec<String> = rec
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    assert!(
        hs.contains(&"authorization: Bearer sk-upstream-configured".to_string()),
        "{hs:?}"
    );
    assert!(
        !hs.iter().any(|h| h.contains("sk-client-secret-canary")
            || h.contains("simfleet-fault")
            || h.contains("evil")),
        "{hs:?}"
    );
    assert_eq!(rec.path, "/v1/chat/completions");
}

#[test]
fn unknown_paths_methods_models_and_bad_bodies_get_openai_errors() {
    let env = instant2();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /v1/admin HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            404,
            "not_found",
        ),
        (
            b"GET //v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            404,
            "not_found",
        ),
        (
            b"GET /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            405,
            "method_not_allowed",
        ),
        (
            post_req(
                "/v1/chat/completions",
                r#"{"model":"nope","messages":[]}"#,
                "",
            ),
            404,
            "model_not_found",
        ),
        (
            post_req("/v1/chat/completions", r#"{"messages":[]}"#, ""),
            400,
            "missing_model",
        ),
        (
            post_req("/v1/chat/completions", r#"{"model":"m""#, ""),
            400,
            "invalid_json",
        ),
        (
            post_req("/v1/chat/completions", r#"["m"]"#, ""),
            400,
            "invalid_json",
        ),
        (
            post_req("/v1/chat/completions", r#"{"model":"m","model":"n"}"#, ""),
            400,
            "invalid_json",
        ),
        (
            post_req(
                "/v1/chat/completions",
                r#"{"model":"m","stream":"yes"}"#,
                "",
            ),
            400,
            "invalid_json",
        ),
    ];
    for (req, status, code) in cases {
        let r = raw(env.addr, &req).unwrap();
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&req));
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{}", r.text());
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string());
    }
    assert_eq!(env.fleet.records().len(), 0);
}

#[test]
fn expect_100_continue_gets_interim_response_then_the_answer() {
    let env = instant2();
    let body = chat(false, 2);
    let mut s = connect(env.addr);
    s.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes()).unwrap();
    let mut b = [0u8; 25];
    std::io::Read::read_exact(&mut s, &mut b).unwrap();
    assert_eq!(&b, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
}

#[test]
fn admin_serves_health_and_prometheus_metrics() {
    let env = instant2();
    post(env.addr, "/v1/chat/completions", &chat(false, 2));
    let h = raw(env.admin, b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
    assert_eq!(h.status, 200);
    // The serving port answers the vLLM-style probe too, and only to GET.
    let h = raw(env.addr, b"GET /health HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
    assert_eq!((h.status, &h.body[..]), (200, &br#"{"status":"ok"}"#[..]));
    let h = raw(
        env.addr,
        b"POST /health HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(h.status, 405);
    let m = metrics(&env);
    for name in [
        "tollgate_requests_total{model=\"m\"",
        "gen_ai_server_request_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds_count",
        "tollgate_connections_active",
        "tollgate_streams_active",
        "tollgate_config_reload_total{result=\"ok\"}",
        "tollgate_worker_info{worker=\"0\",driver=",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
}
