//! Backend load scraping and active health probes, for the control thread.
//!
//! Not on a monoio worker: these are blocking `std::net` calls, made one backend at a time by the
//! control thread, which publishes the results as one immutable `LoadSnapshot`. What each kind
//! exposes, where, and how to read it is `tollgate_route::adapter`; this file only moves bytes.
//!
//! The client is a minimal HTTP/1.1 `GET` with `Connection: close`: plain TCP or rustls (MindIE
//! serves HTTPS by default), the response head parsed by `tollgate_http::parse_response_head`
//! (the same strict parser the data path uses on upstream answers), the body read by
//! `Content-Length`, chunked (`tollgate_http::ChunkedDecoder`) or until EOF, capped at
//! [`MAX_BODY_BYTES`]. **One deadline bounds the whole exchange**: connect, TLS handshake, write
//! and every read get only what is left of it, so a backend that accepts and never answers, or
//! trickles a byte at a time, costs the control thread at most the timeout.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tollgate_http::{ChunkedDecoder, HeadLimits, Progress, ResponseFraming, parse_response_head};
use tollgate_route::Scraped;
use tollgate_route::adapter::{self, BackendKind, Listener};

/// Largest response body read; more is an error. Same cap as the adapter's parser
/// (`tollgate_route::adapter::MAX_BODY_BYTES`): raising one without the other only moves where
/// an oversized body is refused.
pub const MAX_BODY_BYTES: usize = adapter::MAX_BODY_BYTES;

/// Bytes per `read` call. Metrics bodies are tens of KiB; 16 KiB keeps the syscalls few and the
/// stack buffer small.
const READ_CHUNK: usize = 16 * 1024;

/// Characters of a non-2xx body quoted in the error, so `/admin/backends` says *why* (e.g. a
/// JSON `message`) without carrying a whole error page.
const ERROR_SNIPPET: usize = 160;

/// One listener of a backend.
#[derive(Clone)]
pub struct Endpoint {
    /// Address to connect to (resolved at config load; the control thread does no DNS either).
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host_header: String,
    /// Path prefix prepended to every path (`""` or e.g. `/mindie`).
    pub base_path: String,
    /// TLS client config and the server name to verify, for HTTPS listeners.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Sent as `Authorization: Bearer <token>` when set (e.g. SGLang `--api-key`).
    pub bearer: Option<String>,
}

impl Endpoint {
    /// A plain-HTTP endpoint with `Host: <addr>`, no base path and no credentials.
    pub fn http(addr: SocketAddr) -> Self {
        Self {
            addr,
            host_header: addr.to_string(),
            base_path: String::new(),
            tls: None,
            bearer: None,
        }
    }

