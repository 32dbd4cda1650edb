//! One error type for the whole gateway: what went wrong (`kind`), which side caused it (`side`)
//! and whether a retry on another backend is allowed (`retry`). The kind → HTTP status mapping is
//! one exhaustive match with no `_` arm, so adding a kind forces a decision about its status.
//! Error bodies follow OpenAI's shape `{"error":{"message","type","code"}}` and never echo request
//! bytes (keys, header values, matched content).

use std::borrow::Cow;
use std::fmt;

/// Which side of the gateway an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The downstream client sent something we reject.
    Client,
    /// The backend (inference server) failed or misbehaved.
    Upstream,
    /// A bug or resource problem inside the gateway.
    Internal,
    /// The configuration or a rule file is invalid.
    Config,
}

impl Side {
    /// Stable lowercase name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
            Side::Config => "config",
        }
    }
}

/// What went wrong. Each kind has exactly one HTTP status and one OpenAI error `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed request framing or syntax (strict HTTP/1.1 rules) — connection is closed.
    BadFraming,
    /// Request is well-framed but invalid (bad JSON, missing `model`, wrong types).
    InvalidRequest,
    /// `Content-Type` is not JSON on a JSON endpoint.
    UnsupportedMediaType,
    /// Path is not one of the proxied API paths.
    NotFound,
    /// Path exists but not with this method.
    MethodNotAllowed,
    /// The requested model is not configured.
    ModelNotFound,
    /// Request line longer than the configured limit.
    UriTooLong,
    /// Header section too large or too many fields.
    HeadersTooLarge,
    /// Request body larger than the configured limit.
    BodyTooLarge,
    /// Client too slow sending the head or the body.
    RequestTimeout,
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed,
    /// Could not connect to any backend (refused, unreachable, TLS failure).
    UpstreamConnect,
    /// Backend did not answer within the first-byte or idle timeout.
    UpstreamTimeout,
    /// Backend answered with a 5xx status.
    UpstreamStatus,
    /// Backend answered 429 / overloaded.
    UpstreamOverloaded,
    /// Backend reply violated HTTP framing or the SSE/JSON contract.
    UpstreamProtocol,
    /// No backend is available for the model.
    NoBackend,
    /// Gateway is draining for shutdown.
    ShuttingDown,
    /// A content-scanning rule with action `block` matched (request or response).
    ContentBlocked,
    /// Missing, malformed, unknown, expired or revoked API key.
    Unauthorized,
    /// Authenticated (or not yet), but not allowed: a model the key may not use, or a client
    /// address the IP rules deny.
    Forbidden,
    /// A request, concurrency or token limit is exhausted (`Retry-After` says when to come back).
    RateLimited,
    /// Bug or resource exhaustion in the gateway.
    Internal,
}

impl ErrorKind {
    /// The HTTP status sent to the client for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadFraming => 400,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::ModelNotFound => 404,
            ErrorKind::UriTooLong => 414,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::ExpectationFailed => 417,
            ErrorKind::UpstreamConnect => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::UpstreamStatus => 502,
            ErrorKind::UpstreamOverloaded => 503,
            ErrorKind::UpstreamProtocol => 502,
            ErrorKind::NoBackend => 503,
            ErrorKind::ShuttingDown => 503,
            ErrorKind::ContentBlocked => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
        }
    }

    /// OpenAI error `type` field.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::BadFraming
            | ErrorKind::InvalidRequest
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::NotFound
            | ErrorKind::MethodNotAllowed
            | ErrorKind::ModelNotFound
            | ErrorKind::UriTooLong
            | ErrorKind::HeadersTooLarge
            | ErrorKind::BodyTooLarge
            | ErrorKind::RequestTimeout
            | ErrorKind::ExpectationFailed
            | ErrorKind::ContentBlocked => "invalid_request_error",
            ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamTimeout
            | ErrorKind::UpstreamStatus
            | ErrorKind::UpstreamOverloaded
            | ErrorKind::UpstreamProtocol
            | ErrorKind::NoBackend
            | ErrorKind::ShuttingDown => "upstream_error",
            // OpenAI answers a bad key with `invalid_request_error` / `invalid_api_key`.
            ErrorKind::Unauthorized => "invalid_request_error",
            ErrorKind::Forbidden => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Internal => "server_error",
        }
    }

    /// Default stable `code` for the JSON body (callers may give a more precise one).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadFraming => "bad_request",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::UriTooLong => "uri_too_long",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::ExpectationFailed => "expectation_failed",
            ErrorKind::UpstreamConnect => "upstream_connect_error",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamStatus => "upstream_error",
            ErrorKind::UpstreamOverloaded => "upstream_overloaded",
            ErrorKind::UpstreamProtocol => "upstream_protocol_error",
            ErrorKind::NoBackend => "no_backend_available",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::ContentBlocked => "content_blocked",
            ErrorKind::Unauthorized => "invalid_api_key",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::Internal => "internal_error",
        }
    }

    /// Whether the gateway must close the client connection after answering.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::BadFraming
                | ErrorKind::UriTooLong
                | ErrorKind::HeadersTooLarge
                | ErrorKind::BodyTooLarge
                | ErrorKind::RequestTimeout
                | ErrorKind::ExpectationFailed
        )
    }
}

