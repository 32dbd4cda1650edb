//! Raw-TCP HTTP/1.1 client helpers for the simfleet tests: blocking std sockets, so what the
//! tests see is exactly the bytes the simulated backend wrote.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tollgate_simfleet::engine::{EngineParams, Personality};
use tollgate_simfleet::{Fleet, FleetConfig, Mode};

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// De-chunked body.
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// SSE `data:` payloads (events separated by a blank line).
    pub fn events(&self) -> Vec<String> {
        sse_data(&self.text())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// Starts a one-backend fleet.
pub fn fleet(p: Personality, mode: Mode) -> Fleet {
    let mut cfg = FleetConfig::single("b", p, mode);
    cfg.seed = 7;
    Fleet::start(cfg).expect("fleet starts")
}

/// A model-mode fleet whose engine is fast (short steps) so tests run quickly.
pub fn fast_model(p: Personality) -> Fleet {
    let mut cfg = FleetConfig::single("b", p, Mode::Model);
    cfg.seed = 7;
    cfg.backends[0].engine = EngineParams {
        speed_factor: 4.0,
        ..EngineParams::default()
    };
    Fleet::start(cfg).expect("fleet starts")
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

pub fn send(s: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: sim\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut tmp = [0u8; 65536];
    let n = s.read(&mut tmp)?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

/// Reads one response from `s`, keeping leftover bytes in `buf`.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Resp> {
    let eof = || std::io::Error::new(ErrorKind::UnexpectedEof, "eof");
    let (status, headers, head_len) = loop {
        let mut hdrs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hdrs);
        match r
            .parse(buf)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?
        {
            httparse::Status::Complete(n) => {
                let hs = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (r.code.unwrap_or(0), hs, n);
            }
            httparse::Status::Partial => {
                if fill(s, buf)? == 0 {
                    return Err(eof());
                }
            }
        }
    };
    buf.drain(..head_len);
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let pos = loop {
                if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                if fill(s, buf)? == 0 {
                    return Err(eof());
                }
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..pos]).unwrap_or("x").trim(), 16)
                    .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "chunk size"))?;
            while buf.len() < pos + 2 + size + 2 {
                if fill(s, buf)? == 0 {
                    return Err(eof());
                }
            }
            body.extend_from_slice(&buf[pos + 2..pos + 2 + size]);
            buf.drain(..pos + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else if let Some(cl) = get("content-length") {
        let n: usize = cl.trim().parse().expect("cl");
        while buf.len() < n {
            if fill(s, buf)? == 0 {
                return Err(eof());
            }
        }
        body = buf.drain(..n).collect();
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = connect(addr);
    send(&mut s, method, path, headers, body);
    read_response(&mut s, &mut Vec::new()).expect("response")
}

pub fn chat(stream: bool, include_usage: bool, max_tokens: u32) -> String {
    serde_json::json!({
        "model": "llama-3-8b",
        "messages": [{"role": "user", "content": "Hello there, how are you today?"}],
        "stream": stream,
        "stream_options": {"include_usage": include_usage},
        "max_tokens": max_tokens,
    })
    .to_string()
}

/// Everything the server sends until EOF or error; the error kind is returned with the bytes.
pub fn read_raw(s: &mut TcpStream) -> (Vec<u8>, Option<ErrorKind>) {
    let mut out = Vec::new();
    loop {
        match fill(s, &mut out) {
            Ok(0) => return (out, None),
            Ok(_) => {}
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

/// Content strings of the content chunks in SSE payloads.
pub fn contents(events: &[String]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|v| {
            let c = v.get("choices")?.get(0)?;
            c.get("delta")
                .and_then(|d| d.get("content"))
                .or_else(|| c.get("text"))
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        })
        .collect()
}

/// Asserts content is exactly `«r<id>:0»..«r<id>:n-1»` and returns `r<id>`.
pub fn assert_sequential(contents: &[String], n: usize) -> String {
    assert_eq!(contents.len(), n, "token count: {contents:?}");
    let first = contents[0]
        .trim_start_matches('«')
        .split(':')
        .next()
        .expect("rid")
        .to_string();
    for (i, c) in contents.iter().enumerate() {
        assert_eq!(c, &format!("«{first}:{i}»"));
    }
    first
}

/// Polls `f` for up to 3 s.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Records appear just after the backend's last write, so a fast client can beat them: wait
/// until at least `n` exist.
pub fn wait_records(f: &Fleet, n: usize) -> Vec<tollgate_simfleet::RequestRecord> {
    assert!(
        eventually(|| f.records().len() >= n),
        "expected {n} records, got {:?}",
        f.records()
    );
    f.records()
}
