//! Writing one inference response, token by token, with faults applied at exact points.
//!
//! Content comes from a [`Gen`]: the engine (model mode), an immediate counter (instant mode with
//! a fault) or a fixed text (`text=` fault). The writer owns the wire: in model mode one SSE event
//! per HTTP chunk per `write`, flushed at once; the response head goes out with the first event
//! (as uvicorn does: vLLM's generator yields its role chunk only once the first output exists),
//! so time-to-first-byte is TTFT.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::{EngineEvent, FinishReason};
use crate::fault::{FaultSpec, HUGE_LINE_BYTES, Malformed};
use crate::fleet::{Outcome, RequestRecord};

use super::conn::{After, Conn};
use super::http;
use super::sse::{Ctx, Usage, event, token_text};
use super::{Backend, DriverMsg};

/// One step of content generation.
pub enum GenEv {
    /// A content piece.
    Token(String),
    /// Generation finished.
    Done {
        /// `length` / `stop`.
        reason: &'static str,
        /// True counts.
        usage: Usage,
    },
}

/// A content source.
pub enum Gen {
    /// Instant mode: `n` tokens at once.
    Instant {
        /// Request id (for token text).
        rid: u64,
        /// Tokens to produce.
        n: u32,
        /// Next seq.
        next: u32,
        /// Prompt tokens for usage.
        prompt: u32,
    },
    /// Fixed pieces (`text=` fault).
    Text {
        /// Remaining pieces.
        pieces: VecDeque<String>,
        /// Usage to report.
        usage: Usage,
    },
    /// Model mode: engine events for request `rid`.
    Model(ModelGen),
}

/// An engine request; cancelled on drop unless it finished.
pub struct ModelGen {
    /// Request id.
    pub rid: u64,
    /// Events from the driver.
    pub rx: mpsc::UnboundedReceiver<EngineEvent>,
    /// Driver handle, for the cancel.
    pub driver: mpsc::UnboundedSender<DriverMsg>,
    /// Set once `Finished` arrived.
    pub finished: bool,
}

impl Drop for ModelGen {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.driver.send(DriverMsg::Cancel { id: self.rid });
        }
    }
}

impl Gen {
    /// Next piece; `None` if the engine is gone (shutdown). Cancel-safe.
    pub async fn next(&mut self) -> Option<GenEv> {
        match self {
            Gen::Instant {
                rid,
                n,
                next,
                prompt,
            } => {
                if *next < *n {
                    *next += 1;
                    Some(GenEv::Token(token_text(*rid, *next - 1)))
                } else {
                    let usage = Usage {
                        prompt: *prompt,
                        cached: 0,
                        completion: *n,
                    };
                    Some(GenEv::Done {
                        reason: "length",
                        usage,
                    })
                }
            }
            Gen::Text { pieces, usage } => Some(match pieces.pop_front() {
                Some(p) => GenEv::Token(p),
                None => GenEv::Done {
                    reason: "stop",
                    usage: *usage,
                },
            }),
            Gen::Model(m) => loop {
                match m.rx.recv().await? {
                    EngineEvent::Token { seq, .. } => {
                        return Some(GenEv::Token(token_text(m.rid, seq)));
                    }
                    EngineEvent::Finished {
                        reason,
                        prompt_tokens,
                        cached_tokens,
                        completion_tokens,
                        ..
                    } => {
                        m.finished = true;
                        let reason = match reason {
                            FinishReason::Length => "length",
                            FinishReason::Stop => "stop",
                        };
                        let usage = Usage {
                            prompt: prompt_tokens,
                            cached: cached_tokens,
                            completion: completion_tokens,
                        };
                        return Some(GenEv::Done { reason, usage });
                    }
                    EngineEvent::Preempted { .. } => {}
                }
            },
        }
    }

    /// True for model mode: the head waits for the first event.
    fn is_model(&self) -> bool {
        matches!(self, Gen::Model(_))
    }
}

/// Everything a response writer needs.
pub struct Job<'a> {
    /// Backend.
    pub b: &'a Backend,
    /// Connection.
    pub conn: &'a mut Conn,
    /// Chunk shapes.
    pub ctx: Ctx,
    /// Content source.
    pub source: Gen,
    /// Fault in force (default = none).
    pub fault: FaultSpec,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Request id.
    pub rid: u64,
    /// Client keep-alive.
    pub keep_alive: bool,
    /// The record being filled.
    pub rec: &'a mut RequestRecord,
}

/// Outcome of waiting for content.
enum Next {
    Ev(GenEv),
    Gone,
    Closed,
}

