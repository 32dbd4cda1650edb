//! Failure semantics: retry on a different backend before the first byte; never after it (the
//! stream ends with an SSE error event and no [DONE]); client disconnect aborts the upstream.

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
use std::time::{Duration, Instant};
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

#[test]
fn upstream_5xx_and_429_before_first_byte_are_retried_on_another_backend() {
    for fault in ["status=503", "status=500", "status=429,retry_after=3"] {
        let env = instant2();
        // Both backends fail their next request once; whichever is picked first fails, the
        // retry goes to the other one, which has its own one-shot fault... so arm only one.
        env.fleet.set_fault("a", Some(fault), Some(1)).unwrap();
        let mut ok = 0;
        for _ in 0..2 {
            let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
            assert_eq!(r.status, 200, "{fault}: {}", r.text());
            ok += 1;
        }
        assert_eq!(ok, 2);
        let recs = records(&env, 3);
        assert!(
            recs.iter()
                .any(|r| r.backend == "a"
                    && matches!(r.outcome, tollgate_simfleet::Outcome::Fault(_))),
            "{fault}: fault not hit: {recs:?}"
        );
    }
}

#[test]
fn refused_backend_is_retried_and_both_failing_gives_a_json_5xx() {
    let env = instant2();
    env.fleet.set_refusing("a", true);
    for _ in 0..4 {
        let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Both refusing from the start (no pooled connection to fall back on): a JSON 502.
    let env = instant2();
    env.fleet.set_refusing("a", true);
    env.fleet.set_refusing("b", true);
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_connect_error");
    env.fleet.set_refusing("a", false);
    env.fleet.set_refusing("b", false);
    env.fleet.set_fault("a", Some("status=503"), None).unwrap();
    env.fleet.set_fault("b", Some("status=503"), None).unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    env.fleet
        .set_fault("a", Some("status=429,retry_after=7"), None)
        .unwrap();
    env.fleet
        .set_fault("b", Some("status=429,retry_after=7"), None)
        .unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("7"));
}

#[test]
fn mid_stream_failure_ends_with_an_error_event_and_no_done_and_is_not_retried() {
    for fault in ["reset_after=3", "close_after=3"] {
        let env = start(
            &[
                ("a", Personality::Vllm, Mode::Model),
                ("b", Personality::Vllm, Mode::Model),
            ],
            "",
        );
        env.fleet.set_fault("a", Some(fault), None).unwrap();
        env.fleet.set_fault("b", Some(fault), None).unwrap();
        let r = post(env.addr, "/v1/chat/completions", &chat(true, 8));
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.contains("event: error"), "{fault}: {text}");
        assert!(!text.contains("[DONE]"), "{fault}: {text}");
        let toks = text.matches('«').count();
        assert_eq!(
            toks, 3,
            "{fault}: exactly the tokens produced before the fault, no duplicates: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            records(&env, 1).len(),
            1,
            "{fault}: never retried after the first byte"
        );
    }
}

#[test]
fn malformed_upstream_sse_never_reaches_the_client_as_a_clean_stream() {
    let env = start(&[("a", Personality::Vllm, Mode::Instant)], "");
    env.fleet
        .set_fault("a", Some("malformed=huge_line"), None)
        .unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(true, 4));
    // Before any frame: a 502; after frames: an error event. Either way, never [DONE].
    let text = r.text();
    assert!(!text.contains("[DONE]"), "{}", &text[..text.len().min(300)]);
    assert!(r.status == 502 || text.contains("event: error"));
}

#[test]
fn upstream_cl_te_and_extra_bytes_do_not_poison_the_pool() {
    let env = start(&[("a", Personality::Vllm, Mode::Instant)], "");
    env.fleet
        .set_fault("a", Some("extra_bytes"), Some(1))
        .unwrap();
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(post(env.addr, "/v1/chat/completions", &chat(false, 2)).status);
    }
    assert!(statuses[1..].iter().all(|s| *s == 200), "{statuses:?}");
    env.fleet.set_fault("a", Some("cl_te"), Some(1)).unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    assert_eq!(r.status, 502, "{}", r.text());
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    assert_eq!(r.status, 200);
    // every request after an anomaly came on a fresh upstream connection
    let recs = records(&env, 6);
    for w in recs.windows(2) {
        if matches!(w[0].outcome, tollgate_simfleet::Outcome::Fault(_)) {
            assert_ne!(
                w[0].conn_id, w[1].conn_id,
                "connection reused after bad framing: {recs:?}"
            );
        }
    }
}

#[test]
fn client_disconnect_mid_stream_closes_the_upstream_request_quickly() {
    let env = start(&[("a", Personality::Vllm, Mode::Model)], "");
    let mut s = connect(env.addr);
    s.write_all(&post_req("/v1/chat/completions", &chat(true, 4000), ""))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < 2000 {
        got += read_chunk(&mut s, &mut buf);
    }
    assert_eq!(env.fleet.stats("a").unwrap().active_streams, 1);
    drop(s);
    let t = Instant::now();
    while env.fleet.stats("a").unwrap().active_streams > 0 {
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "upstream still generating 500 ms after the client left"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rec = &records(&env, 1)[0];
    assert!(
        matches!(rec.outcome, tollgate_simfleet::Outcome::ClientClosed),
        "{:?}",
        rec.outcome
    );
    assert!(rec.tokens_emitted < 4000);
    let m = metrics(&env);
    assert!(m.contains("tollgate_client_aborts_total 1"), "{m}");
}

#[test]
fn a_client_that_closes_before_its_body_is_complete_counts_as_an_abort() {
    let env = start(&[("a", Personality::Vllm, Mode::Instant)], "");
    let full = post_req("/v1/chat/completions", &chat(false, 4), "");
    let mut s = connect(env.addr);
    // The head and half the body, then the client goes away.
    s.write_all(&full[..full.len() - 10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let r = read_response(&mut s).expect("a 400 for the truncated body");
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("incomplete_body"));
    let t = Instant::now();
    loop {
        let m = metrics(&env);
        if m.contains("tollgate_client_aborts_total 1") {
            assert!(m.contains("status=\"400\""), "{m}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(3), "{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stalled_backend_hits_the_idle_timeout_not_a_total_timeout() {
    let env = start(
        &[("a", Personality::Vllm, Mode::Model)],
        "[upstream]\nidle_timeout_ms = 300\nretries = 0",
    );
    env.fleet
        .set_fault("a", Some("stall_after=2:5000"), None)
        .unwrap();
    let t = Instant::now();
    let r = post(env.addr, "/v1/chat/completions", &chat(true, 6));
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(r.text().contains("upstream_idle_timeout"), "{}", r.text());
}
