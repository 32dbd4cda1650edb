//! Cheap inspection of OpenAI-compatible stream chunks and response bodies.
//!
//! The gateway meters tokens per request. vLLM, SGLang and MindIE all speak the OpenAI chunk
//! format but differ in where usage appears:
//!
//! - OpenAI / vLLM / SGLang with `stream_options.include_usage`: a trailing chunk with
//!   `"choices": []` and `usage` ([`ChunkInfo::is_usage_only`]).
//! - vLLM with `continuous_usage_stats`: usage on *every* chunk, cumulative. Callers must keep the
//!   high-water mark ([`Usage::max_merge`]), never the sum.
//! - MindIE: usage on the finish chunk; the gateway can append a standard usage-only chunk with
//!   [`synth_usage_chunk`] when the client asked for `include_usage`.
//! - No usage at all: [`ChunkInfo::content_pieces`] / [`ChunkInfo::content_bytes`] let the caller
//!   estimate completion tokens.
//!
//! Parsing uses borrowed typed structs: unknown fields are skipped by serde (as `IgnoredAny`)
//! without building a `Value`, and content strings are only measured (borrowed unless they
//! contain escapes).

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Token usage as reported by the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Total tokens (`prompt + completion` when the upstream omitted it).
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens` (prefix-cache hits), when reported.
    pub cached_tokens: Option<u64>,
}

/// Why a stream ended, from a choice's `finish_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// `stop`: natural end or stop sequence.
    Stop,
    /// `length`: `max_tokens` or context limit reached.
    Length,
    /// `tool_calls` (or legacy `function_call`).
    ToolCalls,
    /// `content_filter`.
    ContentFilter,
    /// Anything else (e.g. `abort` from vLLM).
    Other,
}

/// What the gateway needs to know about one stream chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkInfo {
    /// `usage`, or `None` when absent or `null`.
    pub usage: Option<Usage>,
    /// Number of entries in `choices` (0 when absent).
    pub choices_len: usize,
    /// `choices` is an empty array and `usage` is present: the trailing usage chunk.
    pub is_usage_only: bool,
    /// The first non-null `finish_reason` among the choices.
    pub finish_reason: Option<FinishReason>,
    /// Number of non-empty text pieces (`delta.content`, `delta.reasoning_content`, `text`).
    pub content_pieces: usize,
    /// Total length in bytes (unescaped UTF-8) of those pieces.
    pub content_bytes: usize,
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<RawChoice<'a>>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Serialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<RawDetails>,
}

#[derive(Deserialize, Serialize)]
struct RawDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct RawBody {
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Serialize)]
struct SynthChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [u8; 0],
    usage: RawUsage,
}

