//! `/v1/chat/completions` and `/v1/completions`: parse the body, pick the fault, start the
//! content source, hand over to the writer, and record what happened.
//!
//! Order matters and mirrors what a client can observe: `refuse` acts before any byte,
//! `slow_first_byte` delays everything, `status` replaces the answer, and only then does
//! generation start (so a faulted request never costs engine capacity).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::Mode;
use crate::engine::SimRequest;
use crate::fault::{FaultSpec, split_text};
use crate::fleet::{Outcome, RequestRecord};
use crate::tokenizer::{count_tokens, tokenize};

use super::conn::{After, Conn};
use super::http::{self, Request};
use super::instant::FULL_TOKENS;
use super::sse::{Ctx, Usage, unix_now};
use super::stream::{Gen, Job, ModelGen};
use super::{Backend, DriverMsg};

/// What the request body asks for.
struct Ask {
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
    prompt: String,
}

fn parse_ask(body: &[u8], chat: bool) -> Result<Ask, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = v
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_tokens = v
        .get("max_completion_tokens")
        .or_else(|| v.get("max_tokens"))
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32);
    let mut prompt = String::new();
    if chat {
        let msgs = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("missing \"messages\" array")?;
        for m in msgs {
            match m.get("content") {
                Some(Value::String(s)) => prompt.push_str(s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            prompt.push_str(t);
                        }
                    }
                }
                _ => {}
            }
        }
    } else {
        match v.get("prompt") {
            Some(Value::String(s)) => prompt.push_str(s),
            Some(Value::Array(a)) => {
                for p in a {
                    if let Some(s) = p.as_str() {
                        prompt.push_str(s);
                    }
                }
            }
            _ => return Err("missing \"prompt\"".into()),
        }
    }
    Ok(Ask {
        stream,
        include_usage,
        max_tokens,
        prompt,
    })
}

/// The vLLM-style OpenAI error body.
pub fn error_body(status: u16, message: &str) -> String {
    let kind = match status {
        400 => "BadRequestError",
        404 => "NotFoundError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        _ => "InternalServerError",
    };
    format!(
        r#"{{"error":{{"message":{},"type":"{kind}","param":null,"code":{status}}}}}"#,
        super::sse::jstr(message)
    )
}

/// Decrements `active_streams` however the handler exits.
struct ActiveGuard<'a>(&'a Backend);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.stats.active_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Handles one inference request.
pub async fn handle(b: &Arc<Backend>, conn: &mut Conn, req: Request, chat: bool) -> After {
    let started = b.now_us();
    let header_fault = match req
        .header("x-simfleet-fault")
        .map(FaultSpec::parse)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => {
            return reject(conn, 400, &format!("x-simfleet-fault: {e}"), req.keep_alive).await;
        }
    };
    let ask = match parse_ask(&req.body, chat) {
        Ok(a) => a,
        Err(e) => return reject(conn, 400, &e, req.keep_alive).await,
    };
    let rid = b.next_request.fetch_add(1, Ordering::Relaxed);
    let fault = b.pick_fault(header_fault).unwrap_or_default();
    b.stats.active_streams.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(b);
    let mut rec = RequestRecord {
        backend: b.cfg.name.clone(),
        request_id: format!("r{rid}"),
        conn_id: conn.id,
        conn_seq: conn.seq,
        method: req.method.clone(),
        path: req.target.clone(),
        headers: req.headers.clone(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        stream: ask.stream,
        include_usage: ask.include_usage,
        prompt_tokens: 0,
        cached_tokens: 0,
        tokens_emitted: 0,
        outcome: Outcome::Completed,
        started_at_us: started,
        first_token_at_us: None,
        ended_at_us: None,
    };
    let after = respond(b, conn, &req, &ask, chat, rid, fault, &mut rec).await;
    if rec.ended_at_us.is_none() {
        rec.ended_at_us = Some(b.now_us());
    }
    b.recorder.push(rec, b.record_file.as_ref());
    after
}

