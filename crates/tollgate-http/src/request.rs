//! Client request heads: strict parsing and framing derivation.
//!
//! This is the gateway's front door, so the rules are the strict end of RFC 9112 plus the
//! smuggling defences every proxy learned the hard way. Decisions worth knowing:
//!
//! * **Framing headers** must be written the way real clients write them: `Content-Length` is
//!   1–19 digits, `Transfer-Encoding` is exactly `chunked` (any case), each with at most one SP
//!   after the colon and nothing after the value. Any duplicate, list, or combination of the two
//!   is a 400. We never "pick one": the upstream might pick the other.
//! * **Line endings** are CRLF only. A bare LF or bare CR is a 400, not tolerated: nginx and
//!   Node disagree on bare LF, which is exactly the kind of disagreement smuggling exploits.
//! * **Targets** are origin-form (`/v1/chat/completions?x=y`), ASCII only. Absolute-form
//!   (`http://host/…`) is a forward-proxy request, authority-form only makes sense for CONNECT,
//!   and asterisk-form (`OPTIONS *`) has no meaning for an inference API: all 400.
//!   `CONNECT` is refused up front with 405 (the caller adds `Allow`).
//! * **Methods** are any token; method policy belongs to the router.
//! * `Expect: 100-continue` is surfaced; any other expectation is 417. HTTP/1.0 requests never
//!   get a 100 (RFC 9110 §10.1.1), so `expect_continue` is false for them.

use std::mem::MaybeUninit;

use bytes::Bytes;

use crate::headers::Headers;
use crate::scan::{self, Facts, STACK_HEADERS};
use crate::{BodyFraming, HeadError, HeadLimits};

/// Request method. Methods are case-sensitive; anything not listed is [`Method::Other`] (read
/// it with [`RequestHead::method_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// `TRACE`
    Trace,
    /// `CONNECT` (never returned by [`parse_request_head`], which refuses it).
    Connect,
    /// Any other token.
    Other,
}

impl Method {
    fn from_token(t: &str) -> Self {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// A validated request head, owning a copy of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// Minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub version: u8,
    /// Header fields in wire order.
    pub headers: Headers,
    /// Bytes of the input the head occupied; the body (if any) starts here.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` (HTTP/1.1 only) and waits before sending the body.
    pub expect_continue: bool,
    method_range: (usize, usize),
    path_range: (usize, usize),
}

impl RequestHead {
    /// The method token as sent.
    pub fn method_str(&self) -> &str {
        self.headers.str(self.method_range)
    }

    /// The origin-form target (path and query), always starting with `/`.
    pub fn path(&self) -> &str {
        self.headers.str(self.path_range)
    }

    /// The `Host` value (absent only for HTTP/1.0).
    pub fn host(&self) -> Option<&[u8]> {
        self.headers.get("host")
    }

    /// Shorthand for `headers.get(name)`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }
}

/// Parse a request head from the start of `buf`.
///
/// `Ok(None)` means the head is incomplete: read more and call again with the grown buffer.
/// Limits are enforced on incomplete input too, so a client cannot make us buffer an endless
/// request line or head. On `Ok(Some(head))`, the body starts at `buf[head.head_len..]`.
///
/// # Errors
///
/// Any [`HeadError`]; answer `err.status()` and close the connection.
///
/// # Performance
///
/// One `memchr` pass over the LFs plus `httparse`, then one copy of the head bytes and one vector of field
/// ranges. Each call rescans from the start of `buf`, so call it when new bytes arrive rather
/// than per byte.
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<RequestHead>, HeadError> {
    let Some(scan) = scan::scan_head(buf, limits, HeadError::UriTooLong)? else {
        return Ok(None);
    };
    let head = buf.get(..scan.head_len).unwrap_or(buf);
    if scan.fields <= STACK_HEADERS {
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
        build(head, slots.get_mut(..scan.fields).unwrap_or_default()).map(Some)
    } else {
        let mut slots = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); scan.fields];
        build(head, &mut slots).map(Some)
    }
}

fn build<'b>(
    head: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<RequestHead, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, slots) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(HeadError::InvalidRequestLine),
        Err(e) => return Err(scan::classify_bytes(head).unwrap_or_else(|| map_error(e, head))),
    }
    let method_str = req.method.unwrap_or_default();
    let path = req.path.unwrap_or_default();
    let version = req.version.unwrap_or(1);
    let method = Method::from_token(method_str);
    if method == Method::Connect {
        return Err(HeadError::ConnectNotSupported);
    }
    if !path.starts_with('/') || !path.is_ascii() {
        return Err(HeadError::InvalidTarget);
    }
    let mut fields = Vec::with_capacity(req.headers.len());
    let facts = scan::collect(head, req.headers, &mut fields);
    let framing = framing(&facts, head, version)?;
    if facts.host_count > 1 {
        return Err(HeadError::DuplicateHost);
    }
    if facts.host_count == 0 && version == 1 {
        return Err(HeadError::MissingHost);
    }
    if facts.expect_other {
        return Err(HeadError::ExpectationFailed);
    }
    let keep_alive = !facts.conn_close && (version == 1 || facts.conn_keep_alive);
    Ok(RequestHead {
        method,
        version,
        head_len: head.len(),
        framing,
        keep_alive,
        expect_continue: facts.expect_continue && version == 1,
        method_range: scan::range(head, method_str.as_bytes()),
        path_range: scan::range(head, path.as_bytes()),
        headers: Headers::new(Bytes::copy_from_slice(head), fields),
    })
}

/// Request framing, RFC 9112 §6.3 minus every leniency. Check order is fixed (and tested) so
/// the reported variant is deterministic when a head breaks several rules.
fn framing(facts: &Facts, head: &[u8], version: u8) -> Result<BodyFraming, HeadError> {
    if facts.te_count > 0 && facts.cl_count > 0 {
        return Err(HeadError::ContentLengthAndTransferEncoding);
    }
    if facts.te_count > 1 {
        return Err(HeadError::DuplicateTransferEncoding);
    }
    if facts.cl_count > 1 {
        return Err(HeadError::DuplicateContentLength);
    }
    if facts.te_count == 1 {
        if version == 0 {
            return Err(HeadError::TransferEncodingInHttp10);
        }
        let te = head
            .get(facts.te_first.0..facts.te_first.1)
            .unwrap_or_default();
        if !facts.te_ws_ok || !te.eq_ignore_ascii_case(b"chunked") {
            return Err(HeadError::UnsupportedTransferEncoding);
        }
        return Ok(BodyFraming::Chunked);
    }
    if facts.cl_count == 1 {
        let cl = head
            .get(facts.cl_first.0..facts.cl_first.1)
            .unwrap_or_default();
        let n = scan::parse_content_length(cl)?;
        if !facts.cl_ws_ok {
            return Err(HeadError::InvalidContentLength);
        }
        return Ok(BodyFraming::ContentLength(n));
    }
    Ok(BodyFraming::None)
}

fn map_error(e: httparse::Error, head: &[u8]) -> HeadError {
    match e {
        httparse::Error::HeaderName => scan::classify_name_error(head),
        httparse::Error::HeaderValue => HeadError::InvalidHeaderValue,
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
            scan::classify_version_error(version, HeadError::InvalidRequestLine)
        }
        httparse::Error::Token | httparse::Error::NewLine | httparse::Error::Status => {
            HeadError::InvalidRequestLine
        }
    }
}
