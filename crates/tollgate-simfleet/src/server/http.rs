//! Minimal HTTP/1.1 for the simulated servers: request parsing and response framing.
//!
//! Hand-rolled over `TcpStream` + `httparse` instead of hyper so that faults can put exact,
//! deliberately wrong bytes on the wire (CL+TE, stray bytes, cut chunked bodies, RSTs). Supports
//! keep-alive, Content-Length and chunked request bodies; nothing else (no 100-continue, no
//! pipelining guarantees beyond "leftover bytes are kept for the next request").

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

/// Largest request head accepted (64 KiB); larger heads get 431 and the connection closes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (16 MiB); larger bodies get 413.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most headers parsed per request.
const MAX_HEADERS: usize = 128;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path including query.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Decoded body.
    pub body: Vec<u8>,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
}

impl Request {
    /// Path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// First header value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// Clean EOF between requests.
    Eof,
    /// Socket error or EOF mid-request.
    Io,
    /// Bad request: answer with this status, then close.
    Bad(u16),
}

/// Reads one request, using and refilling `buf` (leftover bytes stay for the next request).
pub async fn read_request(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
) -> Result<Request, ReadError> {
    // Head.
    let (method, target, headers, keep_alive, head_len) = loop {
        let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut hdrs);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let conn = headers
                    .iter()
                    .find(|(k, _)| k == "connection")
                    .map(|(_, v)| v.to_ascii_lowercase());
                let keep_alive = match req.version {
                    Some(0) => conn.as_deref() == Some("keep-alive"),
                    _ => conn.as_deref() != Some("close"),
                };
                break (
                    req.method.unwrap_or("GET").to_string(),
                    req.path.unwrap_or("/").to_string(),
                    headers,
                    keep_alive,
                    n,
                );
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(ReadError::Bad(431));
                }
                if fill(rd, buf).await? == 0 {
                    return Err(if buf.is_empty() {
                        ReadError::Eof
                    } else {
                        ReadError::Io
                    });
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Bad(431)),
            Err(_) => return Err(ReadError::Bad(400)),
        }
    };
    buf.advance(head_len);
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(rd, buf).await?
    } else if let Some(cl) = find("content-length") {
        let n: usize = cl.trim().parse().map_err(|_| ReadError::Bad(400))?;
        if n > MAX_BODY {
            return Err(ReadError::Bad(413));
        }
        while buf.len() < n {
            if fill(rd, buf).await? == 0 {
                return Err(ReadError::Io);
            }
        }
        buf.split_to(n).to_vec()
    } else {
        Vec::new()
    };
    Ok(Request {
        method,
        target,
        headers,
        body,
        keep_alive,
    })
}

async fn fill(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<usize, ReadError> {
    buf.reserve(8192);
    rd.read_buf(buf).await.map_err(|_| ReadError::Io)
}

/// Decodes a chunked body (chunk extensions and trailers are skipped).
async fn read_chunked(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(rd, buf).await?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| ReadError::Bad(400))?;
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413));
        }
        if size == 0 {
            // Trailers until an empty line.
            while !read_line(rd, buf).await?.is_empty() {}
            return Ok(body);
        }
        while buf.len() < size + 2 {
            if fill(rd, buf).await? == 0 {
                return Err(ReadError::Io);
            }
        }
        body.extend_from_slice(&buf[..size]);
        if &buf[size..size + 2] != b"\r\n" {
            return Err(ReadError::Bad(400));
        }
        buf.advance(size + 2);
    }
}

async fn read_line(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<String, ReadError> {
    loop {
        if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..pos]).into_owned();
            buf.advance(pos + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(400));
        }
        if fill(rd, buf).await? == 0 {
            return Err(ReadError::Io);
        }
    }
}

/// Standard reason phrase.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Status line plus headers (each `(name, value)`), without the blank line.
pub fn head(status: u16, headers: &[(&str, &str)], keep_alive: bool) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        h.push_str(k);
        h.push_str(": ");
        h.push_str(v);
        h.push_str("\r\n");
    }
    if !keep_alive {
        h.push_str("connection: close\r\n");
    }
    h.into_bytes()
}

/// A complete response with a Content-Length body.
pub fn full(
    status: u16,
    ctype: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let len = body.len().to_string();
    let mut hs: Vec<(&str, &str)> = vec![("content-type", ctype), ("content-length", &len)];
    hs.extend_from_slice(extra);
    let mut out = head(status, &hs, keep_alive);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// One HTTP/1.1 chunk (`<hex len>\r\n<data>\r\n`); empty data yields nothing (an empty chunk
/// would be the terminator).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The chunked-body terminator.
pub const CHUNK_END: &[u8] = b"0\r\n\r\n";
