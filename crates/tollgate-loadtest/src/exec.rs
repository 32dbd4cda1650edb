//! Executes one inference request and measures it from the client's side.
//!
//! Phases, in order: take a connection → send → read the head → read the body, feeding every
//! read (stamped when it returned) through the chunked decoder, the SSE decoder and the OpenAI
//! chunk classifier. The whole exchange runs under the per-request timeout.
//!
//! Definitions (routing.md §4.2):
//! - **TTFT**: send → the read that delivered the first *content* event (the role chunk is not a
//!   token). Non-streaming: TTFT = E2E.
//! - **ITL**: gaps between consecutive content events. Events delivered by the same read get a
//!   0 gap, which is what a client sees when a proxy coalesces frames.
//! - **E2E**: send → end of body.
//!
//! Error kinds are exclusive and checked in this order: connect, timeout, protocol (not HTTP),
//! HTTP status ≠ 200, stream error event (or an error body), truncated (no `[DONE]`, or the
//! body was cut).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{BodyEnd, Conn, HeadError, Pool};
use crate::openai::{Usage, classify_chunk, parse_completion};
use crate::sse::SseDecoder;

/// Most of a non-streaming body we keep (bytes); the rest is read and dropped.
const MAX_JSON_BODY: usize = 16 << 20;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect failed or timed out.
    Connect,
    /// The per-request timeout fired.
    Timeout,
    /// The response was not valid HTTP/1.1, or the server hung up inside the head.
    Protocol,
    /// A status other than 200.
    HttpStatus,
    /// An `{"error": …}` SSE event or error body, or an unparsable event.
    StreamError,
    /// The stream ended without `[DONE]`, or the body was cut, or no response came.
    Truncated,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
        ErrorKind::HttpStatus,
        ErrorKind::StreamError,
        ErrorKind::Truncated,
    ];

    /// snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::Truncated => "truncated",
        }
    }
}

/// The measurement of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Request index within the run.
    pub index: u64,
    /// Send time, µs after the run started.
    pub start_us: u64,
    /// Completion (or failure) time, µs after the run started.
    pub end_us: u64,
    /// `None` on success.
    pub error: Option<ErrorKind>,
    /// Error detail for the first few errors of each kind.
    pub detail: Option<String>,
    /// HTTP status, if a head was read.
    pub status: Option<u16>,
    /// Time to first content token (µs).
    pub ttft_us: Option<u64>,
    /// Gaps between content events (µs).
    pub itl_us: Vec<u32>,
    /// Content events seen (streaming) or 1/0 (non-streaming).
    pub content_events: u32,
    /// Server-reported usage.
    pub usage: Option<Usage>,
    /// Bytes of response body.
    pub body_bytes: u64,
}

impl Outcome {
    /// End-to-end latency (µs).
    pub fn e2e_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }

    /// Output tokens: the server's `completion_tokens` when reported, else content events.
    pub fn output_tokens(&self) -> u64 {
        self.usage
            .map_or(u64::from(self.content_events), |u| u.completion_tokens)
    }
}

/// What the body readers accumulate.
#[derive(Debug)]
struct Tally {
    t0: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    itl_us: Vec<u32>,
    events: u32,
    usage: Option<Usage>,
    done: bool,
    error: Option<String>,
    bytes: u64,
    json: Vec<u8>,
}

impl Tally {
    fn on_event(&mut self, data: &[u8], t: Instant) {
        let c = classify_chunk(data);
        if c.done {
            self.done = true;
        }
        if c.content > 0 {
            if let Some(prev) = self.last {
                let gap = t.saturating_duration_since(prev).as_micros();
                self.itl_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
            } else {
                self.first = Some(t);
            }
            // More than one content choice in one event (n > 1) counts once per choice, 0 gap.
            for _ in 1..c.content {
                self.itl_us.push(0);
            }
            self.last = Some(t);
            self.events += c.content;
        }
        if c.usage.is_some() {
            self.usage = c.usage;
        }
        if let (Some(e), None) = (c.error, &self.error) {
            self.error = Some(e);
        }
    }
}

