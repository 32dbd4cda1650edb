//! OpenAI response bodies and SSE chunk shapes, per personality.
//!
//! Shapes follow routing.md §1: vLLM and SGLang send a role chunk, one content chunk per token, a
//! finish chunk, then (only with `stream_options.include_usage`) a `"choices":[]` usage chunk and
//! `[DONE]`. MindIE ignores `stream_options` and always puts `usage` on the finish chunk. JSON is
//! built with `format!` around `serde_json`-escaped strings: cheap enough per token and the byte
//! layout stays predictable for `raw_split`.

use crate::engine::Personality;
use crate::fault::Malformed;

/// Token counts to report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt: u32,
    /// Prompt tokens served from cache.
    pub cached: u32,
    /// Completion tokens.
    pub completion: u32,
}

impl Usage {
    /// The OpenAI `usage` object.
    pub fn json(&self) -> String {
        format!(
            r#"{{"prompt_tokens":{},"total_tokens":{},"completion_tokens":{},"prompt_tokens_details":{{"cached_tokens":{}}}}}"#,
            self.prompt,
            self.prompt as u64 + self.completion as u64,
            self.completion,
            self.cached
        )
    }
}

/// What a response is about: endpoint kind, ids, model.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `/v1/chat/completions` (else `/v1/completions`).
    pub chat: bool,
    /// Response id (`chatcmpl-r<id>` / `cmpl-r<id>`).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Model name.
    pub model: String,
    /// Personality (decides usage placement).
    pub personality: Personality,
}

/// JSON-escapes a string, quotes included.
pub fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// The text of token `seq` of request `rid`: `«r<rid>:<seq>»`.
pub fn token_text(rid: u64, seq: u32) -> String {
    format!("«r{rid}:{seq}»")
}

impl Ctx {
    fn prefix(&self) -> String {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        format!(
            r#"{{"id":"{}","object":"{object}","created":{},"model":{}"#,
            self.id,
            self.created,
            jstr(&self.model)
        )
    }

    /// The first chat chunk (`delta.role`); `None` for completions, which have no role chunk.
    pub fn role_chunk(&self) -> Option<String> {
        self.chat.then(|| {
            format!(
                r#"{},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}"#,
                self.prefix()
            )
        })
    }

    /// A content chunk carrying `text`.
    pub fn content_chunk(&self, text: &str) -> String {
        if self.chat {
            format!(
                r#"{},"choices":[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}]}}"#,
                self.prefix(),
                jstr(text)
            )
        } else {
            format!(
                r#"{},"choices":[{{"index":0,"text":{},"logprobs":null,"finish_reason":null}}]}}"#,
                self.prefix(),
                jstr(text)
            )
        }
    }

    /// The chunk carrying `finish_reason`; MindIE attaches `usage` here (unless `usage` is None).
    pub fn finish_chunk(&self, reason: &str, usage: Option<Usage>) -> String {
        let usage = match (self.personality, usage) {
            (Personality::Mindie, Some(u)) => format!(r#","usage":{}"#, u.json()),
            _ => String::new(),
        };
        if self.chat {
            format!(
                r#"{},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}","stop_reason":null}}]{usage}}}"#,
                self.prefix()
            )
        } else {
            format!(
                r#"{},"choices":[{{"index":0,"text":"","logprobs":null,"finish_reason":"{reason}","stop_reason":null}}]{usage}}}"#,
                self.prefix()
            )
        }
    }

    /// The trailing `"choices":[]` usage chunk: vLLM/SGLang with `include_usage` only.
    pub fn usage_chunk(&self, include_usage: bool, usage: Option<Usage>) -> Option<String> {
        let u = usage?;
        (include_usage && self.personality != Personality::Mindie)
            .then(|| format!(r#"{},"choices":[],"usage":{}}}"#, self.prefix(), u.json()))
    }

    /// The non-streaming `chat.completion` / `text_completion` body.
    pub fn full_body(&self, text: &str, reason: &str, usage: Option<Usage>) -> String {
        let usage = usage
            .map(|u| format!(r#","usage":{}"#, u.json()))
            .unwrap_or_default();
        if self.chat {
            format!(
                r#"{{"id":"{}","object":"chat.completion","created":{},"model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"logprobs":null,"finish_reason":"{reason}"}}]{usage}}}"#,
                self.id,
                self.created,
                jstr(&self.model),
                jstr(text)
            )
        } else {
            format!(
                r#"{{"id":"{}","object":"text_completion","created":{},"model":{},"choices":[{{"index":0,"text":{},"logprobs":null,"finish_reason":"{reason}"}}]{usage}}}"#,
                self.id,
                self.created,
                jstr(&self.model),
                jstr(text)
            )
        }
    }
}

/// Frames one SSE event, honouring a `malformed` fault.
pub fn event(data: &str, malformed: Option<Malformed>) -> Vec<u8> {
    let end: &[u8] = match malformed {
        Some(Malformed::CrOnly) => b"\r\r",
        Some(Malformed::NoBlankLine) => b"\n",
        _ => b"\n\n",
    };
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(end);
    out
}

/// Unix time in seconds (for `created`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
