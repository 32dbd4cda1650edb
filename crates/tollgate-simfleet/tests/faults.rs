//! Every fault knob does exactly what the spec says, per request (header) and per backend
//! (`set_fault`, with and without `count`).
// Test helpers outside #[test] fns are test code too (.clippy.toml only exempts #[test] fns).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{Fleet, Mode, Outcome};

const CHAT: &str = "/v1/chat/completions";
const FAULT: &str = "x-simfleet-fault";

fn instant() -> Fleet {
    fleet(Personality::Vllm, Mode::Instant)
}

fn raw_exchange(f: &Fleet, fault: &str, body: &str) -> (Vec<u8>, Option<ErrorKind>) {
    let mut s = connect(f.addr("b").expect("addr"));
    send(&mut s, "POST", CHAT, &[(FAULT, fault)], body);
    read_raw(&mut s)
}

#[test]
fn status_with_retry_after_and_json_error() {
    let f = instant();
    let r = request(
        f.addr("b").expect("addr"),
        "POST",
        CHAT,
        &[(FAULT, "status=429,retry_after=7")],
        &chat(false, false, 2),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["code"], 429);
    for s in [500, 502, 503] {
        let r = request(
            f.addr("b").expect("addr"),
            "POST",
            CHAT,
            &[(FAULT, &format!("status={s}"))],
            &chat(true, false, 2),
        );
        assert_eq!(r.status, s);
        assert!(r.header("retry-after").is_none());
    }
    let recs = wait_records(&f, 4);
    assert_eq!(recs[0].outcome, Outcome::Fault("status=429".into()));
}

#[test]
fn refuse_resets_before_any_byte() {
    let f = instant();
    let (bytes, err) = raw_exchange(&f, "refuse", &chat(false, false, 2));
    assert!(bytes.is_empty());
    assert_eq!(err, Some(ErrorKind::ConnectionReset));
}

#[test]
fn set_refusing_closes_and_reopens_the_port() {
    let f = instant();
    let addr = f.addr("b").expect("addr");
    f.set_refusing("b", true);
    let e = std::net::TcpStream::connect(addr).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    f.set_refusing("b", false);
    assert_eq!(
        request(addr, "POST", CHAT, &[], &chat(false, false, 2)).status,
        200
    );
}

#[test]
fn reset_after_k_tokens() {
    for f in [instant(), fast_model(Personality::Vllm)] {
        let (bytes, err) = raw_exchange(&f, "reset_after=3", &chat(true, false, 10));
        assert_eq!(err, Some(ErrorKind::ConnectionReset));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("«r").count(), 3, "{text}");
        assert!(!text.contains("[DONE]"));
        let rec = wait_records(&f, 1).remove(0);
        assert_eq!(rec.tokens_emitted, 3);
        assert_eq!(rec.outcome, Outcome::Fault("reset_after=3".into()));
        assert!(eventually(|| f
            .stats("b")
            .is_some_and(|s| s.active_streams == 0)));
    }
}

#[test]
fn close_after_k_tokens_fin_without_done() {
    let f = fast_model(Personality::Vllm);
    let (bytes, err) = raw_exchange(&f, "close_after=2", &chat(true, true, 10));
    assert_eq!(err, None, "clean FIN");
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.matches("«r").count(), 2);
    assert!(!text.contains("[DONE]") && !text.contains("finish_reason\":\"length"));
    assert!(!text.ends_with("0\r\n\r\n"), "chunked body is cut short");
    let (bytes, _) = raw_exchange(&f, "close_after=2,chunked_end", &chat(true, true, 10));
    assert!(
        bytes.ends_with(b"\r\n0\r\n\r\n"),
        "chunked_end writes the terminator"
    );
}

#[test]
fn stall_after_pauses_mid_stream() {
    let f = instant();
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        CHAT,
        &[(FAULT, "stall_after=2:300")],
        &chat(true, false, 4),
    );
    let t0 = Instant::now();
    let r = read_response(&mut s, &mut Vec::new()).expect("resp");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_sequential(&contents(&r.events()), 64);
    let rec = wait_records(&f, 1).remove(0);
    let first = rec.first_token_at_us.expect("first");
    assert!(rec.ended_at_us.expect("end") - first >= 300_000);
    assert!(
        first - rec.started_at_us < 200_000,
        "tokens before the stall are not delayed"
    );
}

