//! Writing heads and chunks into a `BytesMut`.
//!
//! The gateway re-serialises every head it forwards instead of copying bytes through, so the
//! upstream only ever sees the canonical form we validated. The writers validate what they
//! write too — header names must be tokens and values may not contain CR, LF or other control
//! bytes — because a value that came from config, a plugin or an upstream and carries CRLF would
//! be a response-splitting bug. Framing headers are written only from the `framing` argument and
//! refused in the header list, so a message can never leave with two framings.
//!
//! On error nothing is left in `out`: it is truncated back to its length on entry.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::BodyFraming;
use crate::scan::is_tchar;

/// Why a head could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// Status outside 100–599.
    InvalidStatus,
    /// Method is not a token.
    InvalidMethod,
    /// Path is not origin-form visible ASCII.
    InvalidPath,
    /// A header name is not a token.
    InvalidHeaderName,
    /// A header value contains CR, LF, NUL or another control byte.
    InvalidHeaderValue,
    /// `content-length`, `transfer-encoding` or `host` passed in the header list; they are
    /// written from the dedicated arguments.
    ReservedHeader,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::InvalidStatus => "status code outside 100-599",
            EncodeError::InvalidMethod => "method is not a token",
            EncodeError::InvalidPath => "path is not an origin-form ASCII target",
            EncodeError::InvalidHeaderName => "header name is not a token",
            EncodeError::InvalidHeaderValue => "control character in header value",
            EncodeError::ReservedHeader => "framing or host header passed in the header list",
        })
    }
}

impl std::error::Error for EncodeError {}

/// Canonical reason phrase for the statuses the gateway emits; `""` for others (an empty reason
/// is valid HTTP/1.1).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The interim `100 Continue` response, sent when a request has `expect_continue` and the
/// gateway is ready for its body.
pub fn write_continue(out: &mut BytesMut) {
    out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Write `HTTP/1.1 {status} {reason}`, the `headers`, then the framing header for `framing`
/// (`content-length: n`, `transfer-encoding: chunked`, or nothing for [`BodyFraming::None`],
/// e.g. 204/304 or a close-delimited body), then the empty line.
///
/// # Errors
///
/// [`EncodeError`]; `out` is left unchanged.
pub fn write_response_head(
    out: &mut BytesMut,
    status: u16,
    headers: &[(&str, &[u8])],
    framing: BodyFraming,
) -> Result<(), EncodeError> {
    if !(100..=599).contains(&status) {
        return Err(EncodeError::InvalidStatus);
    }
    let mark = out.len();
    out.put_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
    finish(out, mark, headers, framing)
}

/// Write an HTTP/1.1 request head for the upstream: request line, `host`, the `headers`, the
/// framing header for `framing`, the empty line.
///
/// # Errors
///
/// [`EncodeError`]; `out` is left unchanged.
pub fn write_request_head(
    out: &mut BytesMut,
    method: &str,
    path: &str,
    host: &[u8],
    headers: &[(&str, &[u8])],
    framing: BodyFraming,
) -> Result<(), EncodeError> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(EncodeError::InvalidMethod);
    }
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EncodeError::InvalidPath);
    }
    if !valid_value(host) {
        return Err(EncodeError::InvalidHeaderValue);
    }
    let mark = out.len();
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\nhost: ");
    out.put_slice(host);
    out.put_slice(b"\r\n");
    finish(out, mark, headers, framing)
}

/// Write one chunk: `{len:x}\r\n{data}\r\n`. Empty `data` writes nothing, because a zero-size
/// chunk would terminate the body; use [`write_last_chunk`] for that.
pub fn write_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.reserve(data.len() + 20);
    put_hex(out, data.len() as u64);
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Write the last chunk with no trailers: `0\r\n\r\n`.
pub fn write_last_chunk(out: &mut BytesMut) {
    out.put_slice(b"0\r\n\r\n");
}

fn finish(
    out: &mut BytesMut,
    mark: usize,
    headers: &[(&str, &[u8])],
    framing: BodyFraming,
) -> Result<(), EncodeError> {
    for &(name, value) in headers {
        let check = if name.is_empty() || !name.bytes().all(is_tchar) {
            Err(EncodeError::InvalidHeaderName)
        } else if is_reserved(name) {
            Err(EncodeError::ReservedHeader)
        } else if !valid_value(value) {
            Err(EncodeError::InvalidHeaderValue)
        } else {
            Ok(())
        };
        if let Err(e) = check {
            out.truncate(mark);
            return Err(e);
        }
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    match framing {
        BodyFraming::None => {}
        BodyFraming::ContentLength(n) => {
            out.put_slice(b"content-length: ");
            put_decimal(out, n);
            out.put_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
    Ok(())
}

fn is_reserved(name: &str) -> bool {
    ["content-length", "transfer-encoding", "host"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// Field value: HT, SP, visible ASCII and obs-text; no leading/trailing whitespace concerns
/// because we always write `name: value` ourselves.
fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.put_slice(buf.get(i..).unwrap_or_default());
}

fn put_hex(out: &mut BytesMut, mut n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let (Some(slot), Some(&d)) = (buf.get_mut(i), HEX.get((n & 0xf) as usize)) {
            *slot = d;
        }
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.put_slice(buf.get(i..).unwrap_or_default());
}
