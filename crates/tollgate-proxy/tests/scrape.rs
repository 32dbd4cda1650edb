//! The control thread's blocking scraper and prober against the simulated fleet (vLLM, SGLang,
//! MindIE with separate management and metrics listeners), plus canned servers for the framing,
//! TLS and deadline edge cases the fleet does not produce.

// Test threads may block, sleep and unwrap; the data-path lint rules do not apply here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tollgate_proxy::scrape::{Endpoint, ScrapeTarget, get, probe, scrape};
use tollgate_route::Scraped;
use tollgate_route::adapter::BackendKind;
use tollgate_simfleet::engine::{EngineParams, Personality};
use tollgate_simfleet::{Fleet, FleetConfig, Mode};

const T: Duration = Duration::from_secs(2);

fn fleet(p: Personality, speed_factor: f64) -> Fleet {
    let mut cfg = FleetConfig::single("b", p, Mode::Model);
    cfg.seed = 11;
    cfg.backends[0].engine = EngineParams {
        speed_factor,
        ..EngineParams::default()
    };
    Fleet::start(cfg).expect("fleet starts")
}

fn kind_of(p: Personality) -> BackendKind {
    match p {
        Personality::Vllm => BackendKind::Vllm,
        Personality::Sglang => BackendKind::Sglang,
        Personality::Mindie => BackendKind::Mindie,
    }
}

fn target(f: &Fleet) -> ScrapeTarget {
    let b = f.backends().remove(0);
    ScrapeTarget {
        kind: kind_of(b.personality),
        api: Endpoint::http(b.api_addr),
        management: b.management_addr.map(Endpoint::http),
        metrics: b.metrics_addr.map(Endpoint::http),
    }
}