#[allow(clippy::too_many_arguments)]
async fn respond(
    b: &Arc<Backend>,
    conn: &mut Conn,
    req: &Request,
    ask: &Ask,
    chat: bool,
    rid: u64,
    fault: FaultSpec,
    rec: &mut RequestRecord,
) -> After {
    if fault.refuse {
        rec.outcome = Outcome::Fault(fault.label());
        return After::Reset;
    }
    if let Some(ms) = fault.slow_first_byte_ms
        && !conn.sleep_watching(Duration::from_millis(ms)).await
    {
        rec.outcome = Outcome::ClientClosed;
        b.stats.client_disconnects.fetch_add(1, Ordering::Relaxed);
        return After::Close;
    }
    if let Some(status) = fault.status {
        rec.outcome = Outcome::Fault(fault.label());
        let ra = fault.retry_after_s.map(|s| s.to_string());
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(ra) = ra.as_deref() {
            extra.push(("retry-after", ra));
        }
        let body = error_body(status, "simulated fault");
        let resp = http::full(
            status,
            "application/json",
            &extra,
            body.as_bytes(),
            req.keep_alive,
        );
        return if conn.write(&resp).await.is_ok() {
            After::KeepAlive
        } else {
            After::Close
        };
    }
    // Instant fast path: one precomputed write.
    if let (Some(canned), true) = (b.instant.as_ref(), !fault.shapes_stream()) {
        let pt = count_tokens(&ask.prompt) as u32;
        let bytes = canned.render(chat, ask.stream, ask.include_usage, rid, pt, req.keep_alive);
        let n = if ask.stream {
            canned.events
        } else {
            FULL_TOKENS
        };
        b.stats
            .prompt_tokens
            .fetch_add(u64::from(pt), Ordering::Relaxed);
        if conn.write(&bytes).await.is_err() {
            rec.outcome = Outcome::ClientClosed;
            b.stats.client_disconnects.fetch_add(1, Ordering::Relaxed);
            return After::Close;
        }
        let now = b.now_us();
        rec.prompt_tokens = pt;
        rec.tokens_emitted = n;
        rec.first_token_at_us = Some(now);
        b.stats
            .tokens_generated
            .fetch_add(u64::from(n), Ordering::Relaxed);
        b.stats.finished_length.fetch_add(1, Ordering::Relaxed);
        return After::KeepAlive;
    }
    let source = match start_gen(b, ask, rid, &fault) {
        Some(g) => g,
        None => {
            rec.outcome = Outcome::Fault("engine unavailable".into());
            let body = error_body(503, "engine unavailable");
            let resp = http::full(503, "application/json", &[], body.as_bytes(), false);
            let _ = conn.write(&resp).await;
            return After::Close;
        }
    };
    let ctx = Ctx {
        chat,
        id: format!("{}-r{rid}", if chat { "chatcmpl" } else { "cmpl" }),
        created: unix_now(),
        model: b.cfg.model.clone(),
        personality: b.cfg.personality,
    };
    let job = Job {
        b,
        conn,
        ctx,
        source,
        fault,
        include_usage: ask.include_usage,
        rid,
        keep_alive: req.keep_alive,
        rec,
    };
    if ask.stream {
        job.stream().await
    } else {
        job.full().await
    }
}

/// The content source for this request; `None` if the engine driver is gone.
fn start_gen(b: &Arc<Backend>, ask: &Ask, rid: u64, fault: &FaultSpec) -> Option<Gen> {
    if let Some(text) = &fault.text {
        let pieces: VecDeque<String> = if fault.raw_split {
            VecDeque::new()
        } else {
            split_text(text, &fault.chunks).into()
        };
        let usage = Usage {
            prompt: count_tokens(&ask.prompt) as u32,
            cached: 0,
            completion: count_tokens(text) as u32,
        };
        return Some(Gen::Text { pieces, usage });
    }
    match (b.cfg.mode, b.driver.as_ref()) {
        (Mode::Model, Some(driver)) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let req = SimRequest {
                id: rid,
                prompt_tokens: tokenize(&ask.prompt),
                max_tokens: ask.max_tokens.unwrap_or(b.cfg.default_max_tokens),
                arrival_us: b.now_us(),
            };
            driver.send(DriverMsg::Submit { req, tx }).ok()?;
            Some(Gen::Model(ModelGen {
                rid,
                rx,
                driver: driver.clone(),
                finished: false,
            }))
        }
        _ => {
            let prompt = count_tokens(&ask.prompt) as u32;
            b.stats
                .prompt_tokens
                .fetch_add(u64::from(prompt), Ordering::Relaxed);
            b.stats.finished_length.fetch_add(1, Ordering::Relaxed);
            let n = if ask.stream {
                b.cfg.instant_events
            } else {
                FULL_TOKENS
            };
            Some(Gen::Instant {
                rid,
                n,
                next: 0,
                prompt,
            })
        }
    }
}

async fn reject(conn: &mut Conn, status: u16, msg: &str, keep_alive: bool) -> After {
    let body = error_body(status, msg);
    let resp = http::full(status, "application/json", &[], body.as_bytes(), keep_alive);
    if conn.write(&resp).await.is_ok() {
        After::KeepAlive
    } else {
        After::Close
    }
}
