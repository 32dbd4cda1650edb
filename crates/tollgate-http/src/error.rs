//! The one error type for head parsing, with its exhaustive status mapping.
//!
//! Every rejection is its own variant so that metrics and logs can tell smuggling attempts apart
//! from plain garbage, and so the JSON error body carries a stable machine-readable `code`.
//! `Display` never echoes header values: they may hold credentials, and echoing attacker bytes
//! into logs is its own injection vector.

use std::fmt;

/// Why a request or response head was rejected.
///
/// Every variant means "answer, then close the connection": after a framing error the byte
/// stream can no longer be trusted to be aligned on message boundaries.
///
/// [`HeadError::status`] is the status to answer a *client* with when its request head fails.
/// When [`crate::parse_response_head`] fails, the upstream sent something we cannot frame: answer
/// the client [`HeadError::UPSTREAM_STATUS`] (502) and never reuse that upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadError {
    /// The request line exceeded `max_request_line` (checked even before its CRLF arrives).
    UriTooLong,
    /// The head exceeded `max_head_bytes` (checked even before it is complete).
    HeadersTooLarge,
    /// More than `max_headers` header fields.
    TooManyHeaders,
    /// The request line is not `token SP request-target SP HTTP-version`.
    InvalidRequestLine,
    /// The status line is not `HTTP-version SP 3DIGIT SP reason`.
    InvalidStatusLine,
    /// The version is not `HTTP/1.0` or `HTTP/1.1`.
    UnsupportedVersion,
    /// The request target is not origin-form (`/path?query`, ASCII only): absolute-form,
    /// authority-form and asterisk-form are refused.
    InvalidTarget,
    /// The method is `CONNECT`; tunnelling is not offered by the gateway.
    ConnectNotSupported,
    /// A header name contains a byte outside the RFC 9110 `token` set.
    InvalidHeaderName,
    /// Whitespace between a header name and its colon (`Transfer-Encoding : chunked`).
    WhitespaceBeforeColon,
    /// A header value contains a control character.
    InvalidHeaderValue,
    /// A header line starts with SP or HT (obsolete line folding).
    ObsFold,
    /// A CR not immediately followed by LF.
    BareCr,
    /// An LF not immediately preceded by CR.
    BareLf,
    /// A NUL byte in the head.
    NulByte,
    /// HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// More than one `Host` header.
    DuplicateHost,
    /// Both `Content-Length` and `Transfer-Encoding` are present (CL.TE / TE.CL smuggling).
    ContentLengthAndTransferEncoding,
    /// More than one `Content-Length` (request: even if equal; response: only if they differ),
    /// or a comma-separated list.
    DuplicateContentLength,
    /// `Content-Length` is not 1–19 ASCII digits with at most one SP before it and nothing after.
    InvalidContentLength,
    /// More than one `Transfer-Encoding` header.
    DuplicateTransferEncoding,
    /// `Transfer-Encoding` is anything other than exactly `chunked` (case-insensitive, at most one
    /// SP before it, nothing after).
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message, which cannot carry it.
    TransferEncodingInHttp10,
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed,
}

impl HeadError {
    /// Status to answer the client with when an *upstream* response head fails to parse.
    pub const UPSTREAM_STATUS: u16 = 502;

    /// HTTP status to answer a client whose request head failed with this error.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::UriTooLong => 414,
            HeadError::HeadersTooLarge | HeadError::TooManyHeaders => 431,
            HeadError::UnsupportedVersion => 505,
            // 405: the method is understood but not allowed here; the caller adds `Allow`.
            HeadError::ConnectNotSupported => 405,
            HeadError::ExpectationFailed => 417,
            // Only reachable from response parsing; the client sees a bad gateway.
            HeadError::InvalidStatusLine => Self::UPSTREAM_STATUS,
            HeadError::InvalidRequestLine
            | HeadError::InvalidTarget
            | HeadError::InvalidHeaderName
            | HeadError::WhitespaceBeforeColon
            | HeadError::InvalidHeaderValue
            | HeadError::ObsFold
            | HeadError::BareCr
            | HeadError::BareLf
            | HeadError::NulByte
            | HeadError::MissingHost
            | HeadError::DuplicateHost
            | HeadError::ContentLengthAndTransferEncoding
            | HeadError::DuplicateContentLength
            | HeadError::InvalidContentLength
            | HeadError::DuplicateTransferEncoding
            | HeadError::UnsupportedTransferEncoding
            | HeadError::TransferEncodingInHttp10 => 400,
        }
    }

    /// Stable snake_case code for the JSON error body and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            HeadError::UriTooLong => "uri_too_long",
            HeadError::HeadersTooLarge => "headers_too_large",
            HeadError::TooManyHeaders => "too_many_headers",
            HeadError::InvalidRequestLine => "invalid_request_line",
            HeadError::InvalidStatusLine => "invalid_status_line",
            HeadError::UnsupportedVersion => "unsupported_version",
            HeadError::InvalidTarget => "invalid_target",
            HeadError::ConnectNotSupported => "connect_not_supported",
            HeadError::InvalidHeaderName => "invalid_header_name",
            HeadError::WhitespaceBeforeColon => "whitespace_before_colon",
            HeadError::InvalidHeaderValue => "invalid_header_value",
            HeadError::ObsFold => "obs_fold",
            HeadError::BareCr => "bare_cr",
            HeadError::BareLf => "bare_lf",
            HeadError::NulByte => "nul_byte",
            HeadError::MissingHost => "missing_host",
            HeadError::DuplicateHost => "duplicate_host",
            HeadError::ContentLengthAndTransferEncoding => "content_length_and_transfer_encoding",
            HeadError::DuplicateContentLength => "duplicate_content_length",
            HeadError::InvalidContentLength => "invalid_content_length",
            HeadError::DuplicateTransferEncoding => "duplicate_transfer_encoding",
            HeadError::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            HeadError::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            HeadError::ExpectationFailed => "expectation_failed",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            HeadError::UriTooLong => "request line too long",
            HeadError::HeadersTooLarge => "request head too large",
            HeadError::TooManyHeaders => "too many header fields",
            HeadError::InvalidRequestLine => "malformed request line",
            HeadError::InvalidStatusLine => "malformed status line",
            HeadError::UnsupportedVersion => "unsupported HTTP version",
            HeadError::InvalidTarget => "request target must be an ASCII origin-form path",
            HeadError::ConnectNotSupported => "CONNECT is not supported",
            HeadError::InvalidHeaderName => "invalid header field name",
            HeadError::WhitespaceBeforeColon => "whitespace between header name and colon",
            HeadError::InvalidHeaderValue => "control character in header field value",
            HeadError::ObsFold => "obsolete line folding is not accepted",
            HeadError::BareCr => "CR not followed by LF",
            HeadError::BareLf => "LF not preceded by CR",
            HeadError::NulByte => "NUL byte in head",
            HeadError::MissingHost => "HTTP/1.1 request without Host",
            HeadError::DuplicateHost => "more than one Host header",
            HeadError::ContentLengthAndTransferEncoding => {
                "both Content-Length and Transfer-Encoding present"
            }
            HeadError::DuplicateContentLength => "more than one Content-Length",
            HeadError::InvalidContentLength => "malformed Content-Length",
            HeadError::DuplicateTransferEncoding => "more than one Transfer-Encoding",
            HeadError::UnsupportedTransferEncoding => "Transfer-Encoding must be exactly chunked",
            HeadError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
            HeadError::ExpectationFailed => "only Expect: 100-continue is supported",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HeadError {}