/// An address nothing listens on.
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Starts a streaming chat request that stays in the engine for a long time; the returned socket
/// keeps it alive (dropping it cancels the request).
fn slow_request(addr: SocketAddr) -> TcpStream {
    let body = serde_json::json!({
        "model": "llama-3-8b",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "stream": true,
        "max_tokens": 2000,
    })
    .to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// A complete non-streaming chat request with this prompt.
fn chat_once(addr: SocketAddr, prompt: &str) {
    let body = serde_json::json!({
        "model": "llama-3-8b",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 2,
    })
    .to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// Polls `scrape` until `ok` holds (or panics after 10 s).
fn scrape_until(t: &ScrapeTarget, ok: impl Fn(&Scraped) -> bool) -> Scraped {
    let start = Instant::now();
    loop {
        let s = scrape(t, None, T).unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never got there: {s:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Serves one canned `response` per accepted connection, in order, after reading the request
/// head; each request head is sent on the channel.
fn canned(responses: Vec<Vec<u8>>) -> (SocketAddr, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for resp in responses {
            let Ok((mut s, _)) = l.accept() else { return };
            let head = read_head(&mut s);
            let _ = tx.send(head);
            let _ = s.write_all(&resp);
        }
    });
    (addr, rx)
}

fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn vllm_at(addr: SocketAddr) -> ScrapeTarget {
    ScrapeTarget {
        kind: BackendKind::Vllm,
        api: Endpoint::http(addr),
        management: None,
        metrics: None,
    }
}

const VLLM_BODY: &str = "vllm:num_requests_running{model_name=\"m\"} 2\n\
vllm:num_requests_waiting{model_name=\"m\"} 1\n\
vllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n";

fn assert_vllm_body(s: &Scraped) {
    assert_eq!(
        (s.running, s.queue, s.kv_frac),
        (Some(2.0), Some(1.0), Some(0.5)),
        "{s:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against the simulated fleet.

#[test]
fn vllm_metrics_yield_queue_running_kv_and_capacity() {
    let f = fleet(Personality::Vllm, 4.0);
    let s = scrape(&target(&f), None, T).unwrap();
    assert_eq!(s.queue, Some(0.0));
    assert_eq!(s.running, Some(0.0));
    assert_eq!(s.kv_frac, Some(0.0));
    let g = f.gauges("b").unwrap();
    assert_eq!(
        s.kv_capacity_tokens,
        Some(f64::from(g.block_size) * g.num_blocks as f64)
    );
    assert_eq!(s.prefix_counters, Some((0.0, 0.0)));
    assert_eq!(s.preemptions, Some(0.0));
}

#[test]
fn sglang_reads_v1_loads_and_skips_metrics_fallback() {
    let f = fleet(Personality::Sglang, 4.0);
    let s = scrape(&target(&f), None, T).unwrap();
    assert_eq!(
        (s.queue, s.running, s.kv_frac),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    assert_eq!(s.kv_capacity_tokens, Some(430_000.0));
    assert_eq!(s.prefix_hit, Some(0.0));
    assert_eq!(
        f.stats("b").unwrap().requests,
        1,
        "only /v1/loads was fetched"
    );
}

#[test]
fn mindie_reads_status_on_management_and_counters_on_metrics_listener() {
    let f = fleet(Personality::Mindie, 4.0);
    let t = target(&f);
    assert!(t.management.is_some() && t.metrics.is_some());
    let s = scrape(&t, None, T).unwrap();
    assert_eq!(
        (s.queue, s.running, s.kv_frac),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    let g = f.gauges("b").unwrap();
    assert_eq!(s.kv_capacity_tokens, Some(g.num_blocks as f64 * 128.0));
    assert_eq!(
        s.prefix_counters,
        Some((0.0, 0.0)),
        "from the metrics listener"
    );
    assert_eq!(s.preemptions, Some(0.0));
}

#[test]
fn mindie_with_dead_metrics_listener_still_returns_status_signals() {
    let f = fleet(Personality::Mindie, 4.0);
    let mut t = target(&f);
    t.metrics = Some(Endpoint::http(dead_addr()));
    let s = scrape(&t, None, T).unwrap();
    assert_eq!(s.queue, Some(0.0));
    assert!(s.kv_frac.is_some() && s.kv_capacity_tokens.is_some());
    assert_eq!((s.prefix_counters, s.preemptions), (None, None));
}

#[test]
fn requests_in_flight_show_as_running() {
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        // 20x slower than an H100: a 2000-token answer stays in the batch for the whole test.
        let f = fleet(p, 0.05);
        let t = target(&f);
        let held: Vec<TcpStream> = (0..3).map(|_| slow_request(t.api.addr)).collect();
        let s = scrape_until(&t, |s| s.running.unwrap_or(0.0) >= 3.0);
        assert_eq!(s.queue, Some(0.0), "{p:?}: {s:?}");
        assert!(s.kv_frac.unwrap() > 0.0, "{p:?}: {s:?}");
        drop(held);
    }
}

#[test]
fn prefix_hit_comes_from_counter_deltas_between_scrapes() {
    let f = fleet(Personality::Vllm, 4.0);
    let t = target(&f);
    let first = scrape(&t, None, T).unwrap();
    assert_eq!(first.prefix_hit, None);
    let prompt = "The shared system prompt for every tenant. ".repeat(40);
    chat_once(t.api.addr, &prompt);
    chat_once(t.api.addr, &prompt);
    let second = scrape(&t, Some(&first), T).unwrap();
    let hit = second.prefix_hit.expect("interval hit rate");
    assert!(
        hit > 0.3 && hit < 1.0,
        "second identical prompt should hit: {second:?}"
    );
}

#[test]
fn probe_passes_then_fails_with_503_when_unhealthy() {
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        let f = fleet(p, 4.0);
        let t = target(&f);
        assert_eq!(probe(&t, T), Some(Ok(())), "{p:?}");
        f.set_fault("b", Some("unhealthy"), None).unwrap();
        let e = probe(&t, T).unwrap().unwrap_err();
        assert!(
            e.contains("HTTP 503") && e.contains("unhealthy"),
            "{p:?}: {e}"
        );
        if p == Personality::Mindie {
            assert!(e.contains("/v2/health/ready"), "{e}");
            assert!(
                e.contains(&t.management.as_ref().unwrap().addr.to_string()),
                "{e}"
            );
        }
    }
}

#[test]
fn refused_connections_fail_fast() {
    let f = fleet(Personality::Vllm, 4.0);
    let t = target(&f);
    f.set_refusing("b", true);
    let start = Instant::now();
    let e = scrape(&t, None, T).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("connecting") && e.contains("/metrics"), "{e}");
    assert!(e.contains(&t.api.addr.to_string()), "{e}");
    assert!(probe(&t, T).unwrap().is_err());
    f.set_refusing("b", false);
    assert!(
        scrape(&t, None, T).is_ok(),
        "recovers once the port reopens"
    );
}

#[test]
fn openai_has_nothing_to_scrape_or_probe() {
    let t = ScrapeTarget {
        kind: BackendKind::Openai,
        api: Endpoint::http(dead_addr()),
        management: None,
        metrics: None,
    };
    assert_eq!(scrape(&t, None, T), Ok(Scraped::default()));
    assert_eq!(probe(&t, T), None);
}

// ---------------------------------------------------------------------------------------------
// Deadlines.

#[test]
fn server_that_accepts_and_never_answers_times_out_on_the_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let held: Vec<_> = l.incoming().take(2).collect();
        thread::sleep(Duration::from_secs(5));
        drop(held);
    });
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let e = scrape(&vllm_at(addr), None, timeout).unwrap_err();
    let took = start.elapsed();
    assert!(e.contains("timed out"), "{e}");
    assert!(
        took >= Duration::from_millis(250) && took < timeout + Duration::from_millis(200),
        "{took:?}"
    );
    let start = Instant::now();
    assert!(
        probe(&vllm_at(addr), timeout)
            .unwrap()
            .unwrap_err()
            .contains("timed out")
    );
    assert!(start.elapsed() < timeout + Duration::from_millis(200));
}

#[test]
fn trickling_server_cannot_stretch_the_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
        for _ in 0..200 {
            if s.write_all(b"a").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let e = get(&Endpoint::http(addr), "/metrics", timeout).unwrap_err();
    assert!(e.contains("timed out"), "{e}");
    assert!(
        start.elapsed() < timeout + Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Framing and the request itself.

#[test]
fn request_head_carries_path_host_bearer_and_close() {
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{VLLM_BODY}",
        VLLM_BODY.len()
    );
    let (addr, heads) = canned(vec![resp.into_bytes()]);
    let t = ScrapeTarget {
        kind: BackendKind::Vllm,
        api: Endpoint {
            addr,
            host_header: "vllm-0.internal:8000".into(),
            base_path: "/tenant-a/".into(),
            tls: None,
            bearer: Some("s3cret".into()),
        },
        management: None,
        metrics: None,
    };
    assert_vllm_body(&scrape(&t, None, T).unwrap());
    let head = heads.recv().unwrap();
    assert!(
        head.starts_with("GET /tenant-a/metrics HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nHost: vllm-0.internal:8000\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nAuthorization: Bearer s3cret\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert!(
        !format!("{:?}", t.api).contains("s3cret"),
        "Debug redacts the token"
    );
}

#[test]
fn chunked_close_delimited_and_interim_responses_are_read_whole() {
    let (a, b) = VLLM_BODY.split_at(40);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
        a.len(),
        b.len()
    );
    let close = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{VLLM_BODY}");
    let interim = format!(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{VLLM_BODY}",
        VLLM_BODY.len()
    );
    let (addr, _heads) = canned(vec![chunked.into(), close.into(), interim.into()]);
    for _ in 0..3 {
        assert_vllm_body(&scrape(&vllm_at(addr), None, T).unwrap());
    }
}

#[test]
fn error_statuses_truncation_and_garbage_are_errors() {
    let big = 5 << 20;
    let responses: Vec<Vec<u8>> = vec![
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 34\r\n\r\n{\"detail\":\"metrics not enabled\"}\r\n".to_vec(),
        format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n").into_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nvllm:num_requests_running 1\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n<html></html>".to_vec(),
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
    ];
    let wants = [
        "HTTP 404 Not Found: {\"detail\":\"metrics not enabled\"}",
        "exceeds",
        "closed after",
        "line 1",
        "malformed response head",
        "chunked body",
    ];
    let (addr, _heads) = canned(responses);
    for want in wants {
        let e = scrape(&vllm_at(addr), None, T).unwrap_err();
        assert!(e.contains(want), "want {want:?} in {e}");
        assert!(e.starts_with(&format!("http://{addr}/metrics: ")), "{e}");
    }
}

#[test]
fn sglang_falls_back_to_metrics_when_v1_loads_is_missing() {
    let metrics = "sglang:num_running_reqs 4\nsglang:num_queue_reqs 2\nsglang:token_usage 0.3\n\
                   sglang:max_total_num_tokens 1000\nsglang:cache_hit_rate 0.5\n";
    let (addr, heads) = canned(vec![
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{metrics}",
            metrics.len()
        )
        .into(),
    ]);
    let t = ScrapeTarget {
        kind: BackendKind::Sglang,
        api: Endpoint::http(addr),
        management: None,
        metrics: None,
    };
    let s = scrape(&t, None, T).unwrap();
    assert_eq!(
        (s.running, s.queue, s.kv_frac),
        (Some(4.0), Some(2.0), Some(0.3))
    );
    assert!(
        heads
            .recv()
            .unwrap()
            .starts_with("GET /v1/loads?include=core ")
    );
    assert!(heads.recv().unwrap().starts_with("GET /metrics "));
}

// ---------------------------------------------------------------------------------------------
// TLS (MindIE serves HTTPS by default).

struct TlsServer {
    addr: SocketAddr,
    root: rustls::pki_types::CertificateDer<'static>,
}

/// A one-connection-at-a-time HTTPS server for `localhost` answering every request with `body`.
fn tls_server(body: &'static str, connections: usize) -> TlsServer {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        ck.signing_key.serialize_der(),
    ));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let cfg = Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = l.accept() else { return };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let _ = read_head(&mut s);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    });
    TlsServer { addr, root: cert }
}