    /// `http[s]://addr/base/path`, for messages (never includes the credential).
    pub fn describe(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, self.target(path))
    }

    fn target(&self, path: &str) -> String {
        format!("{}{path}", self.base_path.trim_end_matches('/'))
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("host_header", &self.host_header)
            .field("base_path", &self.base_path)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What to scrape and probe for one backend.
#[derive(Clone, Debug)]
pub struct ScrapeTarget {
    /// Backend kind: decides the endpoints and parsers.
    pub kind: BackendKind,
    /// API listener.
    pub api: Endpoint,
    /// MindIE management listener; `None` = the API listener serves it.
    pub management: Option<Endpoint>,
    /// MindIE metrics listener; `None` = the API listener serves it.
    pub metrics: Option<Endpoint>,
}

impl ScrapeTarget {
    /// The endpoint serving `listener` (falling back to the API listener).
    pub fn endpoint(&self, listener: Listener) -> &Endpoint {
        match listener {
            Listener::Api => &self.api,
            Listener::Management => self.management.as_ref().unwrap_or(&self.api),
            Listener::Metrics => self.metrics.as_ref().unwrap_or(&self.api),
        }
    }
}

/// Scrapes `t`'s load endpoints (`adapter::load_sources`) within `timeout`, merges them (the
/// first source to report a signal wins) and derives interval values against `prev`
/// (`adapter::finish`).
///
/// A source is fetched only if it could still add a signal (`adapter::can_fill`), so SGLang's
/// `/metrics` fallback costs nothing while `/v1/loads` answers. Each fetch gets an equal share of
/// the time left, so one stuck listener (MindIE management) does not starve the next (metrics).
/// A kind with no sources (OpenAI clouds) yields an empty [`Scraped`].
///
/// # Errors
///
/// Only when every fetched source failed: each as `http://addr/path: reason`, joined by `; `.
/// If at least one source answered, its signals are returned and the others stay unknown.
pub fn scrape(
    t: &ScrapeTarget,
    prev: Option<&Scraped>,
    timeout: Duration,
) -> Result<Scraped, String> {
    let deadline = deadline_after(timeout);
    let sources = adapter::load_sources(t.kind);
    let mut out = Scraped::default();
    let mut failures = Vec::new();
    let mut answered = 0usize;
    for (i, &(listener, path, source)) in sources.iter().enumerate() {
        if !adapter::can_fill(t.kind, source, &out) {
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let share = left / u32::try_from(sources.len() - i).unwrap_or(1).max(1);
        let ep = t.endpoint(listener);
        let got = get(ep, path, share).and_then(|body| {
            let text = String::from_utf8(body).map_err(|e| {
                format!("body is not UTF-8 (byte {})", e.utf8_error().valid_up_to())
            })?;
            let mut s = Scraped::default();
            adapter::parse(t.kind, source, &text, &mut s)?;
            Ok(s)
        });
        match got {
            Ok(s) => {
                adapter::merge_missing(&mut out, &s);
                answered += 1;
            }
            Err(e) => failures.push(format!("{}: {e}", ep.describe(path))),
        }
    }
    if answered == 0 && !failures.is_empty() {
        return Err(failures.join("; "));
    }
    adapter::finish(prev, &mut out);
    Ok(out)
}

/// Runs `t`'s active health probe (`adapter::health_probe`): `None` for kinds without one,
/// `Some(Ok(()))` on a 2xx answer within `timeout`.
///
/// # Errors
///
/// `Some(Err)` naming the URL and the status, timeout or socket error.
pub fn probe(t: &ScrapeTarget, timeout: Duration) -> Option<Result<(), String>> {
    let (listener, path) = adapter::health_probe(t.kind)?;
    let ep = t.endpoint(listener);
    Some(
        get(ep, path, timeout)
            .map(drop)
            .map_err(|e| format!("{}: {e}", ep.describe(path))),
    )
}

/// `GET base_path + path` on `ep`, returning the body of a 2xx answer.
///
/// # Errors
///
/// Connect, TLS, timeout, framing or size errors, and non-2xx statuses (`HTTP 503 Service
/// Unavailable: <start of body>`). Messages never include the bearer token.
pub fn get(ep: &Endpoint, path: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = deadline_after(timeout);
    let request = request_bytes(ep, path)?;
    let tcp = connect(ep.addr, deadline)?;
    let mut conn = match &ep.tls {
        None => Conn::Plain(tcp),
        Some((cfg, name)) => {
            let c = ClientConnection::new(cfg.clone(), name.clone())
                .map_err(|e| format!("tls setup: {e}"))?;
            let mut s = StreamOwned::new(c, tcp);
            handshake(&mut s, deadline)?;
            Conn::Tls(Box::new(s))
        }
    };
    arm(conn.sock(), deadline, "sending the request")?;
    conn.write_all(&request)
        .and_then(|()| conn.flush())
        .map_err(|e| io_error("sending the request", &e))?;
    let answer = read_response(&mut conn, deadline)?;
    if !(200..300).contains(&answer.status) {
        return Err(status_error(
            answer.status,
            &answer.reason,
            answer.body.as_deref().ok(),
        ));
    }
    answer.body
}

/// The request head; refuses CR/LF in any interpolated value (header injection).
fn request_bytes(ep: &Endpoint, path: &str) -> Result<Vec<u8>, String> {
    let target = ep.target(path);
    let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    if bad(&target) || target.contains(' ') || !target.starts_with('/') {
        return Err(format!("invalid request path {target:?}"));
    }
    if bad(&ep.host_header) {
        return Err("invalid Host header value".into());
    }
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tollgate-scrape\r\nAccept: */*\r\nConnection: close\r\n",
        ep.host_header
    );
    if let Some(token) = &ep.bearer {
        if bad(token) {
            return Err("invalid bearer token (control characters)".into());
        }
        req.push_str("Authorization: Bearer ");
        req.push_str(token);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Ok(req.into_bytes())
}

/// A response whose head was read.
struct Answer {
    status: u16,
    reason: String,
    /// The body, or the error reading it: kept apart so a non-2xx answer still reports its
    /// status when its body is broken.
    body: Result<Vec<u8>, String>,
}

/// Reads one response (skipping interim 1xx heads).
fn read_response(conn: &mut Conn, deadline: Instant) -> Result<Answer, String> {
    let limits = HeadLimits::default();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let head = loop {
        match parse_response_head(&buf, &limits, false) {
            Ok(Some(h)) if h.is_interim() => {
                buf.drain(..h.head_len.min(buf.len()));
                continue;
            }
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => return Err(format!("malformed response head: {e}")),
        }
        if read_more(conn, &mut buf, deadline, "response head")? == 0 {
            return Err("connection closed before a complete response head".into());
        }
    };
    let rest = buf.get(head.head_len..).unwrap_or_default().to_vec();
    Ok(Answer {
        status: head.status,
        reason: head.reason().to_string(),
        body: read_body(conn, head.framing, rest, deadline),
    })
}

fn read_body(
    conn: &mut Conn,
    framing: ResponseFraming,
    mut rest: Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let too_big = || format!("response body exceeds {MAX_BODY_BYTES} bytes");
    match framing {
        ResponseFraming::NoBody => Ok(Vec::new()),
        ResponseFraming::ContentLength(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_BODY_BYTES)
                .ok_or_else(too_big)?;
            while rest.len() < n {
                if read_more(conn, &mut rest, deadline, "response body")? == 0 {
                    return Err(format!(
                        "connection closed after {} of {n} body bytes",
                        rest.len()
                    ));
                }
            }
            rest.truncate(n);
            Ok(rest)
        }
        ResponseFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new(MAX_BODY_BYTES as u64);
            let mut input = BytesMut::from(rest.as_slice());
            let mut out = BytesMut::new();
            let mut more = Vec::new();
            loop {
                match decoder.decode(&mut input, &mut out) {
                    Ok(Progress::Done) => return Ok(out.to_vec()),
                    Ok(Progress::NeedMore) => {}
                    Err(e) => return Err(format!("chunked body: {e}")),
                }
                more.clear();
                if read_more(conn, &mut more, deadline, "response body")? == 0 {
                    return Err("connection closed inside a chunked body".into());
                }
                input.extend_from_slice(&more);
            }
        }
        ResponseFraming::CloseDelimited => loop {
            if rest.len() > MAX_BODY_BYTES {
                return Err(too_big());
            }
            if read_more(conn, &mut rest, deadline, "response body")? == 0 {
                return Ok(rest);
            }
        },
    }
}

/// One `read` into `buf` within the deadline; `Ok(0)` at EOF (including a TLS peer that closes
/// without `close_notify`: the framing checks catch a truncated body).
fn read_more(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
    what: &str,
) -> Result<usize, String> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        arm(conn.sock(), deadline, &format!("reading the {what}"))?;
        match conn.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(io_error(&format!("reading the {what}"), &e)),
        }
    }
}

fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, String> {
    let left = remaining(deadline, "connecting")?;
    let s = TcpStream::connect_timeout(&addr, left).map_err(|e| io_error("connecting", &e))?;
    // A scrape is one small request: send it now rather than wait for an ACK.
    let _ = s.set_nodelay(true);
    Ok(s)
}

fn handshake(
    s: &mut StreamOwned<ClientConnection, TcpStream>,
    deadline: Instant,
) -> Result<(), String> {
    while s.conn.is_handshaking() {
        arm(&s.sock, deadline, "in the TLS handshake")?;
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| io_error("in the TLS handshake", &e))?;
    }
    Ok(())
}

/// Sets both socket timeouts to what is left of the deadline (each blocking call then returns
/// by the deadline at the latest).
fn arm(sock: &TcpStream, deadline: Instant, what: &str) -> Result<(), String> {
    let left = remaining(deadline, what)?;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| format!("setting socket timeouts: {e}"))
}

fn remaining(deadline: Instant, what: &str) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(format!("timed out {what}"))
    } else {
        Ok(left)
    }
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(3600)))
        .unwrap_or(now)
}

fn io_error(what: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("timed out {what}"),
        _ => format!("{what}: {e}"),
    }
}

fn status_error(status: u16, reason: &str, body: Option<&[u8]>) -> String {
    let mut msg = format!("HTTP {status}");
    if !reason.is_empty() {
        msg.push(' ');
        msg.push_str(reason);
    }
    let snippet: String = body
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(ERROR_SNIPPET)
        .collect();
    if !snippet.trim().is_empty() {
        msg.push_str(": ");
        msg.push_str(snippet.trim());
    }
    msg
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn sock(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
