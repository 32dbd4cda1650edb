//! A small HTTP/1.1 client over tokio `TcpStream` with a keep-alive pool: one request per
//! connection at a time, no pipelining, plain `http://` only (the benchmarks run on loopback).
//!
//! Why hand-written instead of hyper: the driver must cost little CPU per SSE event on a 2-core
//! box shared with the gateway and the fleet, and it must timestamp every read the moment it
//! returns. Here a read is one `read` syscall into a per-connection buffer, stamped with one
//! `Instant::now()`, then fed to the pure decoders in [`crate::http1`] and [`crate::sse`].
//!
//! # Pool
//! Idle connections sit in a LIFO stack behind a mutex held for a push or a pop. A request takes
//! one (or connects) and gives it back only if the response was complete and keep-alive. A reused
//! connection that fails before any response byte is retried once on a fresh connection (the
//! server may have closed it while idle); see [`crate::exec`].

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http1::{ChunkedDecoder, Framing, Head, parse_head};

/// Bytes read per `read` call. 16 KiB holds dozens of SSE events; larger only helps bulk bodies.
const READ_CHUNK: usize = 16 * 1024;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where requests go: a resolved address plus what goes in `Host` and in front of every path.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// `host[:port]` as given, for the `Host` header.
    pub authority: String,
    /// Path prefix from the URL (no trailing slash), e.g. `""` or `/gw`.
    pub base_path: String,
    /// Extra request header lines, each `name: value\r\n` (see [`Endpoint::with_headers`]).
    pub extra_headers: String,
}

impl Endpoint {
    /// Parses and resolves `http://host[:port][/prefix]`.
    pub async fn resolve(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let host_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(host_port.as_str())
            .await
            .map_err(|e| format!("{url}: cannot resolve: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Endpoint {
            addr,
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
            extra_headers: String::new(),
        })
    }

    /// Adds `Name: value` headers to every request (e.g. `Authorization: Bearer …`). Rejects a
    /// name that is not an HTTP token, a value with CR, LF or NUL, and the framing headers the
    /// client writes itself.
    pub fn with_headers(mut self, headers: &[String]) -> Result<Endpoint, String> {
        for h in headers {
            let (name, value) = parse_header(h)?;
            self.extra_headers.push_str(name);
            self.extra_headers.push_str(": ");
            self.extra_headers.push_str(value);
            self.extra_headers.push_str("\r\n");
        }
        Ok(self)
    }

    /// A complete request (head + body) ready for one `write_all`.
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 256);
        out.extend_from_slice(
            format!(
                "{method} {}{path} HTTP/1.1\r\nhost: {}\r\nuser-agent: tollgate-loadtest\r\naccept: */*\r\n{}",
                self.base_path, self.authority, self.extra_headers
            )
            .as_bytes(),
        );
        if !body.is_empty() || method == "POST" {
            out.extend_from_slice(
                format!(
                    "content-type: {content_type}\r\ncontent-length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }
}

/// Headers the client writes itself; a `--header` may not set them.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];

/// Splits `Name: value` and checks both halves.
pub fn parse_header(h: &str) -> Result<(&str, &str), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("header {h:?}: expected `Name: value`"))?;
    let (name, value) = (name.trim(), value.trim());
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("header {h:?}: {name:?} is not a valid header name"));
    }
    if value.bytes().any(|c| matches!(c, b'\r' | b'\n' | 0)) {
        return Err(format!(
            "header {name}: the value may not contain CR, LF or NUL"
        ));
    }
    if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return Err(format!(
            "header {name}: set by the load generator itself, cannot be overridden"
        ));
    }
    Ok((name, value))
}

/// One keep-alive connection and its unconsumed received bytes.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    buf: Box<[u8]>,
    /// Requests completed on this connection.
    pub uses: u32,
}

/// How a response body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Framing says the body is complete.
    Complete,
    /// The server closed (or reset) before the framing completed.
    Cut(String),
}

/// Why no response head was read.
#[derive(Debug)]
pub enum HeadError {
    /// The connection closed, reset or failed a write before any response byte.
    NoResponse(String),
    /// Bytes arrived but are not an HTTP response, or the connection died mid-head.
    Protocol(String),
}

