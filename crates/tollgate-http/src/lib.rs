//! Strict, runtime-free HTTP/1.1 framing for the tollgate dataplane.
//!
//! The gateway sits between untrusted clients and inference servers (vLLM, SGLang, MindIE) whose
//! own HTTP stacks are lenient in different ways. Any byte sequence that two HTTP parsers could
//! frame differently is a request-smuggling vector, so this crate accepts only the unambiguous
//! subset of HTTP/1.1 and turns everything else into a typed error that maps to a status code and
//! "close the connection".
//!
//! The crate is deliberately pure: functions take bytes and return values. The dataplane reads
//! from io_uring sockets into a `BytesMut` and calls [`parse_request_head`],
//! [`ChunkedDecoder::decode`], [`parse_response_head`] and the [`encode`] helpers. No async
//! runtime, no I/O, no panics — which is what makes every parser here fuzzable and benchmarkable.
//!
//! `httparse` is the tokenizer; the strictness (bare CR/LF/NUL, obs-fold, framing header rules,
//! origin-form targets, limits that fire on incomplete input) is layered on top in `scan` and
//! the per-direction modules.
#![deny(missing_docs)]

pub mod chunked;
pub mod encode;
mod error;
mod headers;
#[doc(hidden)]
pub mod invariants;
pub mod request;
pub mod response;
mod scan;

pub use chunked::{ChunkError, ChunkedDecoder, Progress};
pub use error::HeadError;
pub use headers::Headers;
pub use request::{Method, RequestHead, parse_request_head};
pub use response::{ResponseFraming, ResponseHead, parse_response_head};

/// Default cap on the request line (method, target, version), in bytes, excluding CRLF.
///
/// Chat-completion clients send short paths; 8 KiB matches nginx's `large_client_header_buffers`
/// line size. Raising it lets longer query strings through and raises the bytes a slow client can
/// make us rescan before we answer 414.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;

/// Default cap on the whole head (start line, fields, final CRLF), in bytes.
///
/// 32 KiB fits large bearer tokens and tracing baggage. Every parse attempt rescans the buffered
/// prefix, so the worst-case CPU per head is proportional to this squared over the read size;
/// raising it also raises per-connection buffer memory before a 431.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 32 * 1024;

/// Default cap on the number of header fields.
///
/// 100 is well above what SDKs send (~10–20). Heads with at most 64 fields parse with a stack
/// array; above that the parser allocates a temporary vector, so raising this only costs memory
/// for the heads that actually use it.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Limits enforced while parsing a head, including on incomplete input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest start line accepted, in bytes excluding CRLF (request: 414 beyond it).
    pub max_request_line: usize,
    /// Longest head accepted, in bytes including the terminating empty line (431 beyond it).
    pub max_head_bytes: usize,
    /// Most header fields accepted (431 beyond it).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// How a request body (or an outgoing message body) is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` was sent.
    None,
    /// Exactly this many body bytes follow the head.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`; decode with [`ChunkedDecoder`].
    Chunked,
}