#[test]
fn slow_first_byte_delays_the_status_line() {
    let f = instant();
    let mut s = connect(f.addr("b").expect("addr"));
    let t0 = Instant::now();
    send(
        &mut s,
        "POST",
        CHAT,
        &[(FAULT, "slow_first_byte=250")],
        &chat(false, false, 2),
    );
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut s, &mut b).expect("byte");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(&b, b"H");
}

fn dechunk(raw: &[u8]) -> String {
    let text_start = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let mut body = Vec::new();
    let mut rest = &raw[text_start..];
    while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..p]).expect("hex"), 16).expect("hex");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[p + 2..p + 2 + size]);
        rest = &rest[p + 2 + size + 2..];
    }
    String::from_utf8(body).expect("utf8")
}

#[test]
fn malformed_variants() {
    let f = instant();
    let (raw, _) = raw_exchange_close(&f, "malformed=cr_only");
    let body = dechunk(&raw);
    assert!(body.contains("}\r\rdata: ") && !body.contains('\n'));
    let (raw, _) = raw_exchange_close(&f, "malformed=no_blank_line");
    let body = dechunk(&raw);
    assert!(body.contains("}\ndata: ") && !body.contains("\n\n"));
    let (raw, _) = raw_exchange_close(&f, "malformed=huge_line");
    let body = dechunk(&raw);
    let longest = body.split('\n').map(str::len).max().unwrap_or(0);
    assert!(longest >= 2 * 1024 * 1024, "longest line {longest}");
}

fn raw_exchange_close(f: &Fleet, fault: &str) -> (Vec<u8>, Option<ErrorKind>) {
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        CHAT,
        &[(FAULT, fault), ("connection", "close")],
        &chat(true, false, 3),
    );
    read_raw(&mut s)
}

#[test]
fn no_usage_and_usage_lies() {
    let f = fast_model(Personality::Vllm);
    let addr = f.addr("b").expect("addr");
    let r = request(
        addr,
        "POST",
        CHAT,
        &[(FAULT, "no_usage")],
        &chat(true, true, 3),
    );
    assert!(!r.text().contains("usage"));
    let r = request(
        addr,
        "POST",
        CHAT,
        &[(FAULT, "no_usage")],
        &chat(false, false, 3),
    );
    assert!(r.json().get("usage").is_none());
    let r = request(
        addr,
        "POST",
        CHAT,
        &[(FAULT, "usage_lies=99")],
        &chat(true, true, 3),
    );
    let ev = r.events();
    assert_sequential(&contents(&ev), 3);
    let u: serde_json::Value = serde_json::from_str(&ev[ev.len() - 2]).expect("usage chunk");
    assert_eq!(u["usage"]["completion_tokens"], 99);
    let m = fleet(Personality::Mindie, Mode::Instant);
    let r = request(
        m.addr("b").expect("addr"),
        "POST",
        CHAT,
        &[(FAULT, "usage_lies=5")],
        &chat(true, false, 3),
    );
    assert!(r.text().contains(r#""completion_tokens":5"#));
}

#[test]
fn text_is_split_into_content_events_at_char_boundaries() {
    let f = instant();
    // "héllo wörld": 'é' occupies bytes 1..3; a cut at 2 moves down to 1.
    let r = request(
        f.addr("b").expect("addr"),
        "POST",
        CHAT,
        &[(FAULT, "text=h%C3%A9llo%20w%C3%B6rld,chunks=2:6")],
        &chat(true, true, 3),
    );
    let c = contents(&r.events());
    assert_eq!(c, vec!["h", "éllo", " wörld"]);
    assert!(r.text().contains(r#""completion_tokens":"#));
}

#[test]
fn raw_split_cuts_sse_bytes_across_writes() {
    let f = instant();
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        CHAT,
        &[
            (FAULT, "text=h%C3%A9llo,raw_split,chunks=2"),
            ("connection", "close"),
        ],
        &chat(true, false, 3),
    );
    let (raw, _) = read_raw(&mut s);
    // Parse HTTP chunks: the text is cut inside 'é' (byte 2 of "héllo"), across two HTTP chunks.
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut rest = &raw[start..];
    while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..p]).expect("hex"), 16).expect("hex");
        if size == 0 {
            break;
        }
        chunks.push(rest[p + 2..p + 2 + size].to_vec());
        rest = &rest[p + 2 + size + 2..];
    }
    let cut = chunks
        .iter()
        .position(|c| c.ends_with(b"\"h\xC3"))
        .expect("a chunk ends mid-character");
    assert!(chunks[cut + 1].starts_with(b"\xA9llo\""));
    let whole: Vec<u8> = chunks.concat();
    let events = sse_data(&String::from_utf8(whole).expect("utf8 once joined"));
    assert_eq!(contents(&events), vec!["héllo"]);
}