/// A gateway error: kind, side, retry permission and a client-safe message.
#[derive(Clone, Debug)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Who caused it.
    pub side: Side,
    /// Whether the request may be retried on another backend (only before the first byte).
    pub retry: bool,
    /// Client-safe message (never contains request bytes or secrets).
    pub message: Cow<'static, str>,
    /// Precise stable code overriding `kind.code()`.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header, when known.
    pub retry_after: Option<u32>,
}

impl Error {
    /// A new error with the kind's default code and no retry.
    pub fn new(kind: ErrorKind, side: Side, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            side,
            retry: false,
            message: message.into(),
            code: None,
            retry_after: None,
        }
    }

    /// Client-side error.
    pub fn client(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(kind, Side::Client, message)
    }

    /// Upstream error that may be retried on another backend.
    pub fn upstream_retryable(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            retry: true,
            ..Error::new(kind, Side::Upstream, message)
        }
    }

    /// Internal error.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Internal, Side::Internal, message)
    }

    /// Set a precise code.
    pub fn with_code(mut self, code: &'static str) -> Error {
        self.code = Some(code);
        self
    }

    /// Set Retry-After seconds.
    pub fn with_retry_after(mut self, secs: Option<u32>) -> Error {
        self.retry_after = secs;
        self
    }

    /// HTTP status for the client.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The stable code in the JSON body.
    pub fn code(&self) -> &'static str {
        self.code.unwrap_or_else(|| self.kind.code())
    }

    /// The OpenAI-shaped JSON body.
    pub fn json_body(&self) -> Vec<u8> {
        error_json(&self.message, self.kind.openai_type(), self.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.message,
            self.code(),
            self.side.as_str()
        )
    }
}

impl std::error::Error for Error {}

/// Render `{"error":{"message":..,"type":..,"code":..}}` with proper JSON escaping.
pub fn error_json(message: &str, err_type: &str, code: &str) -> Vec<u8> {
    let v = serde_json::json!({"error": {"message": message, "type": err_type, "code": code}});
    serde_json::to_vec(&v).unwrap_or_else(|_| b"{\"error\":{}}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_openai_shape_and_escapes() {
        let e = Error::client(ErrorKind::InvalidRequest, "bad \"model\"\n");
        let v: serde_json::Value = serde_json::from_slice(&e.json_body()).unwrap();
        assert_eq!(v["error"]["message"], "bad \"model\"\n");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "invalid_request");
    }

    #[test]
    fn statuses_match_the_issue_contract() {
        assert_eq!(ErrorKind::UriTooLong.status(), 414);
        assert_eq!(ErrorKind::HeadersTooLarge.status(), 431);
        assert_eq!(ErrorKind::BodyTooLarge.status(), 413);
        assert_eq!(ErrorKind::RequestTimeout.status(), 408);
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::UpstreamConnect.status(), 502);
        assert_eq!(ErrorKind::NoBackend.status(), 503);
        assert!(ErrorKind::BadFraming.closes_connection());
        assert!(!ErrorKind::ModelNotFound.closes_connection());
        assert_eq!(ErrorKind::Unauthorized.status(), 401);
        assert_eq!(ErrorKind::Forbidden.status(), 403);
        assert_eq!(ErrorKind::RateLimited.status(), 429);
        assert!(!ErrorKind::RateLimited.closes_connection());
    }
}
