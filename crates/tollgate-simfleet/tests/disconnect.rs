//! Client disconnects mid-response are detected, recorded as `ClientClosed` with an end time,
//! and cancel the engine request (the gateway's "disconnect closes upstream within 500 ms" test
//! reads exactly this).
// Test helpers outside #[test] fns are test code too (.clippy.toml only exempts #[test] fns).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{Mode, Outcome};

#[test]
fn client_disconnect_mid_stream_cancels_and_records() {
    let f = fleet(Personality::Vllm, Mode::Model);
    let addr = f.addr("b").expect("addr");
    let mut s = connect(addr);
    // 2000 tokens at ~7 ms each: far longer than the test.
    send(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(true, false, 2000),
    );
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("«r1:2»") {
        let n = s.read(&mut buf).expect("read");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(f.stats("b").expect("stats").active_streams, 1);
    assert_eq!(f.gauges("b").expect("gauges").running, 1);
    let closed_at = Instant::now();
    drop(s);
    let recs = wait_records(&f, 1);
    let detect = closed_at.elapsed();
    let r = &recs[0];
    assert_eq!(r.outcome, Outcome::ClientClosed);
    let ended = r.ended_at_us.expect("end time");
    assert!(ended > r.first_token_at_us.expect("first"));
    assert!(
        detect < Duration::from_millis(500),
        "detected after {detect:?}"
    );
    assert!(r.tokens_emitted >= 3 && r.tokens_emitted < 2000);
    let stats = f.stats("b").expect("stats");
    assert_eq!(stats.active_streams, 0);
    assert_eq!(stats.client_disconnects, 1);
    assert!(
        eventually(|| f
            .gauges("b")
            .is_some_and(|g| g.running == 0 && g.waiting == 0)),
        "engine request cancelled"
    );
}

#[test]
fn client_disconnect_while_waiting_for_non_streaming_answer() {
    let f = fleet(Personality::Sglang, Mode::Model);
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(false, false, 2000),
    );
    assert!(eventually(|| f.gauges("b").is_some_and(|g| g.running == 1)));
    drop(s);
    let r = &wait_records(&f, 1)[0];
    assert_eq!(r.outcome, Outcome::ClientClosed);
    assert!(eventually(|| f.gauges("b").is_some_and(|g| g.running == 0)));
    assert_eq!(f.stats("b").expect("stats").active_streams, 0);
}
