//! Phase 6, relay: send the backend's answer to the client.
//!
//! * Non-2xx: 5xx and 429 become retryable errors (nothing has been sent yet); other statuses
//!   (400, 404, 422 …) are passed through with the backend's body.
//! * Non-streaming: buffer the body (bounded), read `usage`, answer with Content-Length.
//! * Streaming: decode SSE incrementally; forward each frame as its original bytes, batched per
//!   upstream read into one HTTP chunk and written at once (no per-event buffering). Usage is
//!   captured from the backend's usage chunk, which is removed when the client did not ask for
//!   it; for backends that put usage on the finish chunk (MindIE) and a client that asked for
//!   it, an OpenAI-style usage chunk is synthesised before `[DONE]`.
//! * Commit point: the response head goes out with the first frame. Before it, a failure may be
//!   retried elsewhere; after it, never — the stream ends with an SSE `error` event and no
//!   `[DONE]`.
//! * A client that goes away aborts the upstream request at once (the connection is dropped, so
//!   the inference server stops generating).

use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;
use monoio::io::AsyncWriteRent;
use serde::Deserialize;
use tollgate_core::{Error, ErrorKind, Side};
use tollgate_http::{ChunkedDecoder, Progress, ResponseFraming};
use tollgate_sse::{Decoder, Frame, Usage, encode, openai};

use super::forward::Reply;
use super::inspect::Inspected;
use super::{Action, ReqCtx};
use crate::inbound::Inbound;
use crate::snapshot::Snapshot;
use crate::upstream::UpConn;
use crate::worker::Worker;

/// Largest single SSE frame accepted from a backend. A frame beyond it ends the stream with an
/// error event; raising it lets a backend make us buffer that much per stream.
const MAX_SSE_FRAME: usize = 1 << 20;

/// Body framing state for reading the upstream body.
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
    None,
}

impl Body {
    fn new(f: ResponseFraming, max: u64) -> Body {
        match f {
            ResponseFraming::ContentLength(n) => Body::Length(n),
            ResponseFraming::Chunked => Body::Chunked(ChunkedDecoder::new(max)),
            ResponseFraming::CloseDelimited => Body::Close,
            ResponseFraming::NoBody => Body::None,
        }
    }

    /// Move available payload from `src` to `dst`. Returns true when the body is complete.
    fn pump(&mut self, src: &mut BytesMut, dst: &mut BytesMut) -> Result<bool, Error> {
        match self {
            Body::None => Ok(true),
            Body::Length(rem) => {
                let n = (*rem).min(src.len() as u64) as usize;
                dst.extend_from_slice(&src.split_to(n));
                *rem -= n as u64;
                Ok(*rem == 0)
            }
            Body::Chunked(d) => match d.decode(src, dst) {
                Ok(Progress::Done) => Ok(true),
                Ok(Progress::NeedMore) => Ok(false),
                Err(e) => Err(Error::upstream_retryable(
                    ErrorKind::UpstreamProtocol,
                    format!("Backend sent an invalid chunked body: {e}"),
                )
                .with_code("upstream_bad_body")),
            },
            Body::Close => {
                dst.extend_from_slice(&src.split());
                Ok(false)
            }
        }
    }
}