fn tls_endpoint(srv: &TlsServer, name: &str) -> Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(srv.root.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    Endpoint {
        addr: srv.addr,
        host_header: "localhost".into(),
        base_path: String::new(),
        tls: Some((Arc::new(cfg), name)),
        bearer: None,
    }
}

#[test]
fn mindie_status_and_probe_over_https() {
    const STATUS: &str = r#"{"resource":{"waitingRequestNum":2,"runningRequestNum":9,"freeNpuBlockNums":75,"totalNpuBlockNums":100}}"#;
    let srv = tls_server(STATUS, 3);
    let mgmt = tls_endpoint(&srv, "localhost");
    let t = ScrapeTarget {
        kind: BackendKind::Mindie,
        api: Endpoint::http(dead_addr()),
        management: Some(mgmt.clone()),
        metrics: Some(Endpoint::http(dead_addr())),
    };
    let s = scrape(&t, None, T).unwrap();
    assert_eq!(
        (s.queue, s.running, s.kv_frac),
        (Some(2.0), Some(9.0), Some(0.25))
    );
    assert_eq!(s.kv_capacity_tokens, Some(12_800.0));
    assert_eq!(probe(&t, T), Some(Ok(())));
    assert_eq!(get(&mgmt, "/v1/status", T).unwrap(), STATUS.as_bytes());
}

#[test]
fn https_with_the_wrong_server_name_is_refused() {
    let srv = tls_server("{}", 1);
    let e = get(
        &tls_endpoint(&srv, "not-localhost.example"),
        "/v1/status",
        T,
    )
    .unwrap_err();
    assert!(
        e.contains("TLS handshake") && e.to_lowercase().contains("certificate"),
        "{e}"
    );
}
