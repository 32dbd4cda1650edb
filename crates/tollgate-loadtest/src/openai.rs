//! The OpenAI chat-completions wire format, as far as a load generator needs it: building the
//! request body, and classifying each streamed `data:` payload (content token? usage? error?
//! `[DONE]`?) or a non-streaming body.
//!
//! Classification deserializes into borrowed structs that ignore unknown fields, so vLLM, SGLang
//! and MindIE variants (usage on the finish chunk, `stop_reason`, `prompt_tokens_details`) all
//! parse. A content event is one whose `delta.content` (chat) or `text` (completions) is
//! non-empty: the role chunk (`"content": ""`) and the finish chunk are not tokens.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::workload::Prompt;

/// Token usage as the server reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
    /// `usage.prompt_tokens_details.cached_tokens`, when present.
    pub cached_tokens: Option<u64>,
}

/// What one streamed payload carried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkInfo {
    /// `data: [DONE]`.
    pub done: bool,
    /// Content-bearing choices in this chunk (normally 0 or 1).
    pub content: u32,
    /// Usage, if the chunk had a non-null `usage`.
    pub usage: Option<Usage>,
    /// An `{"error": …}` event's message.
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<RawChoice<'a>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    message: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<RawDetails>,
}

#[derive(Deserialize)]
struct RawDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<RawUsage> for Usage {
    fn from(u: RawUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
        }
    }
}

fn error_message(v: &serde_json::Value) -> String {
    v.get("message")
        .and_then(|m| m.as_str())
        .map_or_else(|| v.to_string(), str::to_string)
}

/// Classifies one SSE `data` payload. Unparsable JSON is an error event.
pub fn classify_chunk(data: &[u8]) -> ChunkInfo {
    if data.trim_ascii() == b"[DONE]" {
        return ChunkInfo {
            done: true,
            ..ChunkInfo::default()
        };
    }
    match serde_json::from_slice::<RawChunk<'_>>(data) {
        Ok(c) => ChunkInfo {
            done: false,
            content: c
                .choices
                .iter()
                .filter(|ch| {
                    let delta = ch.delta.as_ref().and_then(|d| d.content.as_deref());
                    delta.or(ch.text.as_deref()).is_some_and(|s| !s.is_empty())
                })
                .count() as u32,
            usage: c.usage.map(Usage::from),
            error: c.error.as_ref().map(error_message),
        },
        Err(e) => ChunkInfo {
            error: Some(format!("unparsable event: {e}")),
            ..ChunkInfo::default()
        },
    }
}

/// A parsed non-streaming completion: whether it had content, and its usage.
pub fn parse_completion(body: &[u8]) -> Result<(bool, Option<Usage>), String> {
    let c: RawChunk<'_> =
        serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))?;
    if let Some(e) = &c.error {
        return Err(error_message(e));
    }
    let content = c.choices.iter().any(|ch| {
        ch.message
            .as_ref()
            .and_then(|m| m.content.as_deref())
            .or(ch.text.as_deref())
            .is_some_and(|s| !s.is_empty())
    });
    Ok((content, c.usage.map(Usage::from)))
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_eos: Option<bool>,
}

/// The `POST /v1/chat/completions` body for a generated prompt. With `stream`, asks for
/// `stream_options.include_usage` so the server reports prompt and cached tokens.
pub fn chat_body(model: &str, p: &Prompt, stream: bool, ignore_eos: bool) -> Vec<u8> {
    let mut messages = Vec::with_capacity(2 + 2 * p.history.len());
    if let Some(s) = &p.system {
        messages.push(Message {
            role: "system",
            content: s,
        });
    }
    for (u, a) in &p.history {
        messages.push(Message {
            role: "user",
            content: u,
        });
        messages.push(Message {
            role: "assistant",
            content: a,
        });
    }
    messages.push(Message {
        role: "user",
        content: &p.user,
    });
    let body = ChatBody {
        model,
        messages,
        max_tokens: p.max_tokens,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        user: p.user_id.as_deref(),
        ignore_eos: ignore_eos.then_some(true),
    };
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_classified_per_server_shape() {
        let cases: &[(&str, ChunkInfo)] = &[
            (
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
                ChunkInfo::default(),
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"content":"«r1:0»"},"finish_reason":null}]}"#,
                ChunkInfo {
                    content: 1,
                    ..ChunkInfo::default()
                },
            ),
            (
                r#"{"choices":[{"index":0,"text":"hi"}]}"#,
                ChunkInfo {
                    content: 1,
                    ..ChunkInfo::default()
                },
            ),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":10,"total_tokens":14,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":8}}}"#,
                ChunkInfo {
                    usage: Some(Usage {
                        prompt_tokens: 10,
                        completion_tokens: 4,
                        cached_tokens: Some(8),
                    }),
                    ..ChunkInfo::default()
                },
            ),
            (
                // MindIE: usage on the finish chunk, no details.
                r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
                ChunkInfo {
                    usage: Some(Usage {
                        prompt_tokens: 3,
                        completion_tokens: 2,
                        cached_tokens: None,
                    }),
                    ..ChunkInfo::default()
                },
            ),
            (r#"{"choices":[],"usage":null}"#, ChunkInfo::default()),
            (
                r#"{"error":{"message":"boom","type":"InternalServerError","code":500}}"#,
                ChunkInfo {
                    error: Some("boom".into()),
                    ..ChunkInfo::default()
                },
            ),
            (
                "[DONE]",
                ChunkInfo {
                    done: true,
                    ..ChunkInfo::default()
                },
            ),
        ];
        for (data, want) in cases {
            assert_eq!(&classify_chunk(data.as_bytes()), want, "{data}");
        }
        assert!(classify_chunk(b"{not json").error.is_some());
    }

    #[test]
    fn escaped_content_still_counts() {
        let c = classify_chunk(br#"{"choices":[{"delta":{"content":"a\"b\u00e9"}}]}"#);
        assert_eq!(c.content, 1);
    }

    #[test]
    fn non_streaming_body_gives_usage_or_error() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
        assert_eq!(
            parse_completion(ok).unwrap(),
            (
                true,
                Some(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 1,
                    cached_tokens: None
                })
            )
        );
        assert!(parse_completion(br#"{"error":{"message":"no"}}"#).is_err());
    }

    #[test]
    fn body_has_stream_options_only_when_streaming() {
        let p = Prompt {
            system: Some("sys\n".into()),
            user: "q\n".into(),
            prompt_tokens: 4,
            max_tokens: 8,
            group: None,
            user_id: Some("g1-u2".into()),
            history: vec![("u0\n".into(), "a0\n".into())],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&chat_body("m", &p, true, false)).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"][0]["role"], "system");
        let roles: Vec<&str> = v["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["role"].as_str())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(v["messages"][3]["content"], "q\n");
        assert_eq!(v["user"], "g1-u2");
        assert!(v.get("ignore_eos").is_none());
        let v: serde_json::Value =
            serde_json::from_slice(&chat_body("m", &p, false, true)).unwrap();
        assert!(v.get("stream_options").is_none());
        assert_eq!(v["ignore_eos"], true);
    }
}
