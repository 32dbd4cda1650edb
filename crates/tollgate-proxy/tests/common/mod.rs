//! Test harness: an in-process gateway in front of an in-process simulated fleet, and a tiny
//! blocking HTTP/1.1 client written independently of the gateway's codec (so a codec bug cannot
//! hide itself in both ends).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{BackendConfig, Fleet, FleetConfig, Mode};

pub struct Env {
    pub fleet: Fleet,
    pub gw: Option<tollgate_proxy::ServerHandle>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    pub config_text: String,
}

impl Env {
    pub fn gw(&self) -> &tollgate_proxy::ServerHandle {
        self.gw.as_ref().unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(g) = self.gw.take() {
            g.join();
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

pub fn fleet_of(specs: &[(&str, Personality, Mode)]) -> Fleet {
    let backends = specs
        .iter()
        .map(|(n, p, m)| BackendConfig {
            name: n.to_string(),
            personality: *p,
            mode: *m,
            model: "m".into(),
            default_max_tokens: 8,
            instant_events: 8,
            ..BackendConfig::default()
        })
        .collect();
    Fleet::start(FleetConfig {
        seed: 7,
        threads: 1,
        backends,
    })
    .expect("fleet")
}

/// Gateway config for every backend of `fleet` serving model `m`, plus `extra` TOML.
pub fn config_for(fleet: &Fleet, extra: &str) -> String {
    let mut c = String::from(
        "workers = 2\n[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n",
    );
    // Dataplane tests want a predictable spread (round-robin) unless they configure routing.
    if !extra.contains("[routing]") {
        c.push_str("[routing]\ndefault_policy = \"round_robin\"\n");
    }
    c.push_str(extra);
    c.push('\n');
    let mut names = vec![];
    for b in fleet.backends() {
        // Simulated personalities are named like tollgate backend kinds.
        let kind = b.personality.as_str();
        c.push_str(&format!(
            "[[backends]]\nname = \"{}\"\nurl = \"http://{}\"\nkind = \"{kind}\"\n",
            b.name, b.api_addr
        ));
        names.push(format!("\"{}\"", b.name));
    }
    c.push_str(&format!(
        "[[models]]\nname = \"m\"\nbackends = [{}]\n",
        names.join(",")
    ));
    c
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn start_with(fleet: Fleet, config_text: String) -> Env {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tollgate-test-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, &config_text).unwrap();
    let cfg = tollgate_config::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    let gw = tollgate_proxy::start(cfg, Some(path.clone())).expect("gateway");
    let addr = gw.http_addr.unwrap();
    let admin = gw.admin_addr;
    Env {
        fleet,
        gw: Some(gw),
        addr,
        admin,
        config_path: path,
        config_text,
    }
}

pub fn start(specs: &[(&str, Personality, Mode)], extra: &str) -> Env {
    let fleet = fleet_of(specs);
    let text = config_for(&fleet, extra);
    start_with(fleet, text)
}

pub fn instant2() -> Env {
    start(
        &[
            ("a", Personality::Vllm, Mode::Instant),
            ("b", Personality::Vllm, Mode::Instant),
        ],
        "",
    )
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server closed the connection after this response (EOF seen or `connection: close`).
    pub closed: bool,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {}", self.text()))
    }
}

/// `read` that retries on EINTR (signals from other threads in the test process).
fn rd(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read one response from `s` (Content-Length, chunked or close-delimited).
pub fn read_chunk(s: &mut TcpStream, buf: &mut [u8]) -> usize {
    rd(s, buf).unwrap_or(0)
}

pub fn read_response(s: &mut TcpStream) -> Option<Resp> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = rd(s, &mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut closed = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if status == 100 {
        let mut r = read_response_from(s, rest)?;
        r.headers.insert(0, ("x-test-saw-100".into(), "1".into()));
        return Some(r);
    }
    let body = if let Some(cl) = get("content-length") {
        let n: usize = cl.parse().ok()?;
        while rest.len() < n {
            let k = rd(s, &mut tmp).ok()?;
            if k == 0 {
                return None;
            }
            rest.extend_from_slice(&tmp[..k]);
        }
        rest.truncate(n);
        rest
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            // need a size line
            let line_end = loop {
                if let Some(p) = rest[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + p;
                }
                let k = rd(s, &mut tmp).ok()?;
                if k == 0 {
                    return None;
                }
                rest.extend_from_slice(&tmp[..k]);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[pos..line_end]).ok()?.trim(), 16)
                    .ok()?;
            let data_start = line_end + 2;
            while rest.len() < data_start + size + 2 {
                let k = rd(s, &mut tmp).ok()?;
                if k == 0 {
                    return None;
                }
                rest.extend_from_slice(&tmp[..k]);
            }
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[data_start..data_start + size]);
            pos = data_start + size + 2;
        }
        out
    } else {
        closed = true;
        loop {
            match rd(s, &mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(k) => rest.extend_from_slice(&tmp[..k]),
            }
        }
        rest
    };
    Some(Resp {
        status,
        headers,
        body,
        closed,
    })
}

