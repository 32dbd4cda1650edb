//! The strictness layer shared by request and response head parsing.
//!
//! `httparse` is fast and correct for well-formed input but tolerant where tolerance enables
//! smuggling: it accepts bare-LF line endings, trims any OWS around values (so `\tchunked` and
//! `chunked ` look like `chunked`), and only sees complete heads, so it cannot enforce limits on
//! a client that trickles an endless request line. This module runs one `memchr` pass over the
//! buffered bytes *before* `httparse`, visiting only the LFs, to:
//!
//! * find the end of the head, enforcing the line, head and field-count limits on incomplete
//!   input;
//! * reject LF without CR and obs-fold lines;
//!
//! NUL and CR-without-LF are rejected by `httparse` itself wherever they occur; when it fails we
//! rescan the (already bounded) head once to report them precisely. Keeping them off the fast
//! path halves the bytes of interest per line.
//!
//! and afterwards walks the tokenized fields once to collect the framing-relevant facts
//! (`Content-Length`, `Transfer-Encoding`, `Host`, `Connection`, `Expect`), including the raw
//! whitespace that `httparse` trimmed.

use crate::headers::{Field, list_tokens};
use crate::{HeadError, HeadLimits};

/// Heads with at most this many fields use a stack array of `httparse` slots (32 bytes each);
/// more fields use a temporary heap vector. Raising it grows every parse's stack frame.
pub(crate) const STACK_HEADERS: usize = 64;

/// Result of the pre-scan of a complete head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    /// Bytes up to and including the CRLF of the empty line.
    pub(crate) head_len: usize,
    /// Number of header field lines.
    pub(crate) fields: usize,
}

/// Validate line structure and limits; `Ok(None)` means the head is not complete yet.
///
/// `line_too_long` is the error for a start line over `max_request_line`. Leading empty lines
/// (CRLF) before the start line are skipped, as RFC 9112 §2.2 asks servers to do, and count
/// towards `head_len`.
pub(crate) fn scan_head(
    buf: &[u8],
    limits: &HeadLimits,
    line_too_long: HeadError,
) -> Result<Option<Scan>, HeadError> {
    let window = buf.get(..limits.max_head_bytes).unwrap_or(buf);
    let mut start = 0;
    while window.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let mut line_start = start;
    // Completed lines so far; the first one is the start line.
    let mut lines = 0usize;
    let rest = window.get(start..).unwrap_or_default();
    for pos in memchr::memchr_iter(b'\n', rest) {
        let i = start + pos;
        if i == line_start || window.get(i - 1) != Some(&b'\r') {
            return Err(HeadError::BareLf);
        }
        let line_end = i - 1;
        if lines == 0 {
            if line_end - line_start > limits.max_request_line {
                return Err(line_too_long);
            }
        } else if line_end == line_start {
            return Ok(Some(Scan {
                head_len: i + 1,
                fields: lines - 1,
            }));
        } else {
            if matches!(window.get(line_start), Some(b' ' | b'\t')) {
                return Err(HeadError::ObsFold);
            }
            if lines > limits.max_headers {
                return Err(HeadError::TooManyHeaders);
            }
        }
        lines += 1;
        line_start = i + 1;
    }
    if lines == 0 {
        // A trailing CR is the start of the line terminator, not part of the line.
        let partial = window.len() - line_start - usize::from(window.last() == Some(&b'\r'));
        if partial > limits.max_request_line {
            return Err(line_too_long);
        }
    }
    if buf.len() > limits.max_head_bytes {
        return Err(HeadError::HeadersTooLarge);
    }
    Ok(None)
}

/// Error-path refinement shared by every `httparse` error: a NUL or a CR without LF anywhere
/// in the head is reported as such, whatever token `httparse` tripped on. (`httparse` rejects
/// both everywhere, so a head it accepts contains neither; the fuzz invariants check this.)
pub(crate) fn classify_bytes(head: &[u8]) -> Option<HeadError> {
    memchr::memchr2_iter(b'\r', 0, head).find_map(|i| match head.get(i) {
        Some(0) => Some(HeadError::NulByte),
        _ if head.get(i + 1) != Some(&b'\n') => Some(HeadError::BareCr),
        _ => None,
    })
}

/// Offset of `part` inside `base`; `part` must be a subslice of `base` (it is, for every slice
/// `httparse` returns). Saturates instead of panicking if that ever stops being true.
pub(crate) fn offset(base: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(base.as_ptr() as usize)
        .min(base.len())
}

/// Range of `part` inside `base`.
pub(crate) fn range(base: &[u8], part: &[u8]) -> (usize, usize) {
    let start = offset(base, part);
    (start, (start + part.len()).min(base.len()))
}

