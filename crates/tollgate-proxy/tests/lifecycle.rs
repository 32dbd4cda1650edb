//! Lifecycle: graceful shutdown drains in-flight streams; reloads under load fail no request;
//! a bad config reload is rejected and the old snapshot keeps serving.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

#[test]
fn shutdown_drains_in_flight_streams_then_stops_accepting() {
    let mut env = start(&[("a", Personality::Vllm, Mode::Model)], "");
    let addr = env.addr;
    // A stream of 200 tokens takes ~1.4 s on the simulated H100 model.
    let t = std::thread::spawn(move || post(addr, "/v1/chat/completions", &chat(true, 200)));
    std::thread::sleep(Duration::from_millis(200));
    let gw = env.gw.take().unwrap();
    gw.shutdown();
    std::thread::sleep(Duration::from_millis(200));
    // New connections are no longer served.
    let refused = std::net::TcpStream::connect(addr).map(|mut s| {
        let _ = s.write_all(&post_req("/v1/chat/completions", &chat(false, 1), ""));
        read_response(&mut s).is_none()
    });
    assert!(
        refused.unwrap_or(true),
        "a new request was served while draining"
    );
    let r = t.join().unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("[DONE]"),
        "in-flight stream was cut: {}",
        &text[text.len().saturating_sub(200)..]
    );
    assert_eq!(text.matches('«').count(), 200);
    gw.join();
}

#[test]
fn reload_in_the_middle_of_a_load_run_fails_no_request() {
    let env = instant2();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut hs = vec![];
    for i in 0..4 {
        let (stop, ok, bad, addr) = (stop.clone(), ok.clone(), bad.clone(), env.addr);
        hs.push(std::thread::spawn(move || {
            let mut s = connect(addr);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 5000 {
                n += 1;
                let stream = i % 2 == 0;
                if s.write_all(&post_req("/v1/chat/completions", &chat(stream, 2), ""))
                    .is_err()
                {
                    s = connect(addr);
                    continue;
                }
                match read_response(&mut s) {
                    Some(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let gw = env.gw();
    for g in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        // Alternate the backend order so the new snapshot really differs.
        let text = if g % 2 == 0 {
            env.config_text
                .replace("backends = [\"a\",\"b\"]", "backends = [\"b\",\"a\"]")
        } else {
            env.config_text.clone()
        };
        std::fs::write(&env.config_path, text).unwrap();
        assert_eq!(gw.reload().unwrap(), g + 2);
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    assert_eq!(gw.generation(), 6);
}

#[test]
fn a_bad_config_reload_is_rejected_and_the_old_config_keeps_serving() {
    let env = instant2();
    std::fs::write(
        &env.config_path,
        env.config_text.replace("kind = \"vllm\"", "kind = \"vlm\""),
    )
    .unwrap();
    let err = env.gw().reload().unwrap_err();
    assert!(err.contains("backends[0].kind"), "{err}");
    // Through the admin endpoint too, with the reason in the body.
    let r = raw(
        env.admin,
        b"POST /admin/reload HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown backend kind")
    );
    assert_eq!(env.gw().generation(), 1);
    assert_eq!(
        post(env.addr, "/v1/chat/completions", &chat(false, 2)).status,
        200
    );
    let m = metrics(&env);
    assert!(
        m.contains("tollgate_config_reload_total{result=\"error\"} 2"),
        "{m}"
    );
    assert!(m.contains("tollgate_config_generation 1"), "{m}");
    // A good file is picked up by the admin endpoint.
    std::fs::write(&env.config_path, &env.config_text).unwrap();
    let r = raw(
        env.admin,
        b"POST /admin/reload HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["generation"], 2);
}

#[test]
fn epoll_fallback_driver_serves_too() {
    let fleet = fleet_of(&[("a", Personality::Vllm, Mode::Instant)]);
    let text = format!("io_driver = \"epoll\"\n{}", config_for(&fleet, ""));
    let env = start_with(fleet, text);
    assert_eq!(
        post(env.addr, "/v1/chat/completions", &chat(true, 2)).status,
        200
    );
    let m = metrics(&env);
    assert!(m.contains("driver=\"epoll\""), "{m}");
}
