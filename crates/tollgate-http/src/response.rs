//! Upstream response heads: strict parsing, framing, and connection reuse.
//!
//! The upstream is trusted more than a client but not blindly: a confused inference server (or
//! a sidecar in between) that sends ambiguous framing would desynchronise a pooled connection
//! and hand one user's tokens to the next request. Decisions:
//!
//! * Both `Content-Length` and `Transfer-Encoding`: RFC 9112 says TE wins and the connection
//!   must close. We go further and fail the response ([`HeadError::ContentLengthAndTransferEncoding`])
//!   so the gateway answers 502 and drops the connection — a server doing this is broken.
//! * `Transfer-Encoding` other than exactly `chunked` (e.g. `gzip, chunked`) is legal but we do
//!   not decode content codings on the dataplane: [`HeadError::UnsupportedTransferEncoding`].
//! * Several `Content-Length` values that are all equal are accepted (RFC 9110 §8.6) but mark
//!   the connection not [`ResponseHead::reusable`]; differing values are an error.
//! * Same line-level strictness as requests: CRLF only, no NUL, no obs-fold.

use std::mem::MaybeUninit;

use bytes::Bytes;

use crate::headers::{Headers, list_tokens, trim_ows};
use crate::scan::{self, Facts, STACK_HEADERS};
use crate::{HeadError, HeadLimits};

/// How an upstream response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: 1xx, 204, 304, or a response to `HEAD`.
    NoBody,
    /// Exactly this many bytes follow.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Body runs until the upstream closes the connection.
    CloseDelimited,
}

/// A validated upstream response head, owning a copy of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100–599.
    pub status: u16,
    /// Minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub version: u8,
    /// Header fields in wire order.
    pub headers: Headers,
    /// Bytes of the input the head occupied; the body (if any) starts here.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// What the upstream asked for: HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Whether the connection may go back to the pool after the body: `keep_alive`, a
    /// self-delimited body, and nothing suspicious (such as repeated `Content-Length`).
    pub reusable: bool,
    reason: (usize, usize),
    content_type: Option<(usize, usize)>,
}

impl ResponseHead {
    /// The reason phrase (may be empty; non-ASCII reasons read as empty).
    pub fn reason(&self) -> &str {
        self.headers.str(self.reason)
    }

    /// An interim 1xx response other than `101 Switching Protocols` (e.g. `100 Continue`,
    /// `103 Early Hints`): skip its `head_len` bytes and parse the next head.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// The first `Content-Type` value.
    pub fn content_type(&self) -> Option<&[u8]> {
        self.content_type.map(|r| self.headers.slice(r))
    }

    /// True when the media type is `text/event-stream` (parameters and case ignored): the body
    /// is an SSE stream to hand to the SSE decoder and flush per event.
    pub fn is_event_stream(&self) -> bool {
        self.content_type().is_some_and(|ct| {
            let media = ct.split(|&b| b == b';').next().unwrap_or_default();
            trim_ows(media).eq_ignore_ascii_case(b"text/event-stream")
        })
    }
}

/// Parse an upstream response head from the start of `buf`.
///
/// `request_was_head` must be true when the request was `HEAD`: such responses have no body
/// whatever their headers say. `limits.max_request_line` caps the status line.
///
/// # Errors
///
/// Any [`HeadError`]; answer the client [`HeadError::UPSTREAM_STATUS`] and close the upstream
/// connection.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let Some(scan) = scan::scan_head(buf, limits, HeadError::HeadersTooLarge)? else {
        return Ok(None);
    };
    let head = buf.get(..scan.head_len).unwrap_or(buf);
    if scan.fields <= STACK_HEADERS {
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
        let slots = slots.get_mut(..scan.fields).unwrap_or_default();
        build(head, slots, request_was_head).map(Some)
    } else {
        let mut slots = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); scan.fields];
        build(head, &mut slots, request_was_head).map(Some)
    }
}