/// Error-path refinement of `httparse::Error::HeaderName`: was it `name : value`?
pub(crate) fn classify_name_error(head: &[u8]) -> HeadError {
    let mut lines = head.split(|&b| b == b'\n').skip(1);
    let bad = lines.find_map(|line| {
        let name_end = line.iter().position(|&b| !is_tchar(b))?;
        let after = line.get(name_end..)?;
        let ws = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        (name_end > 0 && ws > 0 && after.get(ws) == Some(&b':')).then_some(())
    });
    match bad {
        Some(()) => HeadError::WhitespaceBeforeColon,
        None => HeadError::InvalidHeaderName,
    }
}

/// Error-path refinement of `httparse::Error::Version`: 505 only for a well-formed but
/// unsupported `HTTP/x.y`, 400 (via `otherwise`) for garbage.
pub(crate) fn classify_version_error(version: &[u8], otherwise: HeadError) -> HeadError {
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HeadError::UnsupportedVersion
        }
        _ => otherwise,
    }
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Framing-relevant facts gathered in one walk over the fields.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) cl_count: usize,
    /// Value range of the first `Content-Length`.
    pub(crate) cl_first: (usize, usize),
    /// Every `Content-Length` used at most one SP after the colon and no trailing whitespace.
    pub(crate) cl_ws_ok: bool,
    /// Every `Content-Length` value is byte-identical to the first.
    pub(crate) cl_all_equal: bool,
    pub(crate) te_count: usize,
    pub(crate) te_first: (usize, usize),
    pub(crate) te_ws_ok: bool,
    pub(crate) host_count: usize,
    pub(crate) conn_close: bool,
    pub(crate) conn_keep_alive: bool,
    pub(crate) expect_continue: bool,
    pub(crate) expect_other: bool,
    /// Value range of the first `Content-Type`.
    pub(crate) content_type: Option<(usize, usize)>,
}

/// Record every field's ranges into `fields` and collect [`Facts`].
pub(crate) fn collect(
    head: &[u8],
    parsed: &[httparse::Header<'_>],
    fields: &mut Vec<Field>,
) -> Facts {
    let mut facts = Facts {
        cl_ws_ok: true,
        cl_all_equal: true,
        te_ws_ok: true,
        ..Facts::default()
    };
    for h in parsed {
        let name = range(head, h.name.as_bytes());
        let value = range(head, h.value);
        fields.push(Field { name, value });
        let n = h.name.as_bytes();
        match n.len() {
            4 if n.eq_ignore_ascii_case(b"host") => facts.host_count += 1,
            6 if n.eq_ignore_ascii_case(b"expect") => {
                if h.value.eq_ignore_ascii_case(b"100-continue") {
                    facts.expect_continue = true;
                } else {
                    facts.expect_other = true;
                }
            }
            10 if n.eq_ignore_ascii_case(b"connection") => {
                for t in list_tokens(h.value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        facts.conn_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        facts.conn_keep_alive = true;
                    }
                }
            }
            12 if n.eq_ignore_ascii_case(b"content-type") => {
                facts.content_type.get_or_insert(value);
            }
            14 if n.eq_ignore_ascii_case(b"content-length") => {
                facts.cl_ws_ok &= strict_ows(head, name, value);
                if facts.cl_count == 0 {
                    facts.cl_first = value;
                } else {
                    facts.cl_all_equal &=
                        head.get(facts.cl_first.0..facts.cl_first.1) == Some(h.value);
                }
                facts.cl_count += 1;
            }
            17 if n.eq_ignore_ascii_case(b"transfer-encoding") => {
                facts.te_ws_ok &= strict_ows(head, name, value);
                if facts.te_count == 0 {
                    facts.te_first = value;
                }
                facts.te_count += 1;
            }
            _ => {}
        }
    }
    facts
}

/// Framing fields must look exactly like what real clients send: `Name:value` or `Name: value`,
/// immediately followed by CRLF. `httparse` trims any run of SP/HT on both sides, which is how
/// `Transfer-Encoding:\tchunked` or `Content-Length: 5 ` slip past one parser and not another;
/// we refuse rather than guess what the upstream would make of them.
fn strict_ows(head: &[u8], name: (usize, usize), value: (usize, usize)) -> bool {
    let gap = head.get(name.1 + 1..value.0).unwrap_or(b"x");
    let lead_ok = gap.is_empty() || gap == b" ";
    lead_ok && value.1 > value.0 && head.get(value.1) == Some(&b'\r')
}

/// Strict `Content-Length`: 1–19 ASCII digits (19 digits always fit in `u64`; longer is absurd).
pub(crate) fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    /// 19 decimal digits fit in u64 (max is 20 digits); nobody sends a 10-exabyte body.
    const MAX_DIGITS: usize = 19;
    if v.contains(&b',') {
        return Err(HeadError::DuplicateContentLength);
    }
    if v.is_empty() || v.len() > MAX_DIGITS {
        return Err(HeadError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(HeadError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(HeadError::InvalidContentLength)?;
    }
    Ok(n)
}