enum Read {
    Data,
    Eof,
    Failed(&'static str),
    IdleTimeout,
    ClientGone,
}

async fn read_upstream(conn: &mut UpConn, inb: &Inbound, idle: std::time::Duration) -> Read {
    monoio::select! {
        r = monoio::time::timeout(idle, conn.read_more()) => match r {
            Ok(Ok(0)) => Read::Eof,
            Ok(Ok(_)) => Read::Data,
            Ok(Err(_)) => Read::Failed("upstream_reset"),
            Err(_) => Read::IdleTimeout,
        },
        _ = inb.closed() => Read::ClientGone,
    }
}

/// Relay the reply to the client.
#[allow(clippy::too_many_arguments)]
pub async fn relay<W: AsyncWriteRent>(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    b: usize,
    req: &Inspected,
    reply: Reply,
    inb: &Inbound,
    wr: &mut W,
    rq: &mut ReqCtx,
    keep_alive: bool,
) -> Result<Action, Error> {
    let Reply { conn, head } = reply;
    let status = head.status;
    if status >= 500 || status == 429 {
        let retry_after = head
            .headers
            .get("retry-after")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse::<u32>().ok());
        drop(conn); // body not needed; the connection is not reused
        let e = if status == 429 {
            Error::upstream_retryable(
                ErrorKind::UpstreamOverloaded,
                "The backend is overloaded; try again later",
            )
            .with_retry_after(retry_after.or(Some(1)))
        } else {
            Error::upstream_retryable(
                ErrorKind::UpstreamStatus,
                format!("The backend failed with status {status}"),
            )
        };
        return Err(e);
    }
    let backend_name = snap.backend_names.get(b).cloned();
    let result = if status == 200 && req.stream && head.is_event_stream() {
        relay_stream(
            w,
            snap,
            b,
            req,
            conn,
            head.framing,
            head.reusable,
            inb,
            wr,
            rq,
            keep_alive,
        )
        .await
    } else {
        relay_buffered(w, snap, b, conn, head, inb, wr, rq, keep_alive).await
    };
    if result.is_ok() {
        rq.backend = backend_name;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn relay_buffered<W: AsyncWriteRent>(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    b: usize,
    mut conn: UpConn,
    head: tollgate_http::ResponseHead,
    inb: &Inbound,
    wr: &mut W,
    rq: &mut ReqCtx,
    keep_alive: bool,
) -> Result<Action, Error> {
    let up = &snap.config.upstream;
    let mut body = Body::new(head.framing, up.max_response_body_bytes);
    let mut out = BytesMut::new();
    let mut src = std::mem::take(&mut conn.buf);
    loop {
        let done = body.pump(&mut src, &mut out)?;
        if out.len() as u64 > up.max_response_body_bytes {
            return Err(Error::new(
                ErrorKind::UpstreamProtocol,
                Side::Upstream,
                "Backend response body exceeds the limit",
            )
            .with_code("upstream_body_too_large"));
        }
        if done {
            break;
        }
        conn.buf = src;
        let r = read_upstream(&mut conn, inb, up.idle_timeout).await;
        src = std::mem::take(&mut conn.buf);
        match r {
            Read::Data => {}
            Read::Eof if matches!(body, Body::Close) => break,
            Read::Eof | Read::Failed(_) => {
                return Err(Error::upstream_retryable(
                    ErrorKind::UpstreamProtocol,
                    "Backend closed the connection before the body was complete",
                )
                .with_code("upstream_closed"));
            }
            Read::IdleTimeout => {
                return Err(Error::new(
                    ErrorKind::UpstreamTimeout,
                    Side::Upstream,
                    "Backend stalled while sending the response",
                ));
            }
            Read::ClientGone => {
                rq.client_aborted = true;
                rq.status = 499;
                rq.error = Some("client_closed");
                return Ok(Action::Close);
            }
        }
    }
    // Extra bytes after a complete body, or a close-delimited body: never reuse.
    let reusable = head.reusable && src.is_empty() && !matches!(body, Body::Close);
    if reusable {
        conn.buf = src;
        if let Some(key) = snap.pool_keys.get(b) {
            w.pool.checkin(key, conn, up.pool_max_idle_per_backend);
        }
    }
    if head.status == 200 {
        rq.usage = openai::usage_from_body(&out);
    }
    let out = if head.status == 200 {
        scan_body(w, snap, out.freeze(), rq)?
    } else {
        out.freeze()
    };
    let ct = head
        .content_type()
        .and_then(|c| std::str::from_utf8(c).ok())
        .unwrap_or("application/json")
        .to_string();
    let t_first = rq.started.elapsed();
    rq.status = head.status;
    let n = super::respond::full(wr, head.status, &rq.id, &ct, "", out, !keep_alive).await;
    rq.bytes_out += n as u64;
    rq.ttft = Some(t_first);
    Ok(if n == 0 {
        Action::Close
    } else {
        Action::KeepAlive
    })
}

/// Response-side scanning of a complete body: mask rewrites it, block refuses it (400 with the
/// rule id as the code; nothing of the answer is sent). A 200 body that is not the expected
/// JSON cannot be scanned and is not passed on.
fn scan_body(
    w: &Worker,
    snap: &Arc<Snapshot>,
    body: bytes::Bytes,
    rq: &mut ReqCtx,
) -> Result<bytes::Bytes, Error> {
    use tollgate_scan::Direction;
    let Some(rules) = snap
        .config
        .scan
        .as_ref()
        .filter(|r| r.active(Direction::Response))
    else {
        return Ok(body);
    };
    let r = w
        .with_scanner(rules, |sc| tollgate_scan::json::scan_response(sc, &body))?
        .map_err(|_| {
            Error::new(
                ErrorKind::UpstreamProtocol,
                Side::Upstream,
                "The backend's response is not JSON of the expected shape and cannot be scanned",
            )
            .with_code("upstream_bad_body")
        })?;
    rq.scan_hits
        .extend(r.hits.iter().map(|h| (h.rule as u32, Direction::Response)));
    if let Some(rule) = r.blocked {
        let code = rules.code(rule);
        return Err(Error::client(
            ErrorKind::ContentBlocked,
            format!("The response was blocked by content rule '{code}'"),
        )
        .with_code(code));
    }
    Ok(r.body.map(bytes::Bytes::from).unwrap_or(body))
}

/// Ids of a chunk, for synthesising the usage chunk.
#[derive(Deserialize)]
struct ChunkIds<'a> {
    #[serde(borrow, default)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    model: std::borrow::Cow<'a, str>,
    #[serde(default)]
    created: u64,
}

struct StreamState {
    client_wants_usage: bool,
    synth_needed: bool,
    synth: Option<bytes::Bytes>,
    usage: Option<Usage>,
    saw_done: bool,
    /// Response scanning: the rules and the per-stream state.
    scan: Option<(
        Arc<tollgate_scan::RuleSet>,
        tollgate_scan::json::StreamScanner,
    )>,
    /// A block rule matched (rule index).
    blocked: Option<usize>,
    /// A chunk could not be scanned.
    scan_failed: bool,
    /// Completion tokens the reservation still covers on a `stream_overrun = "cut"` limit
    /// (`None`: no such limit applies).
    allowance: Option<u64>,
    /// A token limit ran out mid-stream and the rule says cut.
    cut: bool,
}

/// Completion tokens asked of the limits at a time when a stream runs past its reservation.
/// Smaller = a cut lands closer to the budget; larger = fewer counter updates per stream.
const EXTEND_STEP: u64 = 16;

/// Append one `data:` frame.
fn push_data(out: &mut BytesMut, payload: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
}

impl StreamState {
    fn stopped(&self) -> bool {
        self.blocked.is_some() || self.scan_failed || self.cut
    }

