//! Strict HTTP/1.1 framing and limits at the front door: each violation gets its status and a
//! JSON error, the connection is closed, the body is not read and nothing reaches a backend.

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

fn assert_rejected(env: &Env, req: &[u8], status: u16) {
    let mut s = connect(env.addr);
    s.write_all(req).unwrap();
    let r = read_response(&mut s)
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(req)));
    assert_eq!(
        r.status,
        status,
        "{:?} -> {}",
        String::from_utf8_lossy(req),
        r.text()
    );
    assert!(r.json()["error"]["code"].is_string());
    assert!(
        r.closed || server_closed(&mut s),
        "connection must close after a framing error"
    );
}

#[test]
fn framing_violations_are_400_and_close_and_never_reach_a_backend() {
    let env = instant2();
    let b = chat(false, 2);
    let n = b.len();
    let vectors: Vec<String> = vec![
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {n}\r\ntransfer-encoding: chunked\r\n\r\n{b}"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {n}\r\ncontent-length: {n}\r\n\r\n{b}"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {n}\r\ncontent-length: 5\r\n\r\n{b}"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, identity\r\n\r\n"
        ),
        format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: +{n}\r\n\r\n{b}"),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n folded\r\ncontent-length: {n}\r\n\r\n{b}"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-a: 1\rx-b: 2\r\ncontent-length: {n}\r\n\r\n{b}"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-a: a\0b\r\ncontent-length: {n}\r\n\r\n{b}"
        ),
        format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length : {n}\r\n\r\n{b}"),
        format!("POST /v1/chat/completions HTTP/1.1\nhost: x\ncontent-length: {n}\n\n{b}"),
        format!(
            "POST http://evil/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {n}\r\n\r\n{b}"
        ),
        format!("POST /v1/chat/completions HTTP/1.1\r\ncontent-length: {n}\r\n\r\n{b}"),
        format!(
            "POST /v1/chat/completions HTTP/1.0\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{b}\r\n0\r\n\r\n"
        ),
    ];
    for v in &vectors {
        assert_rejected(&env, v.as_bytes(), 400);
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        env.fleet.records().len(),
        0,
        "no smuggled request may reach a backend"
    );
}

#[test]
fn limits_answer_414_431_413_with_json_errors() {
    let env = instant2();
    let long = format!(
        "GET /v1/models?{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(9000)
    );
    assert_rejected(&env, long.as_bytes(), 414);
    let many: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_rejected(
        &env,
        format!("GET /v1/models HTTP/1.1\r\nhost: x\r\n{many}\r\n").as_bytes(),
        431,
    );
    let big = format!(
        "GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(33 * 1024)
    );
    assert_rejected(&env, big.as_bytes(), 431);
}

#[test]
fn oversized_content_length_is_refused_before_the_body_is_sent() {
    let env = instant2();
    let mut s = connect(env.addr);
    // Head only: 17 MiB declared, nothing sent. The answer must come without reading a body.
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 17825792\r\n\r\n").unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "body_too_large");
}

#[test]
fn oversized_chunked_body_is_refused_while_reading() {
    let env = start(
        &[(
            "a",
            tollgate_simfleet::engine::Personality::Vllm,
            tollgate_simfleet::Mode::Instant,
        )],
        "[limits]\nmax_body_bytes = 1024",
    );
    let mut s = connect(env.addr);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
    let _ = s.write_all(chunk.as_bytes());
    let _ = s.write_all(chunk.as_bytes());
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 413);
}

#[test]
fn slow_head_and_stalled_body_get_408() {
    let env = start(
        &[(
            "a",
            tollgate_simfleet::engine::Personality::Vllm,
            tollgate_simfleet::Mode::Instant,
        )],
        "[limits]\nheader_read_timeout_ms = 300\nbody_idle_timeout_ms = 300",
    );
    let mut s = connect(env.addr);
    s.write_all(b"GET /v1/models HTTP/1.1\r\nhost:").unwrap();
    let t = Instant::now();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    let mut s = connect(env.addr);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"model\"",
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 408);
}

#[test]
fn chunked_request_bodies_are_accepted() {
    let env = instant2();
    let b = chat(false, 2);
    let (x, y) = b.split_at(10);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{x}\r\n{:x}\r\n{y}\r\n0\r\n\r\n",
        x.len(),
        y.len()
    );
    let r = raw(env.addr, req.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_request_split_into_single_bytes_is_served() {
    let env = instant2();
    let req = post_req("/v1/chat/completions", &chat(false, 2), "");
    let mut s = connect(env.addr);
    for b in &req {
        s.write_all(&[*b]).unwrap();
    }
    assert_eq!(read_response(&mut s).unwrap().status, 200);
}
