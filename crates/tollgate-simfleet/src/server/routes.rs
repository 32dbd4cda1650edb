//! Request routing per personality and listener role: which paths exist where (routing.md §1).
//! Unknown paths get 404 with an OpenAI-style error, as the real servers answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::engine::Personality;
use crate::fault::FaultSpec;
use crate::metrics::{self, Extra};

use super::conn::{After, Conn};
use super::http::{self, Request};
use super::sse::unix_now;
use super::{Backend, Role, infer};

/// Routes one request.
pub async fn handle(b: &Arc<Backend>, role: Role, conn: &mut Conn, req: Request) -> After {
    use Personality::*;
    let p = b.cfg.personality;
    let api = matches!(role, Role::All | Role::Business);
    let mgmt = matches!(role, Role::All | Role::Management);
    let metrics_port = matches!(role, Role::All | Role::Metrics);
    let path = req.path().to_string();
    let keep = req.keep_alive;
    let json = |status: u16, body: String| {
        http::full(status, "application/json", &[], body.as_bytes(), keep)
    };
    let resp = match (req.method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") if api => return infer::handle(b, conn, req, true).await,
        ("POST", "/v1/completions") if api => return infer::handle(b, conn, req, false).await,
        ("GET", "/v1/models") if api => json(200, models(b)),
        ("GET", "/health") if mgmt => health(b, &req, keep),
        ("GET", "/health_generate") if p == Sglang => health(b, &req, keep),
        ("GET" | "POST", "/ping") if p == Vllm => health(b, &req, keep),
        ("GET", "/v2/health/live" | "/v2/health/ready") if p == Mindie && mgmt => {
            health(b, &req, keep)
        }
        ("GET", "/load") if p == Vllm => json(
            200,
            metrics::vllm_load(b.stats.active_streams.load(Ordering::Relaxed)),
        ),
        ("GET", "/v1/loads") if p == Sglang => {
            json(200, metrics::sglang_loads(&b.gauges(), &extra(b)))
        }
        ("GET", "/get_load") if p == Sglang => {
            json(200, metrics::sglang_get_load(&b.gauges(), &extra(b)))
        }
        ("GET", "/v1/status") if p == Mindie && mgmt => {
            json(200, metrics::mindie_status(&b.gauges()))
        }
        ("GET", "/metrics") if metrics_port => {
            let body = metrics::render(p, &b.gauges(), &extra(b));
            http::full(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &[],
                body.as_bytes(),
                keep,
            )
        }
        _ => json(
            404,
            infer::error_body(404, &format!("no route for {} {path}", req.method)),
        ),
    };
    if conn.write(&resp).await.is_ok() {
        After::KeepAlive
    } else {
        After::Close
    }
}

/// `GET /health` and friends: 200 with an empty body, 503 when `unhealthy` is set backend-wide
/// or in this request's `x-simfleet-fault` header.
fn health(b: &Backend, req: &Request, keep: bool) -> Vec<u8> {
    let header = req
        .header("x-simfleet-fault")
        .and_then(|h| FaultSpec::parse(h).ok());
    let sick = b.unhealthy() || header.is_some_and(|f| f.unhealthy);
    if sick {
        let body = infer::error_body(503, "simulated unhealthy backend");
        http::full(503, "application/json", &[], body.as_bytes(), keep)
    } else {
        http::full(200, "application/json", &[], b"", keep)
    }
}

fn models(b: &Backend) -> String {
    let owner = match b.cfg.personality {
        Personality::Vllm => "vllm",
        Personality::Sglang => "sglang",
        Personality::Mindie => "MindIE Server",
    };
    format!(
        r#"{{"object":"list","data":[{{"id":{m},"object":"model","created":{},"owned_by":"{owner}","root":{m},"parent":null,"max_model_len":{}}}]}}"#,
        unix_now(),
        b.cfg.engine.kv_capacity_tokens.min(131_072),
        m = super::sse::jstr(&b.cfg.model),
    )
}

/// Counters and the throughput estimate for metrics/loads.
fn extra(b: &Backend) -> Extra {
    let g = b.gauges();
    let now = b.now_us();
    let rate = {
        let mut t = b.throughput.lock().unwrap_or_else(|e| e.into_inner());
        let dt = now.saturating_sub(t.at_us);
        // Re-estimate at most every 100 ms so back-to-back scrapes do not read 0.
        if dt >= 100_000 {
            let dtok = g.generation_tokens_total.saturating_sub(t.tokens);
            t.rate = dtok as f64 / (dt as f64 / 1e6);
            t.at_us = now;
            t.tokens = g.generation_tokens_total;
        }
        t.rate
    };
    Extra {
        model: b.cfg.model.clone(),
        finished_length: b.stats.finished_length.load(Ordering::Relaxed),
        finished_stop: b.stats.finished_stop.load(Ordering::Relaxed),
        gen_throughput: rate,
        unix_s: unix_now(),
    }
}
