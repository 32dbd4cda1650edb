//! Phase 7, finish: runs exactly once per request, whatever happened — metrics (requests by
//! model/backend/status, duration, TTFT, tokens, upstream errors) and the access log line. The
//! access log names rule ids and error codes, never request content or keys.

use std::rc::Rc;
use std::sync::Arc;

use super::ReqCtx;
use crate::access_log::{Record, now_rfc3339};
use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// Record the outcome of one request.
pub fn finish(w: &Rc<Worker>, snap: &Arc<Snapshot>, rq: &ReqCtx) {
    let dur = rq.started.elapsed();
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