impl Conn {
    /// Connects with `TCP_NODELAY`, within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            pending: Vec::new(),
            buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            uses: 0,
        })
    }

    /// Sends `req` and reads the response head.
    pub async fn send(&mut self, req: &[u8]) -> Result<Head, HeadError> {
        self.pending.clear();
        self.stream
            .write_all(req)
            .await
            .map_err(|e| HeadError::NoResponse(format!("write: {e}")))?;
        loop {
            match parse_head(&self.pending) {
                Ok(Some(h)) => {
                    self.pending.drain(..h.len);
                    return Ok(h);
                }
                Ok(None) if self.pending.len() > MAX_HEAD_BYTES => {
                    return Err(HeadError::Protocol("response head too large".into()));
                }
                Ok(None) => {}
                Err(e) => return Err(HeadError::Protocol(e)),
            }
            let got = self.stream.read(&mut self.buf).await;
            match got {
                Ok(0) if self.pending.is_empty() => {
                    return Err(HeadError::NoResponse("closed before response".into()));
                }
                Ok(0) => return Err(HeadError::Protocol("closed inside response head".into())),
                Ok(n) => self.pending.extend_from_slice(&self.buf[..n]),
                Err(e) if self.pending.is_empty() => {
                    return Err(HeadError::NoResponse(format!("read: {e}")));
                }
                Err(e) => return Err(HeadError::Protocol(format!("read inside head: {e}"))),
            }
        }
    }

    /// Reads the body the head announced, handing each piece to `on_data` with the instant
    /// its `read` returned. Protocol errors in chunk framing end the body as `Cut`.
    pub async fn read_body(
        &mut self,
        head: &Head,
        on_data: &mut impl FnMut(&[u8], Instant),
    ) -> BodyEnd {
        let now = Instant::now();
        let first = std::mem::take(&mut self.pending);
        match head.framing {
            Framing::Length(total) => {
                let mut left = total;
                let take = first.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                if take > 0 {
                    on_data(&first[..take], now);
                }
                left -= take as u64;
                while left > 0 {
                    match self.stream.read(&mut self.buf).await {
                        Ok(0) => return BodyEnd::Cut("closed inside body".into()),
                        Ok(n) => {
                            let t = Instant::now();
                            let take = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                            on_data(&self.buf[..take], t);
                            left -= take as u64;
                        }
                        Err(e) => return BodyEnd::Cut(format!("read: {e}")),
                    }
                }
                BodyEnd::Complete
            }
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::default();
                if let Err(e) = dec.feed(&first, &mut |d: &[u8]| on_data(d, now)) {
                    return BodyEnd::Cut(e);
                }
                while !dec.is_done() {
                    match self.stream.read(&mut self.buf).await {
                        Ok(0) => return BodyEnd::Cut("closed inside chunked body".into()),
                        Ok(n) => {
                            let t = Instant::now();
                            let data = &self.buf[..n];
                            if let Err(e) = dec.feed(data, &mut |d: &[u8]| on_data(d, t)) {
                                return BodyEnd::Cut(e);
                            }
                        }
                        Err(e) => return BodyEnd::Cut(format!("read: {e}")),
                    }
                }
                BodyEnd::Complete
            }
            Framing::UntilClose => {
                if !first.is_empty() {
                    on_data(&first, now);
                }
                loop {
                    match self.stream.read(&mut self.buf).await {
                        Ok(0) => return BodyEnd::Complete,
                        Ok(n) => on_data(&self.buf[..n], Instant::now()),
                        Err(e) => return BodyEnd::Cut(format!("read: {e}")),
                    }
                }
            }
        }
    }
}

/// Keep-alive connections to one endpoint.
#[derive(Debug)]
pub struct Pool {
    endpoint: Endpoint,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle connections.
    pub fn new(endpoint: Endpoint, max_idle: usize, connect_timeout: Duration) -> Pool {
        Pool {
            endpoint,
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// An idle connection (`true`: reused) or a new one.
    pub async fn checkout(&self) -> io::Result<(Conn, bool)> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) => Ok((c, true)),
            None => Ok((
                Conn::connect(self.endpoint.addr, self.connect_timeout).await?,
                false,
            )),
        }
    }

    /// A fresh connection, bypassing the idle stack (for the retry after a stale one).
    pub async fn connect_fresh(&self) -> io::Result<Conn> {
        Conn::connect(self.endpoint.addr, self.connect_timeout).await
    }

    /// Returns a connection whose last response was complete and keep-alive.
    pub fn checkin(&self, mut c: Conn) {
        c.uses += 1;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(c);
        }
    }
}

/// One-off GET returning `(status, body)`, on its own connection: for `/metrics` scrapes.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let fut = async {
        let (ep, path) = split_url(url).await?;
        let mut c = Conn::connect(ep.addr, timeout)
            .await
            .map_err(|e| format!("{url}: connect: {e}"))?;
        let req = Endpoint {
            base_path: String::new(),
            ..ep
        }
        .request("GET", &path, "", b"");
        let head = c.send(&req).await.map_err(|e| format!("{url}: {e:?}"))?;
        let mut body = Vec::new();
        match c
            .read_body(&head, &mut |d: &[u8], _| body.extend_from_slice(d))
            .await
        {
            BodyEnd::Complete => Ok((head.status, body)),
            BodyEnd::Cut(e) => Err(format!("{url}: body cut: {e}")),
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("{url}: timed out"))?
}

/// Splits `http://host:port/path?q` into a resolved endpoint and the path (default `/`).
async fn split_url(url: &str) -> Result<(Endpoint, String), String> {
    let ep = Endpoint::resolve(url).await?;
    let path = if ep.base_path.is_empty() {
        "/".to_string()
    } else {
        ep.base_path.clone()
    };
    Ok((ep, path))
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            authority: "127.0.0.1:8080".into(),
            base_path: String::new(),
            extra_headers: String::new(),
        }
    }

    #[test]
    fn extra_headers_go_into_every_request_head() {
        let e = ep()
            .with_headers(&[
                "Authorization: Bearer sk-x".into(),
                "x-portkey-provider:openai".into(),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        let req =
            String::from_utf8(e.request("POST", "/v1/chat/completions", "application/json", b"{}"))
                .unwrap_or_default();
        assert!(req.contains("\r\nAuthorization: Bearer sk-x\r\nx-portkey-provider: openai\r\n"));
        assert!(req.ends_with("content-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        for (h, why) in [
            ("no colon", "expected"),
            (": v", "not a valid header name"),
            ("a b: v", "not a valid header name"),
            ("x: a\r\nevil: 1", "CR, LF or NUL"),
            ("Content-Length: 5", "cannot be overridden"),
            ("host: other", "cannot be overridden"),
        ] {
            match ep().with_headers(&[h.to_string()]) {
                Ok(_) => panic!("{h:?} accepted"),
                Err(e) => assert!(e.contains(why), "{h:?}: {e}"),
            }
        }
    }
}