impl Job<'_> {
    async fn next(&mut self) -> Next {
        tokio::select! {
            ev = self.source.next() => match ev { Some(ev) => Next::Ev(ev), None => Next::Gone },
            _ = self.conn.closed() => Next::Closed,
        }
    }

    fn client_closed(&mut self) -> After {
        self.rec.outcome = Outcome::ClientClosed;
        self.rec.ended_at_us = Some(self.b.now_us());
        self.b
            .stats
            .client_disconnects
            .fetch_add(1, Ordering::Relaxed);
        After::Close
    }

    fn fault_end(&mut self, after: After) -> After {
        self.rec.outcome = Outcome::Fault(self.fault.label());
        after
    }

    fn reported_usage(&self, u: Usage) -> Option<Usage> {
        if self.fault.no_usage {
            return None;
        }
        Some(match self.fault.usage_lies {
            Some(n) => Usage { completion: n, ..u },
            None => u,
        })
    }

    fn note_token(&mut self) {
        self.rec.tokens_emitted += 1;
        if self.rec.first_token_at_us.is_none() {
            self.rec.first_token_at_us = Some(self.b.now_us());
        }
        self.b
            .stats
            .tokens_generated
            .fetch_add(1, Ordering::Relaxed);
    }

    fn stream_head(&self) -> Vec<u8> {
        let rid = format!("r{}", self.rid);
        let mut h = http::head(
            200,
            &[
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
                ("x-simfleet-request-id", &rid),
            ],
            self.keep_alive,
        );
        h.extend_from_slice(b"\r\n");
        h
    }

    fn ev(&self, data: &str) -> Vec<u8> {
        http::chunk(&event(data, self.fault.malformed))
    }

    /// The response head plus the events that precede the first token.
    fn opening(&self) -> Vec<u8> {
        let mut out = self.stream_head();
        if let Some(r) = self.ctx.role_chunk() {
            out.extend(self.ev(&r));
        }
        if self.fault.malformed == Some(Malformed::HugeLine) {
            out.extend(self.ev(&self.ctx.content_chunk(&"x".repeat(HUGE_LINE_BYTES))));
        }
        out
    }

    /// Applies `reset_after` / `close_after` / `stall_after` once `emitted` tokens are out.
    /// `Some(after)` ends the response.
    async fn checkpoint(&mut self, emitted: u32) -> Option<After> {
        if self.fault.reset_after == Some(emitted) {
            return Some(self.fault_end(After::Reset));
        }
        if self.fault.close_after == Some(emitted) {
            if self.fault.chunked_end && self.conn.write(http::CHUNK_END).await.is_err() {
                return Some(self.client_closed());
            }
            return Some(self.fault_end(After::Close));
        }
        if let Some((k, ms)) = self.fault.stall_after
            && k == emitted
            && !self.conn.sleep_watching(Duration::from_millis(ms)).await
        {
            return Some(self.client_closed());
        }
        None
    }

    /// Writes a streaming (SSE) response.
    pub async fn stream(mut self) -> After {
        if self.fault.raw_split {
            return self.stream_raw_split().await;
        }
        let mut opened = false;
        if !self.source.is_model()
            || self.fault.reset_after == Some(0)
            || self.fault.close_after == Some(0)
        {
            let o = self.opening();
            if self.conn.write(&o).await.is_err() {
                return self.client_closed();
            }
            opened = true;
        }
        if let Some(a) = self.checkpoint(0).await {
            return a;
        }
        let mut emitted = 0u32;
        loop {
            let ev = match self.next().await {
                Next::Ev(ev) => ev,
                Next::Gone => return After::Close,
                Next::Closed => return self.client_closed(),
            };
            if !opened {
                let o = self.opening();
                if self.conn.write(&o).await.is_err() {
                    return self.client_closed();
                }
                opened = true;
            }
            match ev {
                GenEv::Token(text) => {
                    let bytes = self.ev(&self.ctx.content_chunk(&text));
                    if self.conn.write(&bytes).await.is_err() {
                        return self.client_closed();
                    }
                    emitted += 1;
                    self.note_token();
                    if let Some(a) = self.checkpoint(emitted).await {
                        return a;
                    }
                }
                GenEv::Done { reason, usage } => {
                    self.rec.prompt_tokens = usage.prompt;
                    self.rec.cached_tokens = usage.cached;
                    let u = self.reported_usage(usage);
                    let mut tail = self.ev(&self.ctx.finish_chunk(reason, u));
                    if let Some(uc) = self.ctx.usage_chunk(self.include_usage, u) {
                        if self.conn.write(&tail).await.is_err() {
                            return self.client_closed();
                        }
                        tail = self.ev(&uc);
                    }
                    if self.conn.write(&tail).await.is_err() {
                        return self.client_closed();
                    }
                    let mut done = self.ev("[DONE]");
                    done.extend_from_slice(http::CHUNK_END);
                    if self.conn.write(&done).await.is_err() {
                        return self.client_closed();
                    }
                    return self.complete();
                }
            }
        }
    }

    fn complete(&mut self) -> After {
        self.rec.outcome = if self.fault.shapes_stream() {
            Outcome::Fault(self.fault.label())
        } else {
            Outcome::Completed
        };
        self.rec.ended_at_us = Some(self.b.now_us());
        After::KeepAlive
    }

    /// Collects all content, then writes the SSE bytes split at `chunks` offsets, one HTTP chunk
    /// per piece, each in its own write 2 ms apart (so they land in separate TCP segments).
    /// Offsets are relative to the `text=` content inside its (single) content event when `text`
    /// is given, else to the start of the SSE body.
    async fn stream_raw_split(mut self) -> After {
        let mut tokens = Vec::new();
        let (reason, usage) = loop {
            match self.next().await {
                Next::Ev(GenEv::Token(t)) => tokens.push(t),
                Next::Ev(GenEv::Done { reason, usage }) => break (reason, usage),
                Next::Gone => return After::Close,
                Next::Closed => return self.client_closed(),
            }
        };
        self.rec.prompt_tokens = usage.prompt;
        self.rec.cached_tokens = usage.cached;
        let mut body = Vec::new();
        let mal = self.fault.malformed;
        if let Some(r) = self.ctx.role_chunk() {
            body.extend(event(&r, mal));
        }
        let mut base = 0usize;
        let contents = match &self.fault.text {
            Some(t) => vec![t.clone()],
            None => tokens,
        };
        for c in &contents {
            let data = self.ctx.content_chunk(c);
            if self.fault.text.is_some() {
                let quoted = super::sse::jstr(c);
                base = body.len() + 6 + data.rfind(&quoted).unwrap_or(0) + 1;
            }
            body.extend(event(&data, mal));
        }
        let u = self.reported_usage(usage);
        body.extend(event(&self.ctx.finish_chunk(reason, u), mal));
        if let Some(uc) = self.ctx.usage_chunk(self.include_usage, u) {
            body.extend(event(&uc, mal));
        }
        body.extend(event("[DONE]", mal));
        let mut cuts: Vec<usize> = self
            .fault
            .chunks
            .iter()
            .map(|&o| match &self.fault.text {
                Some(t) => base + escaped_offset(t, o),
                None => o,
            })
            .filter(|&o| o > 0 && o < body.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts.push(body.len());
        let head = self.stream_head();
        if self.conn.write(&head).await.is_err() {
            return self.client_closed();
        }
        let mut start = 0;
        for c in cuts {
            if self
                .conn
                .write(&http::chunk(&body[start..c]))
                .await
                .is_err()
            {
                return self.client_closed();
            }
            start = c;
            if !self.conn.sleep_watching(Duration::from_millis(2)).await {
                return self.client_closed();
            }
        }
        for _ in &contents {
            self.note_token();
        }
        if self.conn.write(http::CHUNK_END).await.is_err() {
            return self.client_closed();
        }
        self.complete()
    }

    /// Writes a non-streaming JSON response after generation completes. `reset_after` /
    /// `close_after` drop the connection instead of answering; `cl_te` / `extra_bytes` break the
    /// framing.
    pub async fn full(mut self) -> After {
        let mut text = String::new();
        let (reason, usage) = loop {
            match self.next().await {
                Next::Ev(GenEv::Token(t)) => {
                    text.push_str(&t);
                    self.note_token();
                }
                Next::Ev(GenEv::Done { reason, usage }) => break (reason, usage),
                Next::Gone => return After::Close,
                Next::Closed => return self.client_closed(),
            }
        };
        self.rec.prompt_tokens = usage.prompt;
        self.rec.cached_tokens = usage.cached;
        if self.fault.reset_after.is_some() {
            return self.fault_end(After::Reset);
        }
        if self.fault.close_after.is_some() {
            return self.fault_end(After::Close);
        }
        let body = self
            .ctx
            .full_body(&text, reason, self.reported_usage(usage));
        let rid = format!("r{}", self.rid);
        let mut out = if self.fault.cl_te {
            let len = body.len().to_string();
            let mut h = http::head(
                200,
                &[
                    ("content-type", "application/json"),
                    ("content-length", &len),
                    ("transfer-encoding", "chunked"),
                    ("x-simfleet-request-id", &rid),
                ],
                self.keep_alive,
            );
            h.extend_from_slice(b"\r\n");
            h.extend(http::chunk(body.as_bytes()));
            h.extend_from_slice(http::CHUNK_END);
            h
        } else {
            http::full(
                200,
                "application/json",
                &[("x-simfleet-request-id", &rid)],
                body.as_bytes(),
                self.keep_alive,
            )
        };
        if self.fault.extra_bytes {
            out.extend_from_slice(EXTRA_BYTES);
        }
        if self.conn.write(&out).await.is_err() {
            return self.client_closed();
        }
        self.complete()
    }
}

/// What `extra_bytes` appends after a complete non-streaming response.
pub const EXTRA_BYTES: &[u8] = b"SIMFLEET-EXTRA-BYTES\r\n";

/// Byte offset `o` of `text` mapped into its JSON-escaped form (without the opening quote).
/// Non-ASCII is never escaped by serde_json, so an offset inside a multi-byte char maps 1:1.
fn escaped_offset(text: &str, o: usize) -> usize {
    let o = o.min(text.len());
    let mut fb = o;
    while !text.is_char_boundary(fb) {
        fb -= 1;
    }
    let escaped = super::sse::jstr(&text[..fb]);
    escaped.len().saturating_sub(2) + (o - fb)
}