#[test]
fn cl_te_sends_both_framing_headers() {
    let f = instant();
    let (raw, _) = raw_exchange_close_body(&f, "cl_te");
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(text.contains("content-length: ") && text.contains("transfer-encoding: chunked"));
    assert!(text.ends_with("0\r\n\r\n"));
}

#[test]
fn extra_bytes_follow_the_body() {
    let f = instant();
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        CHAT,
        &[(FAULT, "extra_bytes")],
        &chat(false, false, 2),
    );
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf).expect("resp");
    assert_eq!(r.status, 200);
    while buf.len() < 20 {
        let mut b = [0u8; 64];
        let n = std::io::Read::read(&mut s, &mut b).expect("read");
        buf.extend_from_slice(&b[..n]);
    }
    assert!(buf.starts_with(b"SIMFLEET-EXTRA-BYTES"));
}

fn raw_exchange_close_body(f: &Fleet, fault: &str) -> (Vec<u8>, Option<ErrorKind>) {
    let mut s = connect(f.addr("b").expect("addr"));
    send(
        &mut s,
        "POST",
        CHAT,
        &[(FAULT, fault), ("connection", "close")],
        &chat(false, false, 2),
    );
    read_raw(&mut s)
}

#[test]
fn unhealthy_health_endpoints_503() {
    let f = fleet(Personality::Vllm, Mode::Instant);
    let addr = f.addr("b").expect("addr");
    assert_eq!(
        request(addr, "GET", "/health", &[(FAULT, "unhealthy")], "").status,
        503
    );
    f.set_fault("b", Some("unhealthy"), None).expect("set");
    assert_eq!(request(addr, "GET", "/health", &[], "").status, 503);
    assert_eq!(
        request(addr, "POST", CHAT, &[], &chat(false, false, 2)).status,
        200,
        "inference unaffected"
    );
    f.set_fault("b", None, None).expect("clear");
    assert_eq!(request(addr, "GET", "/health", &[], "").status, 200);
    let m = fleet(Personality::Mindie, Mode::Instant);
    m.set_fault("b", Some("unhealthy"), None).expect("set");
    let mgmt = m.backends()[0].management_addr.expect("mgmt");
    assert_eq!(
        request(mgmt, "GET", "/v2/health/ready", &[], "").status,
        503
    );
}

#[test]
fn set_fault_with_count_applies_to_next_n_requests_only() {
    let f = instant();
    let addr = f.addr("b").expect("addr");
    f.set_fault("b", Some("status=503,retry_after=1"), Some(2))
        .expect("set");
    let codes: Vec<u16> = (0..4)
        .map(|_| request(addr, "POST", CHAT, &[], &chat(false, false, 2)).status)
        .collect();
    assert_eq!(codes, vec![503, 503, 200, 200]);
    assert!(f.set_fault("b", Some("bogus"), None).is_err());
    assert!(f.set_fault("nope", Some("refuse"), None).is_err());
}

#[test]
fn bad_fault_header_is_a_400() {
    let f = instant();
    let r = request(
        f.addr("b").expect("addr"),
        "POST",
        CHAT,
        &[(FAULT, "explode")],
        &chat(false, false, 2),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn backend_fault_probability_is_seeded() {
    let run = || {
        let mut cfg = tollgate_simfleet::FleetConfig::single("b", Personality::Vllm, Mode::Instant);
        cfg.seed = 3;
        cfg.backends[0].faults = Some("status=500".into());
        cfg.backends[0].fault_probability = 0.5;
        let f = Fleet::start(cfg).expect("start");
        let addr = f.addr("b").expect("addr");
        (0..20)
            .map(|_| request(addr, "POST", CHAT, &[], &chat(false, false, 1)).status)
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.contains(&500) && a.contains(&200));
}
