//! Instant mode's precomputed responses: the gateway, not the simulator, must be what a
//! benchmark measures, so per request we only splice the request id and token counts into
//! prebuilt byte templates and write the whole response in one `write`.
//!
//! Content is still verifiable (`«r<id>:<seq>»` tokens), because the id is a template slot.

use crate::config::BackendConfig;
use crate::engine::Personality;
use crate::server::sse::{Ctx, Usage, event};

/// Tokens in an instant non-streaming answer: keeps the body near 300 bytes with usage.
pub const FULL_TOKENS: u32 = 4;

/// Request-id slot marker: plain ASCII so JSON escaping leaves it intact.
const RID: &str = "@SIMFLEET_RID@";
const PT: u32 = 3_000_000_001;
const TT: u32 = 3_000_000_002;

/// A template slot.
#[derive(Debug, Clone)]
enum Seg {
    Lit(Vec<u8>),
    Rid,
    Prompt,
    Total,
}

/// A byte template with slots for request id and token counts.
#[derive(Debug, Clone, Default)]
pub struct Template(Vec<Seg>);

impl Template {
    fn from_text(s: &str) -> Template {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        let markers = [
            (RID.to_string(), 0u8),
            (PT.to_string(), 1),
            (TT.to_string(), 2),
        ];
        while !rest.is_empty() {
            let next = markers
                .iter()
                .filter_map(|(m, k)| rest.find(m.as_str()).map(|p| (p, m.len(), *k)))
                .min_by_key(|(p, _, _)| *p);
            match next {
                Some((p, len, kind)) => {
                    lit.push_str(&rest[..p]);
                    segs.push(Seg::Lit(std::mem::take(&mut lit).into_bytes()));
                    segs.push(match kind {
                        0 => Seg::Rid,
                        1 => Seg::Prompt,
                        _ => Seg::Total,
                    });
                    rest = &rest[p + len..];
                }
                None => {
                    lit.push_str(rest);
                    rest = "";
                }
            }
        }
        segs.push(Seg::Lit(lit.into_bytes()));
        Template(segs)
    }

    /// Length once rendered with these values.
    fn len(&self, rid: &str, pt: &str, tt: &str) -> usize {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Lit(b) => b.len(),
                Seg::Rid => rid.len(),
                Seg::Prompt => pt.len(),
                Seg::Total => tt.len(),
            })
            .sum()
    }

    fn render_into(&self, out: &mut Vec<u8>, rid: &str, pt: &str, tt: &str) {
        for s in &self.0 {
            match s {
                Seg::Lit(b) => out.extend_from_slice(b),
                Seg::Rid => out.extend_from_slice(rid.as_bytes()),
                Seg::Prompt => out.extend_from_slice(pt.as_bytes()),
                Seg::Total => out.extend_from_slice(tt.as_bytes()),
            }
        }
    }
}

/// Body templates for one endpoint kind.
#[derive(Debug, Clone, Default)]
struct Kind {
    full: Template,
    stream: Template,
    stream_usage: Template,
}

/// All instant-mode templates of a backend.
#[derive(Debug, Clone, Default)]
pub struct Canned {
    chat: Kind,
    completion: Kind,
    /// Content events per stream.
    pub events: u32,
}

impl Canned {
    /// Prebuilds every template from the backend config.
    pub fn build(cfg: &BackendConfig) -> Canned {
        let kind = |chat: bool| {
            let ctx = Ctx {
                chat,
                id: format!("{}-r{RID}", if chat { "chatcmpl" } else { "cmpl" }),
                created: super::sse::unix_now(),
                model: cfg.model.clone(),
                personality: cfg.personality,
            };
            let events = cfg.instant_events;
            let usage = |completion: u32| Usage {
                prompt: PT,
                cached: 0,
                completion,
            };
            let fix_total = |s: String, completion: u32| {
                // Usage::json computed total = PT + completion; turn it back into a slot.
                s.replace(
                    &(PT as u64 + completion as u64).to_string(),
                    &TT.to_string(),
                )
            };
            let text: String = (0..FULL_TOKENS).map(|i| format!("«r{RID}:{i}»")).collect();
            let full = fix_total(
                ctx.full_body(&text, "length", Some(usage(FULL_TOKENS))),
                FULL_TOKENS,
            );
            let mut body = String::new();
            let push = |body: &mut String, data: &str| {
                body.push_str(&String::from_utf8_lossy(&event(data, None)));
            };
            if let Some(r) = ctx.role_chunk() {
                push(&mut body, &r);
            }
            for i in 0..events {
                push(&mut body, &ctx.content_chunk(&format!("«r{RID}:{i}»")));
            }
            push(&mut body, &ctx.finish_chunk("length", Some(usage(events))));
            let mut with_usage = body.clone();
            if let Some(u) = ctx.usage_chunk(true, Some(usage(events))) {
                push(&mut with_usage, &u);
            }
            push(&mut body, "[DONE]");
            push(&mut with_usage, "[DONE]");
            if cfg.personality == Personality::Mindie {
                with_usage = body.clone();
            }
            Kind {
                full: Template::from_text(&full),
                stream: Template::from_text(&fix_total(body, events)),
                stream_usage: Template::from_text(&fix_total(with_usage, events)),
            }
        };
        Canned {
            chat: kind(true),
            completion: kind(false),
            events: cfg.instant_events,
        }
    }

    /// The complete response bytes (head and body) for one request.
    pub fn render(
        &self,
        chat: bool,
        stream: bool,
        include_usage: bool,
        rid: u64,
        prompt_tokens: u32,
        keep_alive: bool,
    ) -> Vec<u8> {
        let kind = if chat { &self.chat } else { &self.completion };
        let completion = if stream { self.events } else { FULL_TOKENS };
        let rid_s = rid.to_string();
        let pt = prompt_tokens.to_string();
        let tt = (prompt_tokens as u64 + completion as u64).to_string();
        let t = match (stream, include_usage) {
            (false, _) => &kind.full,
            (true, false) => &kind.stream,
            (true, true) => &kind.stream_usage,
        };
        let body_len = t.len(&rid_s, &pt, &tt);
        let conn = if keep_alive {
            ""
        } else {
            "connection: close\r\n"
        };
        let head = if stream {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
                 cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\
                 x-simfleet-request-id: r{rid}\r\n{conn}\r\n{body_len:x}\r\n"
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\n\
                 x-simfleet-request-id: r{rid}\r\n{conn}\r\n"
            )
        };
        let mut out = Vec::with_capacity(head.len() + body_len + 8);
        out.extend_from_slice(head.as_bytes());
        t.render_into(&mut out, &rid_s, &pt, &tt);
        if stream {
            out.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        out
    }
}