fn build<'b>(
    head: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    request_was_head: bool,
) -> Result<ResponseHead, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, slots)
    {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(HeadError::InvalidStatusLine),
        Err(e) => return Err(scan::classify_bytes(head).unwrap_or_else(|| map_error(e, head))),
    }
    let version = resp.version.unwrap_or(1);
    let status = resp.code.unwrap_or_default();
    if !(100..=599).contains(&status) {
        return Err(HeadError::InvalidStatusLine);
    }
    let reason = scan::range(head, resp.reason.unwrap_or_default().as_bytes());
    let mut fields = Vec::with_capacity(resp.headers.len());
    let facts = scan::collect(head, resp.headers, &mut fields);
    let (framing, suspicious) = framing(&facts, head, version, status, request_was_head)?;
    let keep_alive = !facts.conn_close && (version == 1 || facts.conn_keep_alive);
    let reusable =
        keep_alive && !suspicious && status != 101 && framing != ResponseFraming::CloseDelimited;
    Ok(ResponseHead {
        status,
        version,
        head_len: head.len(),
        framing,
        keep_alive,
        reusable,
        reason,
        content_type: facts.content_type,
        headers: Headers::new(Bytes::copy_from_slice(head), fields),
    })
}

/// Response framing; the `bool` is "suspicious but framable" (forces `reusable = false`).
/// Framing headers are validated even when the status implies no body: a server that sends
/// broken framing on a 204 is not one we want to keep talking to.
fn framing(
    facts: &Facts,
    head: &[u8],
    version: u8,
    status: u16,
    request_was_head: bool,
) -> Result<(ResponseFraming, bool), HeadError> {
    if facts.te_count > 0 && facts.cl_count > 0 {
        return Err(HeadError::ContentLengthAndTransferEncoding);
    }
    if facts.te_count > 1 {
        return Err(HeadError::DuplicateTransferEncoding);
    }
    let no_body =
        request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
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
        let framing = if no_body {
            ResponseFraming::NoBody
        } else {
            ResponseFraming::Chunked
        };
        return Ok((framing, false));
    }
    if facts.cl_count > 0 {
        if !facts.cl_all_equal {
            return Err(HeadError::DuplicateContentLength);
        }
        let cl = head
            .get(facts.cl_first.0..facts.cl_first.1)
            .unwrap_or_default();
        let (n, listed) = content_length_list(cl)?;
        if !facts.cl_ws_ok {
            return Err(HeadError::InvalidContentLength);
        }
        let suspicious = listed || facts.cl_count > 1;
        let framing = if no_body {
            ResponseFraming::NoBody
        } else {
            ResponseFraming::ContentLength(n)
        };
        return Ok((framing, suspicious));
    }
    if no_body {
        return Ok((ResponseFraming::NoBody, false));
    }
    Ok((ResponseFraming::CloseDelimited, false))
}

/// `Content-Length` that may be a list of identical values (`5, 5`); the `bool` says it was a
/// list.
fn content_length_list(v: &[u8]) -> Result<(u64, bool), HeadError> {
    if !v.contains(&b',') {
        return scan::parse_content_length(v).map(|n| (n, false));
    }
    let mut first = None;
    for t in list_tokens(v) {
        let n = scan::parse_content_length(t)?;
        match first {
            None => first = Some(n),
            Some(f) if f != n => return Err(HeadError::DuplicateContentLength),
            Some(_) => {}
        }
    }
    first
        .map(|n| (n, true))
        .ok_or(HeadError::InvalidContentLength)
}

fn map_error(e: httparse::Error, head: &[u8]) -> HeadError {
    match e {
        httparse::Error::HeaderName => scan::classify_name_error(head),
        httparse::Error::HeaderValue => HeadError::InvalidHeaderValue,
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => {
            let version = head.get(..8).unwrap_or_default();
            scan::classify_version_error(version, HeadError::InvalidStatusLine)
        }
        httparse::Error::Token | httparse::Error::NewLine | httparse::Error::Status => {
            HeadError::InvalidStatusLine
        }
    }
}