impl Usage {
    /// Field-wise maximum of `self` and `other`: the right merge for cumulative per-chunk usage
    /// (vLLM `continuous_usage_stats`), where summing would over-count.
    pub fn max_merge(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.max(other.prompt_tokens),
            completion_tokens: self.completion_tokens.max(other.completion_tokens),
            total_tokens: self.total_tokens.max(other.total_tokens),
            cached_tokens: match (self.cached_tokens, other.cached_tokens) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

impl From<RawUsage> for Usage {
    fn from(raw: RawUsage) -> Self {
        let prompt_tokens = raw.prompt_tokens.unwrap_or(0);
        let completion_tokens = raw.completion_tokens.unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: raw
                .total_tokens
                .unwrap_or_else(|| prompt_tokens.saturating_add(completion_tokens)),
            cached_tokens: raw.prompt_tokens_details.and_then(|d| d.cached_tokens),
        }
    }
}

impl From<&Usage> for RawUsage {
    fn from(usage: &Usage) -> Self {
        RawUsage {
            prompt_tokens: Some(usage.prompt_tokens),
            completion_tokens: Some(usage.completion_tokens),
            total_tokens: Some(usage.total_tokens),
            prompt_tokens_details: usage.cached_tokens.map(|cached| RawDetails {
                cached_tokens: Some(cached),
            }),
        }
    }
}

impl FinishReason {
    fn parse(reason: &str) -> FinishReason {
        match reason {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            _ => FinishReason::Other,
        }
    }
}

/// Inspect one `chat.completion.chunk` or `text_completion` chunk (the `data` of a frame).
///
/// # Errors
///
/// The JSON error when `data` is not a JSON object of the expected shape (e.g. `[DONE]`, which
/// callers should test with [`crate::Frame::is_done`] first).
pub fn inspect_chunk(data: &[u8]) -> Result<ChunkInfo, serde_json::Error> {
    let chunk: RawChunk<'_> = serde_json::from_slice(data)?;
    let usage = chunk.usage.map(Usage::from);
    let mut info = ChunkInfo {
        usage,
        ..ChunkInfo::default()
    };
    let Some(choices) = chunk.choices else {
        return Ok(info);
    };
    info.choices_len = choices.len();
    info.is_usage_only = choices.is_empty() && usage.is_some();
    for choice in &choices {
        if info.finish_reason.is_none() {
            info.finish_reason = choice.finish_reason.as_deref().map(FinishReason::parse);
        }
        let delta = choice.delta.as_ref();
        let pieces = [
            delta.and_then(|d| d.content.as_deref()),
            delta.and_then(|d| d.reasoning_content.as_deref()),
            choice.text.as_deref(),
        ];
        for piece in pieces.into_iter().flatten().filter(|p| !p.is_empty()) {
            info.content_pieces += 1;
            info.content_bytes += piece.len();
        }
    }
    Ok(info)
}

/// `usage` of a non-streaming response body, if present, non-null and the body is valid JSON.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<RawBody>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

/// A standard trailing usage chunk frame:
/// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[],
/// "usage":{..}}\n\n`.
pub fn synth_usage_chunk(id: &str, model: &str, created: u64, usage: &Usage) -> Bytes {
    let chunk = SynthChunk {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [],
        usage: RawUsage::from(usage),
    };
    let mut out = BytesMut::with_capacity(256);
    out.put_slice(b"data: ");
    let mut writer = out.writer();
    // Serializing plain strings and integers cannot fail; fall back to a minimal valid chunk.
    if serde_json::to_writer(&mut writer, &chunk).is_err() {
        let mut fallback = BytesMut::new();
        fallback.put_slice(b"data: {\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\n");
        return fallback.freeze();
    }
    let mut out = writer.into_inner();
    out.put_slice(b"\n\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#;

    #[test]
    fn inspect_chunk_table() {
        let usage = Usage {
            prompt_tokens: 5,
            completion_tokens: 7,
            total_tokens: 12,
            cached_tokens: None,
        };
        let cached = Usage {
            cached_tokens: Some(3),
            ..usage
        };
        let cases: &[(&str, &[u8], ChunkInfo)] = &[
            ("content", CONTENT, ChunkInfo { choices_len: 1, content_pieces: 1, content_bytes: 5, ..ChunkInfo::default() }),
            (
                "role only",
                br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
                ChunkInfo { choices_len: 1, ..ChunkInfo::default() },
            ),
            (
                "escaped content is unescaped length",
                br#"{"choices":[{"delta":{"content":"a\nb\u00e9"}}]}"#,
                ChunkInfo { choices_len: 1, content_pieces: 1, content_bytes: 5, ..ChunkInfo::default() },
            ),
            (
                "finish",
                br#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}"#,
                ChunkInfo { choices_len: 1, finish_reason: Some(FinishReason::Stop), ..ChunkInfo::default() },
            ),
            (
                "usage only",
                br#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
                ChunkInfo { usage: Some(usage), is_usage_only: true, ..ChunkInfo::default() },
            ),
            (
                "usage on finish chunk (MindIE)",
                br#"{"choices":[{"delta":{"content":"!"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":3}}}"#,
                ChunkInfo {
                    usage: Some(cached),
                    choices_len: 1,
                    finish_reason: Some(FinishReason::Length),
                    content_pieces: 1,
                    content_bytes: 1,
                    ..ChunkInfo::default()
                },
            ),
            (
                "text completion",
                br#"{"object":"text_completion","choices":[{"text":"ab","finish_reason":null},{"text":"c","finish_reason":"tool_calls"}]}"#,
                ChunkInfo { choices_len: 2, finish_reason: Some(FinishReason::ToolCalls), content_pieces: 2, content_bytes: 3, ..ChunkInfo::default() },
            ),
            (
                "reasoning content",
                br#"{"choices":[{"delta":{"reasoning_content":"hmm"},"finish_reason":"abort"}]}"#,
                ChunkInfo { choices_len: 1, finish_reason: Some(FinishReason::Other), content_pieces: 1, content_bytes: 3, ..ChunkInfo::default() },
            ),
            (
                "missing total is derived",
                br#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
                ChunkInfo { usage: Some(usage), is_usage_only: true, ..ChunkInfo::default() },
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(inspect_chunk(input).ok(), Some(*want), "{name}");
        }
    }

    #[test]
    fn inspect_chunk_rejects_non_chunks() {
        for input in [&b"[DONE]"[..], b"", b"{", b"{\"choices\":3}", b"\xff"] {
            assert!(inspect_chunk(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn usage_from_body_table() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#, Some(3)),
            (br#"{"usage":null}"#, None),
            (br#"{"choices":[]}"#, None),
            (b"not json", None),
        ];
        for (body, total) in cases {
            assert_eq!(
                usage_from_body(body).map(|u| u.total_tokens),
                *total,
                "{body:?}"
            );
        }
    }

    #[test]
    fn synth_usage_chunk_round_trips() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            cached_tokens: Some(4),
        };
        let frame = synth_usage_chunk("chatcmpl-\"x\"", "qwen", 1_700_000_000, &usage);
        let want = concat!(
            r#"data: {"id":"chatcmpl-\"x\"","object":"chat.completion.chunk","created":1700000000,"#,
            r#""model":"qwen","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20,"#,
            r#""total_tokens":30,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            "\n\n"
        );
        assert_eq!(std::str::from_utf8(&frame).ok(), Some(want));
        let info = inspect_chunk(&frame[6..frame.len() - 2]).ok();
        assert_eq!(
            info.map(|i| (i.is_usage_only, i.usage)),
            Some((true, Some(usage)))
        );
    }

    #[test]
    fn max_merge_takes_high_water_mark() {
        let a = Usage {
            prompt_tokens: 5,
            completion_tokens: 1,
            total_tokens: 6,
            cached_tokens: None,
        };
        let b = Usage {
            prompt_tokens: 5,
            completion_tokens: 9,
            total_tokens: 14,
            cached_tokens: Some(2),
        };
        let merged = a.max_merge(b);
        assert_eq!(
            merged,
            Usage {
                completion_tokens: 9,
                total_tokens: 14,
                cached_tokens: Some(2),
                ..a
            }
        );
        assert_eq!(b.max_merge(a), merged);
    }
}
