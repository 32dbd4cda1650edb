//! Phase 7, finish: runs exactly once per request, whatever happened — settle the limits
//! reservation with the real usage (refunding the difference), metrics (requests by
//! model/backend/status, duration, TTFT, tokens by tenant and model, denials and throttles by
//! reason, reservation drift, upstream errors), the usage-ledger record and the access log line.
//! The access log and the ledger name the public key id, rule ids and error codes, never request
//! content or keys.

use std::rc::Rc;
use std::sync::Arc;

use super::ReqCtx;
use crate::access_log::{Record, now_rfc3339};
use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// What the request used, for settlement and the ledger: the backend's usage report; without
/// one (a stream cut short, a backend that reports nothing), the counted prompt and one token
/// per content chunk relayed; nothing when no backend answered.
fn used(rq: &ReqCtx) -> tollgate_quota::Usage {
    match rq.usage {
        Some(u) => tollgate_quota::Usage {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
        },
        None if rq.backend.is_some() && rq.bytes_out > 0 => tollgate_quota::Usage {
            prompt: rq.estimate.prompt,
            completion: rq.completion_chunks,
        },
        None => tollgate_quota::Usage::default(),
    }
}

/// Record the outcome of one request.
pub fn finish(w: &Rc<Worker>, snap: &Arc<Snapshot>, rq: &mut ReqCtx) {
    let dur = rq.started.elapsed();
    let usage = used(rq);
    let settled = rq
        .admission
        .take()
        .map(|a| a.settle(usage, super::reserve::now_ms()));
    // Scan hits → (rule id, action, direction), each distinct triple once for the log line.
    let mut scan: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    let mut scan_counts: Vec<((&'static str, &'static str, &'static str), u64)> = Vec::new();
    if let Some(rules) = &snap.config.scan {
        for (i, dir) in &rq.scan_hits {
            let r = rules.rule(*i as usize);
            let key = (r.code, r.action.as_str(), dir.as_str());
            match scan_counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => {
                    scan_counts.push((key, 1));
                    scan.push(key);
                }
            }
        }
    }
    let none: Arc<str> = Arc::from("-");
    w.m(|m| {
        let k = (
            rq.model.clone().unwrap_or_else(|| none.clone()),
            rq.backend.clone().unwrap_or_else(|| none.clone()),
            rq.status,
        );
        *m.requests.entry(k).or_default() += 1;
        let _ = m.duration_us.record(dur.as_micros().max(1) as u64);
        if let Some(t) = rq.ttft {
            let _ = m.ttft_us.record(t.as_micros().max(1) as u64);
        }
        for (b, code) in &rq.upstream_errors {
            *m.upstream_errors.entry((b.clone(), code)).or_default() += 1;
        }
        if let (Some(u), Some(model)) = (rq.usage, &rq.model) {
            *m.tokens.entry((model.clone(), "prompt")).or_default() += u.prompt_tokens;
            *m.tokens.entry((model.clone(), "completion")).or_default() += u.completion_tokens;
        }
        if let Some(model) = &rq.model
            && (usage.prompt > 0 || usage.completion > 0)
        {
            let tenant = rq
                .principal
                .as_ref()
                .map_or_else(|| none.clone(), |p| p.tenant.clone());
            let e = m.tenant_tokens.entry((tenant, model.clone())).or_default();
            e.0 += usage.prompt;
            e.1 += usage.completion;
        }
        if let Some(reason) = rq.denied {
            *m.denied.entry(reason).or_default() += 1;
        }
        if let Some((rule, kind)) = &rq.throttled {
            *m.throttled.entry((rule.clone(), kind)).or_default() += 1;
        }
        if let Some(s) = settled {
            m.quota_reserved += s.reserved;
            m.quota_settled += s.actual;
            if s.actual > s.reserved {
                m.quota_overrun += s.actual - s.reserved;
            }
        }
        if rq.stream_cut {
            m.stream_cuts += 1;
        }
        if rq.stream_error {
            m.stream_errors += 1;
        }
        if rq.client_aborted {
            m.client_aborts += 1;
        }
        m.bytes_out += rq.bytes_out;
        for (k, n) in &scan_counts {
            *m.scan_hits.entry(*k).or_default() += n;
        }
    });
    // The ledger bills callers: requests that authenticated or named a model. Anonymous
    // refusals (no key, unknown path) are in the access log and metrics only.
    if let Some(ledger) = &w.ledger
        && rq.status != 0
        && (rq.principal.is_some() || rq.model.is_some())
    {
        let p = rq.principal.as_ref();
        let s = |v: Option<&Arc<str>>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
        ledger.append(tollgate_ledger::Record {
            ts_ms: super::reserve::now_ms(),
            request_id: rq.id.clone(),
            tenant: s(p.map(|p| &p.tenant)),
            project: s(p.map(|p| &p.project)),
            consumer: s(p.map(|p| &p.consumer_name)),
            key_id: s(p.map(|p| &p.key_id)),
            model: s(rq.model.as_ref()),
            backend: s(rq.backend.as_ref()),
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
            reserved_tokens: settled.map_or(0, |x| x.reserved),
            status: rq.status,
            stream: rq.stream,
            ttft_ms: rq.ttft.map(|t| t.as_secs_f64() * 1e3),
            duration_ms: dur.as_secs_f64() * 1e3,
            error: rq.error.map(str::to_string),
            rule_hits: scan
                .iter()
                .map(|(r, a, d)| format!("{r}:{a}:{d}"))
                .collect(),
        });
    }
    if w.log.enabled() {
        w.log.log(&Record {
            time: now_rfc3339(),
            request_id: &rq.id,
            client: rq.peer.to_string(),
            method: &rq.method,
            path: &rq.path,
            model: rq.model.as_deref(),
            backend: rq.backend.as_deref(),
            pool: rq.pool.as_deref(),
            route: rq.route_rule.as_deref(),
            status: rq.status,
            stream: rq.stream,
            bytes_in: rq.bytes_in,
            bytes_out: rq.bytes_out,
            duration_ms: dur.as_secs_f64() * 1e3,
            ttft_ms: rq.ttft.map(|t| t.as_secs_f64() * 1e3),
            key: rq.principal.as_ref().map(|p| &*p.key_id),
            tenant: rq.principal.as_ref().map(|p| &*p.tenant),
            prompt_tokens: rq.usage.map(|u| u.prompt_tokens),
            completion_tokens: rq.usage.map(|u| u.completion_tokens),
            attempts: rq.attempts,
            error: rq.error,
            scan: scan
                .iter()
                .map(|(r, a, d)| format!("{r}:{a}:{d}"))
                .collect(),
        });
    }
}