    /// Account one content chunk (one token: servers stream a token per chunk; the backend's
    /// usage report settles the exact figure). False when a cut limit cannot cover it.
    fn charge_chunk(&mut self, rq: &mut ReqCtx) -> bool {
        rq.completion_chunks += 1;
        let Some(left) = self.allowance else {
            return true;
        };
        if left > 0 {
            self.allowance = Some(left - 1);
            return true;
        }
        let extended = rq
            .admission
            .as_mut()
            .is_some_and(|a| a.extend_completion(EXTEND_STEP, super::reserve::now_ms()));
        if extended {
            self.allowance = Some(EXTEND_STEP - 1);
            return true;
        }
        self.cut = true;
        false
    }

    /// Move the scanner's hits into the request context.
    fn take_hits(&mut self, rq: &mut ReqCtx) {
        if let Some((_, ss)) = &mut self.scan {
            rq.scan_hits.extend(
                ss.hits
                    .drain(..)
                    .map(|h| (h.rule as u32, tollgate_scan::Direction::Response)),
            );
        }
    }

    fn process(&mut self, w: &Worker, f: Frame, out: &mut BytesMut, rq: &mut ReqCtx) {
        use tollgate_scan::json::ChunkOut;
        if self.stopped() {
            return;
        }
        let mut replaced = None;
        if let (Some((rules, ss)), Some(data)) = (&mut self.scan, &f.data) {
            if f.is_done() {
                match w.with_scanner(rules, |sc| ss.on_done(sc)) {
                    Ok(Ok(chunks)) => {
                        for c in chunks {
                            push_data(out, &c);
                        }
                    }
                    Ok(Err(tollgate_scan::Blocked(rule))) => {
                        self.blocked = Some(rule);
                        return;
                    }
                    Err(_) => {
                        self.scan_failed = true;
                        return;
                    }
                }
            } else {
                match w.with_scanner(rules, |sc| ss.on_chunk(sc, data)) {
                    Ok(ChunkOut::Unchanged) => {}
                    Ok(ChunkOut::Replace(v)) => replaced = Some(v),
                    Ok(ChunkOut::Blocked(rule)) => {
                        self.blocked = Some(rule);
                        return;
                    }
                    Ok(ChunkOut::Invalid(_)) | Err(_) => {
                        self.scan_failed = true;
                        return;
                    }
                }
            }
        }
        let mut usage_only = false;
        if let Some(data) = &f.data {
            if f.is_done() {
                if let Some(s) = self.synth.take() {
                    out.extend_from_slice(&s);
                }
                self.saw_done = true;
                out.extend_from_slice(&f.raw);
                return;
            }
            if memchr::memmem::find(data, b"\"usage\"").is_some()
                && let Ok(info) = openai::inspect_chunk(data)
                && let Some(u) = info.usage
            {
                // Some servers repeat usage on every chunk: keep the high-water mark.
                self.usage = Some(match self.usage {
                    Some(p) => p.max_merge(u),
                    None => u,
                });
                usage_only = info.is_usage_only;
                if info.is_usage_only && !self.client_wants_usage {
                    return; // we asked for it; the client did not
                }
                if self.synth_needed
                    && !info.is_usage_only
                    && self.client_wants_usage
                    && let Ok(ids) = serde_json::from_slice::<ChunkIds<'_>>(data)
                {
                    self.synth = Some(openai::synth_usage_chunk(
                        &ids.id,
                        &ids.model,
                        ids.created,
                        &u,
                    ));
                }
            }
        }
        if f.data.is_some() && !usage_only && !self.charge_chunk(rq) {
            return;
        }
        match replaced {
            Some(payloads) => {
                for p in payloads {
                    push_data(out, &p);
                }
            }
            None => out.extend_from_slice(&f.raw),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn relay_stream<W: AsyncWriteRent>(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    b: usize,
    req: &Inspected,
    mut conn: UpConn,
    framing: ResponseFraming,
    head_reusable: bool,
    inb: &Inbound,
    wr: &mut W,
    rq: &mut ReqCtx,
    keep_alive: bool,
) -> Result<Action, Error> {
    let up = &snap.config.upstream;
    let kind = snap.config.backends.get(b).map(|x| x.kind);
    let mut st = StreamState {
        client_wants_usage: req.client_wants_usage,
        synth_needed: kind.is_some_and(|k| !k.honours_stream_options()),
        synth: None,
        usage: None,
        saw_done: false,
        scan: snap
            .config
            .scan
            .as_ref()
            .filter(|r| r.active(tollgate_scan::Direction::Response))
            .map(|r| (Arc::clone(r), tollgate_scan::json::StreamScanner::new())),
        blocked: None,
        scan_failed: false,
        allowance: rq.admission.as_ref().and_then(|a| a.completion_allowance()),
        cut: false,
    };
    let mut body = Body::new(framing, u64::MAX);
    let mut sse = Decoder::new(MAX_SSE_FRAME);
    let mut payload = BytesMut::with_capacity(8 * 1024);
    let mut head_sent = false;
    let mut src = std::mem::take(&mut conn.buf);
    w.m(|m| m.active_streams += 1);
    let _guard = StreamGuard(w);
    loop {
        let body_done = body.pump(&mut src, sse.read_buf());
        payload.clear();
        let mut decode_err = None;
        loop {
            match sse.next_frame() {
                Ok(Some(f)) => {
                    st.process(w, f, &mut payload, rq);
                    if st.stopped() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    decode_err = Some(e);
                    break;
                }
            }
        }
        if !payload.is_empty() && !write_frames(wr, &mut head_sent, &payload, rq, keep_alive).await
        {
            rq.client_aborted = true;
            rq.error = Some("client_closed");
            return Ok(Action::Close);
        }
        st.take_hits(rq);
        if let Some(rule) = st.blocked {
            let code = st
                .scan
                .as_ref()
                .map_or("content_blocked", |(r, _)| r.code(rule));
            let msg = format!("The response was blocked by content rule '{code}'");
            rq.error = Some(code);
            if !head_sent {
                return Err(Error::client(ErrorKind::ContentBlocked, msg).with_code(code));
            }
            rq.stream_error = true;
            send_error_event(wr, rq, &msg, "invalid_request_error", code).await;
            return Ok(Action::Close);
        }
        if st.cut {
            let code = "token_limit_exceeded";
            let msg = "The response was cut: the token budget of a limit ran out";
            rq.error = Some(code);
            rq.stream_cut = true;
            rq.usage = st.usage;
            if !head_sent {
                return Err(Error::client(ErrorKind::RateLimited, msg)
                    .with_code(code)
                    .with_retry_after(Some(1)));
            }
            rq.stream_error = true;
            send_error_event(wr, rq, msg, "rate_limit_error", code).await;
            return Ok(Action::Close);
        }
        let failure: Option<(&'static str, &'static str)> = match (&body_done, decode_err) {
            _ if st.scan_failed => Some((
                "upstream_bad_sse",
                "The backend sent a chunk that is not JSON of the expected shape; it cannot be scanned",
            )),
            (Err(_), _) => Some((
                "upstream_bad_body",
                "The backend sent an invalid chunked body",
            )),
            (_, Some(_)) => Some((
                "upstream_bad_sse",
                "The backend sent an invalid event stream",
            )),
            (Ok(true), None) => {
                // Complete body: anything left in the decoder is a truncated event.
                let mut fail = None;
                match sse.finish() {
                    Ok(Some(f)) => {
                        payload.clear();
                        st.process(w, f, &mut payload, rq);
                        st.take_hits(rq);
                        if st.stopped() {
                            continue;
                        }
                        if !write_frames(wr, &mut head_sent, &payload, rq, keep_alive).await {
                            return Ok(Action::Close);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {
                        fail = Some((
                            "upstream_truncated",
                            "The backend ended the stream in the middle of an event",
                        ))
                    }
                }
                if fail.is_none() && !st.saw_done {
                    fail = Some((
                        "upstream_incomplete",
                        "The backend ended the stream without [DONE]",
                    ));
                }
                fail
            }
            (Ok(false), None) => {
                conn.buf = src;
                let r = read_upstream(&mut conn, inb, up.idle_timeout).await;
                src = std::mem::take(&mut conn.buf);
                match r {
                    Read::Data => continue,
                    Read::Eof if matches!(body, Body::Close) => {
                        body = Body::None;
                        continue;
                    }
                    Read::Eof => Some((
                        "upstream_closed",
                        "The backend closed the connection mid-stream",
                    )),
                    Read::Failed(code) => Some((code, "The backend connection failed mid-stream")),
                    Read::IdleTimeout => {
                        Some(("upstream_idle_timeout", "The backend stalled mid-stream"))
                    }
                    Read::ClientGone => {
                        // Dropping `conn` closes the upstream socket: the server stops generating.
                        rq.client_aborted = true;
                        rq.error = Some("client_closed");
                        if rq.status == 0 {
                            rq.status = 499;
                        }
                        return Ok(Action::Close);
                    }
                }
            }
        };
        let complete = matches!(body_done, Ok(true)) && failure.is_none();
        if let Some((code, msg)) = failure {
            if !head_sent {
                // Nothing reached the client: this may be retried elsewhere.
                let kind = if code == "upstream_idle_timeout" {
                    ErrorKind::UpstreamTimeout
                } else {
                    ErrorKind::UpstreamProtocol
                };
                let retry = kind == ErrorKind::UpstreamProtocol;
                return Err(Error {
                    retry,
                    ..Error::new(kind, Side::Upstream, msg).with_code(code)
                });
            }
            // After the first byte: never retry. End with an error event and no [DONE].
            rq.upstream_errors.push((
                snap.backend_names
                    .get(b)
                    .cloned()
                    .unwrap_or_else(|| Arc::from("")),
                code,
            ));
            rq.stream_error = true;
            rq.error = Some(code);
            rq.usage = st.usage;
            send_error_event(wr, rq, msg, "upstream_error", code).await;
            return Ok(Action::Close);
        }
        if complete {
            rq.usage = st.usage;
            if !head_sent {
                // An empty but well-formed stream: still send a valid (empty) response.
                let _ = write_frames(wr, &mut head_sent, &[], rq, keep_alive).await;
            }
            if !super::respond::send(wr, b"0\r\n\r\n".to_vec()).await {
                return Ok(Action::Close);
            }
            rq.bytes_out += 5;
            if head_reusable && src.is_empty() {
                conn.buf = src;
                if let Some(key) = snap.pool_keys.get(b) {
                    w.pool.checkin(key, conn, up.pool_max_idle_per_backend);
                }
            }
            return Ok(Action::KeepAlive);
        }
    }
}

/// End a committed stream with an SSE `error` event and the last chunk (no `[DONE]`).
async fn send_error_event<W: AsyncWriteRent>(
    wr: &mut W,
    rq: &mut ReqCtx,
    msg: &str,
    err_type: &str,
    code: &str,
) {
    let ev = encode::error_event(msg, err_type, Some(code));
    let mut tail = BytesMut::new();
    tail.extend_from_slice(format!("{:x}\r\n", ev.len()).as_bytes());
    tail.extend_from_slice(&ev);
    tail.extend_from_slice(b"\r\n0\r\n\r\n");
    let n = tail.len();
    rq.bytes_out += if super::respond::send(wr, tail.to_vec()).await {
        n as u64
    } else {
        0
    };
}

struct StreamGuard<'a>(&'a Worker);

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.m(|m| m.active_streams -= 1);
    }
}

/// Write `payload` as one HTTP chunk, preceded by the response head the first time.
/// Returns false when the client is gone.
async fn write_frames<W: AsyncWriteRent>(
    wr: &mut W,
    head_sent: &mut bool,
    payload: &[u8],
    rq: &mut ReqCtx,
    keep_alive: bool,
) -> bool {
    let mut out = Vec::with_capacity(payload.len() + 256);
    if !*head_sent {
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-request-id: {}\r\n{}\r\n",
                rq.id,
                if keep_alive { "" } else { "connection: close\r\n" }
            )
            .as_bytes(),
        );
        *head_sent = true;
        rq.status = 200;
        rq.ttft = Some(rq.started.elapsed());
    }
    if !payload.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    }
    let n = out.len();
    if super::respond::send(wr, out).await {
        rq.bytes_out += n as u64;
        true
    } else {
        false
    }
}