fn read_response_from(s: &mut TcpStream, _pre: Vec<u8>) -> Option<Resp> {
    read_response(s)
}

/// After a response, is the connection closed by the server? (EOF within 1 s)
pub fn server_closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 1];
    matches!(rd(s, &mut b), Ok(0) | Err(_))
}

pub fn raw(addr: SocketAddr, req: &[u8]) -> Option<Resp> {
    let mut s = connect(addr);
    s.write_all(req).ok()?;
    read_response(&mut s)
}

pub fn post_req(path: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn post(addr: SocketAddr, path: &str, body: &str) -> Resp {
    raw(addr, &post_req(path, body, "")).expect("response")
}

pub fn chat(stream: bool, max_tokens: u32) -> String {
    format!(
        r#"{{"model":"m","stream":{stream},"max_tokens":{max_tokens},"messages":[{{"role":"user","content":"hello there"}}]}}"#
    )
}

/// SSE `data:` payloads of a body.
pub fn data_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data:").map(|d| d.trim().to_string()))
        })
        .collect()
}

pub fn metrics(env: &Env) -> String {
    std::thread::sleep(Duration::from_millis(400)); // one publish interval (250 ms) + margin
    let r = raw(env.admin, b"GET /metrics HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
    r.text()
}

/// The fleet's records once at least `n` exist (records land just after a backend's last
/// write, so a fast client can finish reading before its record is stored).
pub fn records(env: &Env, n: usize) -> Vec<tollgate_simfleet::RequestRecord> {
    let t = std::time::Instant::now();
    loop {
        let r = env.fleet.records();
        if r.len() >= n || t.elapsed() > Duration::from_secs(3) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Governance helpers (governance.rs, cluster.rs): keys files, canary keys, authenticated calls.

/// Prompt tokens the gateway counts for `chat()`: "hello there" (2 tokens) + 4 per message + 3.
pub const CHAT_PROMPT_TOKENS: u64 = 2 + 4 + 3;

/// Canary keys: written to `$TOLLGATE_CANARY_FILE` (scripts/test.sh greps the whole suite's
/// output for the key and its secret part).
pub fn remember(token: &str) {
    use std::io::Write as _;
    if let Ok(p) = std::env::var("TOLLGATE_CANARY_FILE")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    {
        let secret = token.rsplit('_').next().unwrap_or(token);
        let _ = writeln!(f, "{token}\n{secret}");
    }
}

/// A keys file in its own temporary directory (removed on drop).
pub struct Keys {
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl Keys {
    pub fn new(tag: &str) -> Keys {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tollgate-keys-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys.toml");
        Keys { dir, file }
    }
    pub fn consumer(&self, name: &str, tenant: &str) {
        tollgate_auth::add_consumer(&self.file, name, tenant, None).unwrap();
    }
    /// A new key (id, token) for `consumer`, remembered as a canary.
    pub fn key(&self, consumer: &str, models: &[&str]) -> (String, String) {
        let m: Vec<String> = models.iter().map(|s| s.to_string()).collect();
        let k = tollgate_auth::add_key(&self.file, consumer, &m, None, None).unwrap();
        remember(&k.token);
        (k.id, k.token)
    }
    pub fn key_expiring(&self, consumer: &str, expires: &str) -> String {
        let k = tollgate_auth::add_key(&self.file, consumer, &["*".into()], Some(expires), None)
            .unwrap();
        remember(&k.token);
        k.token
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One instant vLLM backend `a` serving `m`, with optional faults.
pub fn fleet_one(faults: Option<&str>, events: u32) -> Fleet {
    Fleet::start(FleetConfig {
        seed: 7,
        threads: 1,
        backends: vec![BackendConfig {
            name: "a".into(),
            personality: Personality::Vllm,
            mode: Mode::Instant,
            model: "m".into(),
            default_max_tokens: 8,
            instant_events: events,
            faults: faults.map(str::to_string),
            ..BackendConfig::default()
        }],
    })
    .expect("fleet")
}

pub fn bearer(t: &str) -> String {
    format!("authorization: Bearer {t}\r\n")
}

/// POST a chat body with extra header lines.
pub fn call(env: &Env, body: &str, headers: &str) -> Resp {
    raw(env.addr, &post_req("/v1/chat/completions", body, headers)).expect("response")
}

/// No canary (the whole key, or its secret part after the id) in anything the gateway said.
pub fn assert_no_leak(tokens: &[&str], texts: &[&str]) {
    for t in tokens {
        let secret = t.rsplit('_').next().unwrap();
        for x in texts {
            assert!(!x.contains(t), "key leaked: {x}");
            assert!(!x.contains(secret), "key secret leaked: {x}");
        }
    }
}
