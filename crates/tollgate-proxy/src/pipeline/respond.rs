//! Writing gateway-generated responses: JSON errors in OpenAI's shape and small JSON bodies.
//! Returns the number of bytes written (0 when the client is gone).

use bytes::Bytes;
use std::time::Duration;

use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use tollgate_core::Error;

/// Longest a single write to a client may take. A client that stops reading (a slow reader
/// holding a stream open) is cut off after this, which also closes the upstream request.
/// Raising it tolerates slower links; lowering it frees stuck streams sooner.
pub const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Write all of `data` to the client within [`CLIENT_WRITE_TIMEOUT`]. False when the client is
/// gone or too slow (the caller then closes the connection).
pub async fn send<W: AsyncWriteRent>(wr: &mut W, data: Vec<u8>) -> bool {
    matches!(
        monoio::time::timeout(CLIENT_WRITE_TIMEOUT, wr.write_all(data)).await,
        Ok((Ok(_), _))
    )
}

/// Reason phrase for the statuses the gateway sends itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Write a complete response with a body.
pub async fn full<W: AsyncWriteRent>(
    wr: &mut W,
    status: u16,
    req_id: &str,
    content_type: &str,
    extra: &str,
    body: Bytes,
    close: bool,
) -> usize {
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-request-id: {req_id}\r\n{extra}{}\r\n",
            reason(status),
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    let n = out.len();
    if send(wr, out).await { n } else { 0 }
}

/// Write a JSON body.
pub async fn json<W: AsyncWriteRent>(
    wr: &mut W,
    status: u16,
    req_id: &str,
    body: Bytes,
    close: bool,
) -> usize {
    full(wr, status, req_id, "application/json", "", body, close).await
}

/// Write an error in OpenAI's shape (`{"error":{"message","type","code"}}`).
pub async fn error<W: AsyncWriteRent>(wr: &mut W, req_id: &str, e: &Error, close: bool) -> usize {
    let mut extra = String::new();
    if let Some(s) = e.retry_after {
        extra.push_str(&format!("retry-after: {s}\r\n"));
    }
    if e.kind == tollgate_core::ErrorKind::MethodNotAllowed {
        extra.push_str("allow: POST, GET\r\n");
    }
    full(
        wr,
        e.status(),
        req_id,
        "application/json",
        &extra,
        Bytes::from(e.json_body()),
        close,
    )
    .await
}
