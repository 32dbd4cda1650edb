//! The request pipeline. `handle()` runs the phases in order, in one visible place; each phase
//! is a function in its own file. Ordering constraints are written where they bind:
//!
//! ```text
//! accept (head: conn.rs) → admit → guard → accept (body) → inspect_request → resolve → reserve
//!     → select ⇄ forward → relay → finish (settle, ledger)
//!            ▲ retry before 1st byte │
//!            └───────────────────────┘
//! ```

mod accept;
mod admit;
mod finish;
mod forward;
mod guard;
mod inspect;
mod relay;
mod reserve;
pub mod respond;
mod select;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::io::AsyncWriteRent;
use tollgate_core::{Error, ErrorKind};
use tollgate_http::RequestHead;
use tollgate_sse::Usage;

use crate::inbound::Inbound;
use crate::routing;
use crate::snapshot::Snapshot;
use crate::worker::Worker;

pub use admit::Route;
pub use guard::Principal;
pub use reserve::now_ms as unix_now_ms;

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

/// Everything `finish` needs to know about one request.
pub struct ReqCtx {
    /// Gateway request id.
    pub id: String,
    /// When the head was parsed.
    pub started: Instant,
    /// Client address.
    pub peer: SocketAddr,
    /// Method token.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Model index and name, once known.
    pub model: Option<Arc<str>>,
    /// Backend that produced the response.
    pub backend: Option<Arc<str>>,
    /// Status sent.
    pub status: u16,
    /// Whether this was an SSE stream.
    pub stream: bool,
    /// Request bytes (head + body) read from the client.
    pub bytes_in: u64,
    /// Bytes written to the client for this response.
    pub bytes_out: u64,
    /// Time to the first body byte.
    pub ttft: Option<Duration>,
    /// Usage reported by the backend.
    pub usage: Option<Usage>,
    /// Upstream attempts.
    pub attempts: u32,
    /// Error code, if the request failed.
    pub error: Option<&'static str>,
    /// Upstream failures to count, by backend.
    pub upstream_errors: Vec<(Arc<str>, &'static str)>,
    /// The client went away and the upstream request was aborted.
    pub client_aborted: bool,
    /// Stream ended with an SSE error event.
    pub stream_error: bool,
    /// Content-scanning hits: (rule index in the snapshot's rule set, direction).
    pub scan_hits: Vec<(u32, tollgate_scan::Direction)>,
    /// Pool the request was routed to.
    pub pool: Option<Arc<str>>,
    /// Route rule that chose the pool (`None` = the model's default).
    pub route_rule: Option<Arc<str>>,
    /// The authenticated caller (`None` when auth is off or it failed).
    pub principal: Option<Principal>,
    /// Reservation against the limits; `finish` settles it.
    pub admission: Option<tollgate_quota::Admission>,
    /// What the reservation was computed from.
    pub estimate: tollgate_quota::Estimate,
    /// Refused by auth, IP or model rules: the metric reason.
    pub denied: Option<&'static str>,
    /// Refused by a limit: (limit name, kind).
    pub throttled: Option<(Arc<str>, &'static str)>,
    /// Content chunks relayed in a stream (completion tokens when the backend reports no usage).
    pub completion_chunks: u64,
    /// The stream was cut because a token limit with `stream_overrun = "cut"` ran out.
    pub stream_cut: bool,
    /// The request has a body that has not been read (a refusal before the body read must
    /// close the connection: the unread bytes would be parsed as the next request).
    pub body_pending: bool,
}

/// Handle one request whose head has been read. Runs `finish` exactly once.
pub async fn handle<W: AsyncWriteRent>(
    w: &Rc<Worker>,
    head: RequestHead,
    inb: &Inbound,
    wr: &mut W,
    peer: SocketAddr,
) -> Action {
    // One atomic load: this request runs on this snapshot to its end, whatever reloads happen.
    let snap = w.snapshot();
    let path = head.path().split('?').next().unwrap_or("").to_string();
    let mut rq = ReqCtx {
        id: w.ids.borrow_mut().next_id(),
        started: Instant::now(),
        peer,
        method: head.method_str().to_string(),
        path,
        model: None,
        backend: None,
        status: 0,
        stream: false,
        bytes_in: head.head_len as u64,
        bytes_out: 0,
        ttft: None,
        usage: None,
        attempts: 0,
        error: None,
        upstream_errors: Vec::new(),
        client_aborted: false,
        stream_error: false,
        scan_hits: Vec::new(),
        pool: None,
        route_rule: None,
        principal: None,
        admission: None,
        estimate: tollgate_quota::Estimate::default(),
        denied: None,
        throttled: None,
        completion_chunks: 0,
        stream_cut: false,
        body_pending: !matches!(
            head.framing,
            tollgate_http::BodyFraming::None | tollgate_http::BodyFraming::ContentLength(0)
        ),
    };
    let draining = w.shutdown.is_fired();
    let keep_alive = head.keep_alive && !draining;
    let action = match run(w, &snap, &head, inb, wr, &mut rq, keep_alive).await {
        Ok(a) => a,
        Err(e) => {
            let close = !keep_alive || e.kind.closes_connection() || rq.body_pending;
            rq.status = e.status();
            rq.error = Some(e.code());
            rq.bytes_out += respond::error(wr, &rq.id, &e, close).await as u64;
            if close {
                Action::Close
            } else {
                Action::KeepAlive
            }
        }
    };
    // 7. finish: exactly once per request, whatever happened above.
    finish::finish(w, &snap, &mut rq);
    if keep_alive { action } else { Action::Close }
}

/// Phases 2–6. Returns the connection action after a response was written, or an error that
/// `handle` turns into a JSON error response (only ever before any response byte was sent).
async fn run<W: AsyncWriteRent>(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    head: &RequestHead,
    inb: &Inbound,
    wr: &mut W,
    rq: &mut ReqCtx,
    keep_alive: bool,
) -> Result<Action, Error> {
    // 2. admit — before the body is read: a request we reject (unknown path, wrong method, and
    //    later auth and IP rules) must not cost us a body read.
    let route = admit::admit(head, &rq.path)?;
    // 2b. guard — IP rules and the API key, also before the body: an unknown caller costs no
    //     body read, parse or scan.
    guard::guard(snap, head, rq, &route)?;

    // 1b. accept (body) — size limit decided from Content-Length before reading a byte;
    //     chunked bodies are checked while reading. Sends 100 Continue when asked.
    let body = match accept::read_body(snap, head, inb, wr).await {
        Ok(b) => b,
        Err(e) => {
            // The client closed before its body was complete (a cancelled request, as load
            // generators do at the end of a run): logged 400 `incomplete_body` like nginx, and
            // counted as a client abort, not only as a client error.
            if inb.is_closed() && e.code() == "incomplete_body" {
                rq.client_aborted = true;
            }
            return Err(e);
        }
    };
    rq.bytes_in += body.len() as u64;
    rq.body_pending = false;

    let api = match route {
        Route::Health => {
            if w.shutdown.is_fired() {
                return Err(Error::new(
                    ErrorKind::ShuttingDown,
                    tollgate_core::Side::Internal,
                    "The gateway is shutting down",
                ));
            }
            rq.status = 200;
            let b = bytes::Bytes::from_static(br#"{"status":"ok"}"#);
            rq.bytes_out += respond::json(wr, 200, &rq.id, b, !keep_alive).await as u64;
            return Ok(Action::KeepAlive);
        }
        Route::ListModels => {
            rq.status = 200;
            // A key sees the models it may use; without auth, the pre-rendered list.
            let body = match &rq.principal {
                None => snap.models_json.clone(),
                Some(_) => models_for(snap, rq),
            };
            rq.bytes_out += respond::json(wr, 200, &rq.id, body, !keep_alive).await as u64;
            return Ok(Action::KeepAlive);
        }
        Route::GetModel(name) => {
            let found = snap
                .config
                .model(&name)
                .filter(|_| guard::may_use(snap, rq, &name));
            let Some((_, m)) = found else {
                return Err(Error::client(
                    ErrorKind::ModelNotFound,
                    "The model does not exist",
                ));
            };
            let v = serde_json::json!({"id": m.name, "object": "model", "created": 0, "owned_by": m.owned_by});
            let b = serde_json::to_vec(&v).unwrap_or_default();
            rq.status = 200;
            rq.bytes_out += respond::json(wr, 200, &rq.id, b.into(), !keep_alive).await as u64;
            return Ok(Action::KeepAlive);
        }
        Route::Api(api) => api,
    };

    // 3. inspect_request — parse the JSON body once; everything later reads the parsed form.
    let mut req = inspect::inspect(w, snap, api, body, rq)?;
    rq.model = snap.model_names.get(req.model_idx).cloned();
    rq.stream = req.stream;
    //    The key's model permissions apply to the model the client named.
    guard::check_model(snap, rq, &req.model)?;

    // 4. select (resolve) — the virtual model's route rules pick a pool, once per request; a
    //    pool that serves another model name gets the request's `model` rewritten.
    let target = select::resolve(w, snap, head, &req)?;
    rq.route_rule = target
        .rule
        .and_then(|i| snap.config.models.get(req.model_idx)?.routing.routes.get(i))
        .map(|r| Arc::from(r.name.as_str()));
    rq.pool = snap.route.pool_names.get(target.pool).cloned();
    let pool_len = snap.config.pools.get(target.pool).map_or(0, |p| p.len());
    if let Some(name) = snap
        .config
        .pools
        .get(target.pool)
        .and_then(|p| p.model.as_deref())
    {
        req.rewrite_model(name)?;
    }
    // 4b. reserve — request, concurrency and token limits, all or nothing, before any backend
    //     work; `finish` settles with the real usage.
    reserve::reserve(w, snap, rq, &req, target.counted_tokens).await?;
    let routing = &snap.config.routing;
    w.retry_budget.borrow_mut().request(routing::now_ms());

    // 4–6. select → forward → relay. A failure before the first response byte may go back to
    //      select for a different backend (within `upstream.retries` and the retry budget);
    //      after it, never.
    let mut tried: Vec<usize> = Vec::with_capacity(2);
    let max_attempts = 1 + snap.config.upstream.retries as usize;
    loop {
        let chosen = select::select(w, snap, &target, &req, &tried)?;
        let b = chosen.backend;
        tried.push(b);
        rq.attempts += 1;
        let name = snap.backend_names.get(b).cloned();
        let attempt = async {
            let reply = forward::forward(w, snap, b, &req, &rq.id).await?;
            relay::relay(w, snap, b, &req, reply, inb, wr, rq, keep_alive).await
        };
        let result = attempt.await;
        drop(chosen.guard);
        match result {
            Ok(action) => {
                select::record_outcome(snap, w, b, false);
                rq.backend = name;
                return Ok(action);
            }
            Err(e) => {
                if e.side == tollgate_core::Side::Upstream {
                    // 429 is the backend saying "busy", not "broken": no ejection for it.
                    let overloaded = e.kind == ErrorKind::UpstreamOverloaded;
                    select::record_outcome(snap, w, b, !overloaded);
                    if let Some(n) = &name {
                        rq.upstream_errors.push((n.clone(), e.code()));
                    }
                }
                let more = tried.len() < max_attempts && tried.len() < pool_len;
                if e.retry && rq.bytes_out == 0 && more && !inb.is_closed() {
                    // A refused or timed-out connect reached no backend, so retrying it adds no
                    // backend work: it does not spend the budget (which exists to stop retry
                    // storms from multiplying the load on the backends that still answer).
                    let ok = e.kind == ErrorKind::UpstreamConnect
                        || w.retry_budget.borrow_mut().try_retry(
                            routing::now_ms(),
                            routing.retry_budget_percent,
                            routing.min_retries_per_sec,
                        );
                    if ok {
                        w.m(|m| m.retries += 1);
                        continue;
                    }
                    w.m(|m| m.retry_budget_exhausted += 1);
                }
                rq.backend = name;
                return Err(e);
            }
        }
    }
}

/// `GET /v1/models` for a key: only the models it may use.
fn models_for(snap: &Snapshot, rq: &ReqCtx) -> bytes::Bytes {
    let data: Vec<serde_json::Value> = snap
        .config
        .models
        .iter()
        .filter(|m| guard::may_use(snap, rq, &m.name))
        .map(|m| serde_json::json!({"id": m.name, "object": "model", "created": 0, "owned_by": m.owned_by}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"object": "list", "data": data}))
        .unwrap_or_default()
        .into()
}