/// Sends `req` (a complete HTTP request) and measures the response. `run_start` anchors the
/// `*_us` timestamps.
pub async fn execute(
    pool: &Pool,
    req: &[u8],
    stream: bool,
    timeout: Duration,
    index: u64,
    run_start: Instant,
) -> Outcome {
    let t0 = Instant::now();
    let mut tally = Tally {
        t0,
        first: None,
        last: None,
        itl_us: Vec::new(),
        events: 0,
        usage: None,
        done: false,
        error: None,
        bytes: 0,
        json: Vec::new(),
    };
    let mut status = None;
    let res = tokio::time::timeout(
        timeout,
        exchange(pool, req, stream, &mut tally, &mut status),
    )
    .await;
    let end = Instant::now();
    let (error, detail) = match res {
        Err(_) => (Some(ErrorKind::Timeout), None),
        Ok(Ok(())) => (None, None),
        Ok(Err((k, d))) => (Some(k), Some(d)),
    };
    let us = |t: Instant| t.saturating_duration_since(run_start).as_micros() as u64;
    let ttft_us = if stream {
        tally
            .first
            .map(|f| f.saturating_duration_since(tally.t0).as_micros() as u64)
    } else if error.is_none() {
        Some(end.saturating_duration_since(t0).as_micros() as u64)
    } else {
        None
    };
    Outcome {
        index,
        start_us: us(t0),
        end_us: us(end),
        error,
        detail,
        status,
        ttft_us,
        itl_us: tally.itl_us,
        content_events: tally.events,
        usage: tally.usage,
        body_bytes: tally.bytes,
    }
}

type Failure = (ErrorKind, String);

async fn exchange(
    pool: &Pool,
    req: &[u8],
    stream: bool,
    tally: &mut Tally,
    status: &mut Option<u16>,
) -> Result<(), Failure> {
    let (mut conn, reused) = pool
        .checkout()
        .await
        .map_err(|e| (ErrorKind::Connect, e.to_string()))?;
    let head = match conn.send(req).await {
        Ok(h) => h,
        // A stale keep-alive connection: retry once on a fresh one.
        Err(HeadError::NoResponse(_)) if reused => {
            conn = pool
                .connect_fresh()
                .await
                .map_err(|e| (ErrorKind::Connect, e.to_string()))?;
            send_once(&mut conn, req).await?
        }
        Err(e) => return Err(head_failure(e)),
    };
    *status = Some(head.status);
    let mut sse = SseDecoder::default();
    let end = conn
        .read_body(&head, &mut |data: &[u8], t: Instant| {
            tally.bytes += data.len() as u64;
            if stream && head.status == 200 {
                sse.feed(data, &mut |ev: &[u8]| tally.on_event(ev, t));
            } else if tally.json.len() < MAX_JSON_BODY {
                tally.json.extend_from_slice(data);
            }
        })
        .await;
    let complete = end == BodyEnd::Complete;
    if complete && head.keep_alive {
        pool.checkin(conn);
    }
    if head.status != 200 {
        let msg = String::from_utf8_lossy(&tally.json[..tally.json.len().min(200)]).into_owned();
        return Err((ErrorKind::HttpStatus, format!("{}: {msg}", head.status)));
    }
    if stream {
        if let Some(e) = tally.error.take() {
            return Err((ErrorKind::StreamError, e));
        }
        if !tally.done {
            let why = match end {
                BodyEnd::Cut(e) => e,
                BodyEnd::Complete => "body ended without [DONE]".into(),
            };
            return Err((ErrorKind::Truncated, why));
        }
        return Ok(());
    }
    if let BodyEnd::Cut(e) = end {
        return Err((ErrorKind::Truncated, e));
    }
    match parse_completion(&tally.json) {
        Ok((content, usage)) => {
            tally.events = u32::from(content);
            tally.usage = usage;
            Ok(())
        }
        Err(e) => Err((ErrorKind::StreamError, e)),
    }
}

async fn send_once(conn: &mut Conn, req: &[u8]) -> Result<crate::http1::Head, Failure> {
    conn.send(req).await.map_err(head_failure)
}

fn head_failure(e: HeadError) -> Failure {
    match e {
        HeadError::NoResponse(d) => (ErrorKind::Truncated, format!("no response: {d}")),
        HeadError::Protocol(d) => (ErrorKind::Protocol, d),
    }
}
