//! Phase 4b, reserve (the limits half of admit): once the model and the prompt are known, take
//! what the request may cost from every applicable limit — a request slot, a concurrency slot,
//! and tokens (prompt counted with the model's tokenizer + `max_tokens` × `n`, or
//! `quota.default_max_tokens`). All or nothing; a refusal is 429 with `Retry-After`. `finish`
//! settles the reservation with the usage the backend reported and refunds the difference.
//!
//! The hot path is per-worker (`WorkerQuota`): worker-local caches and atomics, no lock and no
//! network. In cluster mode a worker whose Redis lease for a counter is empty while a refill is
//! in flight waits for it in 1 ms steps, bounded by `quota.redis_timeout_ms` (after which the
//! quota crate falls back to the local share).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::{Error, ErrorKind};
use tollgate_quota::{Denied, Estimate, Kind, Subject};

use super::ReqCtx;
use super::inspect::Inspected;
use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// Unix time in milliseconds (limit windows and schedules are wall-clock based).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the request may cost: prompt tokens (counted only when a token limit exists; `counted`
/// reuses a count routing already made) and the completion ceiling.
pub fn estimate(snap: &Snapshot, req: &Inspected, counted: Option<usize>) -> Estimate {
    let g = &snap.config.governance;
    if !g.limits.has_token_rules() {
        return Estimate::default();
    }
    let prompt = match counted {
        Some(n) => n as u64,
        None => {
            let tok = snap
                .config
                .models
                .get(req.model_idx)
                .map_or(tollgate_route::Tokenizer::Cl100k, |m| m.routing.tokenizer);
            let facts = tollgate_route::Facts::new(&tollgate_route::facts::NoHeaders, &req.body);
            facts.prompt_tokens(tok).unwrap_or(0) as u64
        }
    };
    let completion = match req.api {
        super::admit::Api::Embeddings => 0,
        _ => req
            .max_tokens
            .unwrap_or(g.default_max_tokens)
            .saturating_mul(req.n.max(1)),
    };
    Estimate { prompt, completion }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Requests => "requests",
        Kind::Concurrency => "concurrency",
        Kind::Tokens(_) => "tokens",
    }
}

fn throttled(rule: &str, kind: Kind, retry_after_s: u64) -> Error {
    let (code, what) = match kind {
        Kind::Requests => ("rate_limit_exceeded", "requests"),
        Kind::Concurrency => ("concurrency_limit_exceeded", "concurrent requests"),
        Kind::Tokens(_) => ("token_limit_exceeded", "tokens"),
    };
    Error::client(
        ErrorKind::RateLimited,
        format!("Rate limit reached: limit '{rule}' on {what}. Retry after {retry_after_s} s."),
    )
    .with_code(code)
    .with_retry_after(Some(retry_after_s.clamp(1, u64::from(u32::MAX)) as u32))
}

/// Reserve for the request; on success the admission lives in `rq.admission` until `finish`.
pub async fn reserve(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    rq: &mut ReqCtx,
    req: &Inspected,
    counted: Option<usize>,
) -> Result<(), Error> {
    let g = &snap.config.governance;
    if g.limits.is_empty() {
        return Ok(());
    }
    let est = estimate(snap, req, counted);
    rq.estimate = est;
    let dash: &str = "-";
    let (consumer, key, tenant, project) = match &rq.principal {
        Some(p) => (&*p.consumer_name, &*p.key_id, &*p.tenant, &*p.project),
        None => (dash, dash, dash, dash),
    };
    let subj = Subject {
        consumer,
        key,
        tenant,
        project,
        model: &req.model,
    };
    let wait = g
        .cluster
        .as_ref()
        .map_or(Duration::from_millis(200), |c| c.timeout)
        + Duration::from_millis(50);
    let deadline = Instant::now() + wait;
    loop {
        let r = w.quota.borrow_mut().admit(&g.limits, &subj, est, now_ms());
        match r {
            Ok(a) => {
                rq.admission = Some(a);
                return Ok(());
            }
            Err(Denied::Throttled {
                rule,
                kind,
                retry_after_s,
            }) => {
                let e = throttled(&rule, kind, retry_after_s);
                rq.throttled = Some((rule, kind_str(kind)));
                return Err(e);
            }
            Err(Denied::Pending) => {
                if Instant::now() >= deadline {
                    rq.throttled = Some((Arc::from("-"), "quota_unavailable"));
                    return Err(Error::client(
                        ErrorKind::RateLimited,
                        "The shared quota store did not answer in time; retry shortly",
                    )
                    .with_code("quota_unavailable")
                    .with_retry_after(Some(1)));
                }
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
