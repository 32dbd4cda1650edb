//! Phase 5, forward: build the upstream request for the backend kind, take a pooled connection
//! (or open one), send, and wait for the response head within the first-byte timeout.
//!
//! The upstream request is built from scratch: fixed method and API path under the backend's
//! base path, the backend's Host, our own request id, and for cloud backends the configured API
//! key. No client header is forwarded — not its Authorization, not hop-by-hop headers, not test
//! fault headers — so a client can never steer or authenticate as the gateway upstream.

use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::{Error, ErrorKind};
use tollgate_http::{ResponseHead, parse_response_head};

use super::inspect::Inspected;
use crate::snapshot::Snapshot;
use crate::upstream::{UpConn, connect};
use crate::worker::Worker;

/// A response head and the connection it came on.
pub struct Reply {
    /// Upstream connection (its `buf` holds body bytes read past the head).
    pub conn: UpConn,
    /// Parsed response head.
    pub head: ResponseHead,
}

fn build_request(snap: &Snapshot, b: usize, req: &Inspected, req_id: &str) -> Vec<u8> {
    let Some(be) = snap.config.backends.get(b) else {
        return Vec::new();
    };
    let body = if be.kind.honours_stream_options() {
        req.body_with_usage.as_ref().unwrap_or(&req.body)
    } else {
        &req.body
    };
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(be.base_path.as_bytes());
    out.extend_from_slice(req.api.path().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(be.host_header.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(if req.stream {
        &b"\r\naccept: text/event-stream"[..]
    } else {
        &b"\r\naccept: application/json"[..]
    });
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(req_id.as_bytes());
    if let Some(k) = &be.api_key {
        out.extend_from_slice(b"\r\nauthorization: Bearer ");
        out.extend_from_slice(k.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// Send the request to backend `b` and read the response head.
pub async fn forward(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    b: usize,
    req: &Inspected,
    req_id: &str,
) -> Result<Reply, Error> {
    let Some(be) = snap.config.backends.get(b) else {
        return Err(Error::internal("backend index out of range"));
    };
    let key = snap
        .pool_keys
        .get(b)
        .cloned()
        .unwrap_or_else(|| Arc::from(""));
    let up = &snap.config.upstream;
    let bytes = build_request(snap, b, req, req_id);
    // A pooled connection may have been closed by the backend just now (idle race): if it fails
    // before any response byte, try once more on a fresh connection to the same backend.
    let mut pooled = w.pool.checkout(&key, up.pool_idle_timeout);
    loop {
        let was_pooled = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(c) => c,
            None => {
                let addr = *be.addrs.first().ok_or_else(|| {
                    Error::upstream_retryable(
                        ErrorKind::UpstreamConnect,
                        "backend has no resolved address",
                    )
                })?;
                let tls = snap.upstream_tls.get(b).and_then(|t| t.as_ref());
                connect(addr, tls, up.connect_timeout).await.map_err(|e| {
                    let code = if e.kind() == std::io::ErrorKind::TimedOut {
                        "upstream_connect_timeout"
                    } else {
                        "upstream_connect_error"
                    };
                    Error::upstream_retryable(
                        ErrorKind::UpstreamConnect,
                        "Could not connect to the backend",
                    )
                    .with_code(code)
                })?
            }
        };
        conn.requests += 1;
        if conn.write_all(bytes.clone()).await.is_err() {
            if was_pooled {
                continue;
            }
            return Err(Error::upstream_retryable(
                ErrorKind::UpstreamConnect,
                "Backend closed the connection",
            )
            .with_code("upstream_write_error"));
        }
        match read_head(&mut conn, snap).await {
            Ok(head) => return Ok(Reply { conn, head }),
            Err(HeadFail::ClosedBeforeAnyByte) if was_pooled => continue,
            Err(HeadFail::ClosedBeforeAnyByte) => {
                return Err(Error::upstream_retryable(
                    ErrorKind::UpstreamProtocol,
                    "Backend closed the connection without a response",
                )
                .with_code("upstream_closed"));
            }
            Err(HeadFail::Err(e)) => return Err(e),
        }
    }
}

enum HeadFail {
    ClosedBeforeAnyByte,
    Err(Error),
}

async fn read_head(conn: &mut UpConn, snap: &Snapshot) -> Result<ResponseHead, HeadFail> {
    let deadline = std::time::Instant::now() + snap.config.upstream.first_byte_timeout;
    let mut got_any = !conn.buf.is_empty();
    loop {
        match parse_response_head(&conn.buf, &snap.head_limits, false) {
            Ok(Some(h)) if h.is_interim() => {
                let _ = conn.buf.split_to(h.head_len.min(conn.buf.len()));
                continue;
            }
            Ok(Some(h)) => {
                let _ = conn.buf.split_to(h.head_len.min(conn.buf.len()));
                return Ok(h);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(HeadFail::Err(
                    Error::upstream_retryable(
                        ErrorKind::UpstreamProtocol,
                        format!("Backend sent an invalid response head: {e}"),
                    )
                    .with_code("upstream_bad_head"),
                ));
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match monoio::time::timeout(left, conn.read_more()).await {
            Ok(Ok(0)) | Ok(Err(_)) if !got_any => return Err(HeadFail::ClosedBeforeAnyByte),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Err(HeadFail::Err(
                    Error::upstream_retryable(
                        ErrorKind::UpstreamProtocol,
                        "Backend closed the connection mid-head",
                    )
                    .with_code("upstream_closed"),
                ));
            }
            Ok(Ok(_)) => got_any = true,
            Err(_) => {
                // Not retried: the backend may still be working on it; a second backend would
                // double the GPU work.
                return Err(HeadFail::Err(Error::new(
                    ErrorKind::UpstreamTimeout,
                    tollgate_core::Side::Upstream,
                    "Backend did not answer within the first-byte timeout",
                )));
            }
        }
    }
}
