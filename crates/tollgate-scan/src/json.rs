//! OpenAI JSON bodies and stream chunks: finding, scanning and rewriting their text fields.
//!
//! Text fields are located with serde's borrowed [`RawValue`]s, so each string's byte span in
//! the body is known; a masked string is re-encoded and spliced in, and every other byte of the
//! body stays as the client or backend sent it. Strings are JSON-decoded before scanning, so
//! `alice\u0040example.com` is seen as `alice@example.com`. Each field is scanned on its own;
//! a match cannot span two fields or two messages.
//!
//! Fields scanned:
//! * requests: `messages[].content` (string, or `text` of every part), `messages[].name`,
//!   `messages[].reasoning_content`, `messages[].tool_calls[].function.arguments`,
//!   `messages[].function_call.arguments`, `tools[].function.description`, `prompt` and
//!   `input` (string or list of strings), `suffix`;
//! * responses: `choices[].message.{content, reasoning_content, refusal}`,
//!   `choices[].message.tool_calls[].function.arguments`, `choices[].text`;
//! * stream chunks: the same fields under `choices[].delta` (and `choices[].text`), each as
//!   its own [`TextStream`] per choice index (and per tool-call index).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Blocked, Direction, Hit, Scanner, TextStream};

/// Result of scanning a complete body.
#[derive(Debug, Default)]
pub struct BodyScan {
    /// The rewritten body, when something was masked.
    pub body: Option<Vec<u8>>,
    /// All hits.
    pub hits: Vec<Hit>,
    /// First blocking rule.
    pub blocked: Option<usize>,
    /// The request asks for log probabilities (which would carry the raw tokens past the
    /// response scanner).
    pub wants_logprobs: bool,
}

#[derive(Deserialize)]
struct Func<'a> {
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    function: Option<Func<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    refusal: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default)]
    function_call: Option<Func<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolFn<'a> {
    #[serde(borrow, default)]
    description: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    function: Option<ToolFn<'a>>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    suffix: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(borrow, default)]
    logprobs: Option<&'a RawValue>,
    #[serde(borrow, default)]
    top_logprobs: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

/// Byte span of a raw JSON value inside `base`.
fn span(base: &str, raw: &RawValue) -> (usize, usize) {
    let s = raw.get();
    let start = (s.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    (start, start + s.len())
}

/// Collect string values: a string itself; the strings of a list (`prompt`/`input` lists); the
/// `text` of content parts.
fn collect_text<'a>(raw: Option<&'a RawValue>, out: &mut Vec<&'a RawValue>) -> Result<(), String> {
    let Some(raw) = raw else { return Ok(()) };
    match raw.get().as_bytes().first() {
        Some(b'"') => out.push(raw),
        Some(b'[') => {
            let items: Vec<&'a RawValue> =
                serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
            for it in items {
                match it.get().as_bytes().first() {
                    Some(b'"') => out.push(it),
                    Some(b'{') => {
                        let p: Part<'a> =
                            serde_json::from_str(it.get()).map_err(|e| e.to_string())?;
                        collect_text(p.text, out)?;
                    }
                    // Token-id lists and other non-text values carry no text to scan.
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn collect_message<'a>(m: &Message<'a>, out: &mut Vec<&'a RawValue>) -> Result<(), String> {
    collect_text(m.content, out)?;
    for f in [m.name, m.reasoning_content, m.refusal] {
        collect_text(f, out)?;
    }
    for tc in m.tool_calls.iter().flatten() {
        collect_text(tc.function.as_ref().and_then(|f| f.arguments), out)?;
    }
    collect_text(m.function_call.as_ref().and_then(|f| f.arguments), out)?;
    Ok(())
}

fn truthy(v: Option<&RawValue>) -> bool {
    v.is_some_and(|r| !matches!(r.get().trim(), "null" | "false" | "0"))
}

/// Scan and rewrite the strings at `spans` of `text`.
fn rewrite(
    sc: &mut Scanner,
    dir: Direction,
    text: &str,
    strings: &[&RawValue],
    out: &mut BodyScan,
) -> Result<(), String> {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for raw in strings {
        let decoded: Cow<'_, str> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        let r = sc.scan_text(dir, &decoded);
        out.hits.extend_from_slice(&r.hits);
        if r.blocked.is_some() {
            out.blocked = out.blocked.or(r.blocked);
            return Ok(());
        }
        if let Some(m) = r.masked {
            let (s, e) = span(text, raw);
            edits.push((s, e, serde_json::to_string(&m).map_err(|e| e.to_string())?));
        }
    }
    if !edits.is_empty() {
        out.body = Some(splice(text, edits));
    }
    Ok(())
}

/// `text` with each `(start, end, replacement)` span replaced (spans do not overlap).
fn splice(text: &str, mut edits: Vec<(usize, usize, String)>) -> Vec<u8> {
    edits.sort_unstable_by_key(|e| e.0);
    let mut body = Vec::with_capacity(text.len() + 64);
    let mut at = 0;
    for (s, e, new) in edits {
        body.extend_from_slice(&text.as_bytes()[at..s]);
        body.extend_from_slice(new.as_bytes());
        at = e;
    }
    body.extend_from_slice(&text.as_bytes()[at..]);
    body
}

/// Scan a chat / completions / embeddings request body. `Err` is a JSON shape error.
pub fn scan_request(sc: &mut Scanner, body: &[u8]) -> Result<BodyScan, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not valid UTF-8".to_string())?;
    let req: Request<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BodyScan {
        wants_logprobs: truthy(req.logprobs) || truthy(req.top_logprobs),
        ..BodyScan::default()
    };
    if !sc.active(Direction::Request) {
        return Ok(out);
    }
    let mut strings = Vec::new();
    for m in req.messages.iter().flatten() {
        collect_message(m, &mut strings)?;
    }
    for f in [req.prompt, req.input, req.suffix] {
        collect_text(f, &mut strings)?;
    }
    for t in req.tools.iter().flatten() {
        collect_text(
            t.function.as_ref().and_then(|f| f.description),
            &mut strings,
        )?;
    }
    rewrite(sc, Direction::Request, text, &strings, &mut out)?;
    Ok(out)
}

/// Scan a complete (non-streaming) chat / completions response body.
pub fn scan_response(sc: &mut Scanner, body: &[u8]) -> Result<BodyScan, String> {
    let mut out = BodyScan::default();
    if !sc.active(Direction::Response) {
        return Ok(out);
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not valid UTF-8".to_string())?;
    let resp: Response<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut strings = Vec::new();
    for c in resp.choices.iter().flatten() {
        if let Some(m) = &c.message {
            collect_message(m, &mut strings)?;
        }
        collect_text(c.text, &mut strings)?;
    }
    rewrite(sc, Direction::Response, text, &strings, &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    refusal: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChunkChoice<'a>>>,
}

/// A text field of a streamed choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Content,
    Reasoning,
    Refusal,
    /// Completions `text`.
    Text,
    /// `tool_calls[index].function.arguments`.
    ToolArgs(u32),
}

/// What to do with one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkOut {
    /// Forward the frame as its original bytes.
    Unchanged,
    /// Send these `data:` payloads instead (in order).
    Replace(Vec<Vec<u8>>),
    /// A block rule matched: end the stream with an error event.
    Blocked(usize),
    /// The chunk is not JSON of the expected shape: end the stream (fail closed).
    Invalid(String),
}

#[derive(Debug, Default)]
struct Ids {
    id: String,
    object: String,
    created: u64,
    model: String,
}

/// Scanning state for one streamed response (all choices and fields).
#[derive(Debug, Default)]
pub struct StreamScanner {
    fields: Vec<(u32, Field, TextStream)>,
    ids: Ids,
    /// Hits so far.
    pub hits: Vec<Hit>,
}

impl StreamScanner {
    /// Fresh state.
    pub fn new() -> StreamScanner {
        StreamScanner::default()
    }

    /// Bytes of text currently held back over all fields.
    pub fn held(&self) -> usize {
        self.fields.iter().map(|f| f.2.held()).sum()
    }

    fn stream_for(&mut self, sc: &Scanner, choice: u32, field: Field) -> usize {
        match self
            .fields
            .iter()
            .position(|(c, f, _)| *c == choice && *f == field)
        {
            Some(i) => i,
            None => {
                self.fields
                    .push((choice, field, sc.stream(Direction::Response)));
                self.fields.len() - 1
            }
        }
    }

    /// Process one `data:` payload (not `[DONE]`).
    pub fn on_chunk(&mut self, sc: &mut Scanner, data: &[u8]) -> ChunkOut {
        if !sc.active(Direction::Response) {
            return ChunkOut::Unchanged;
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return ChunkOut::Invalid("chunk is not valid UTF-8".into());
        };
        let chunk: Chunk<'_> = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => return ChunkOut::Invalid(format!("chunk is not valid JSON: {e}")),
        };
        if let Some(id) = &chunk.id {
            self.ids.id = id.to_string();
        }
        if let Some(o) = &chunk.object {
            self.ids.object = o.to_string();
        }
        if let Some(c) = chunk.created {
            self.ids.created = c;
        }
        if let Some(m) = &chunk.model {
            self.ids.model = m.to_string();
        }
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        let mut pre: Vec<Vec<u8>> = Vec::new();
        for (pos, ch) in chunk.choices.iter().flatten().enumerate() {
            let idx = ch.index.unwrap_or(pos as u32);
            let mut present: Vec<(Field, &RawValue)> = Vec::new();
            if let Some(d) = &ch.delta {
                for (f, v) in [
                    (Field::Content, d.content),
                    (Field::Reasoning, d.reasoning_content),
                    (Field::Refusal, d.refusal),
                ] {
                    if let Some(v) = v.filter(|v| v.get().starts_with('"')) {
                        present.push((f, v));
                    }
                }
                for (k, tc) in d.tool_calls.iter().flatten().enumerate() {
                    let ti = tc.index.unwrap_or(k as u32);
                    if let Some(v) = tc
                        .function
                        .as_ref()
                        .and_then(|f| f.arguments)
                        .filter(|v| v.get().starts_with('"'))
                    {
                        present.push((Field::ToolArgs(ti), v));
                    }
                }
            }
            if let Some(v) = ch.text.filter(|v| v.get().starts_with('"')) {
                present.push((Field::Text, v));
            }
            let finishing = ch.finish_reason.is_some_and(|f| f.get().trim() != "null");
            for (field, raw) in &present {
                let decoded: Cow<'_, str> = match serde_json::from_str(raw.get()) {
                    Ok(d) => d,
                    Err(e) => return ChunkOut::Invalid(e.to_string()),
                };
                let i = self.stream_for(sc, idx, *field);
                let mut released = String::with_capacity(decoded.len());
                let st = &mut self.fields[i].2;
                let mut r = st.push(sc, &decoded, &mut released, &mut self.hits);
                if r.is_ok() && finishing {
                    r = st.finish(sc, &mut released, &mut self.hits);
                }
                if let Err(Blocked(rule)) = r {
                    return ChunkOut::Blocked(rule);
                }
                if released != decoded {
                    let (s, e) = span(text, raw);
                    match serde_json::to_string(&released) {
                        Ok(j) => edits.push((s, e, j)),
                        Err(e) => return ChunkOut::Invalid(e.to_string()),
                    }
                }
            }
            if finishing {
                // Fields of this choice not present in the finishing chunk: flush them into
                // chunks of their own, sent just before it.
                for i in 0..self.fields.len() {
                    let (c, f) = (self.fields[i].0, self.fields[i].1);
                    if c != idx || present.iter().any(|(pf, _)| *pf == f) {
                        continue;
                    }
                    let mut flushed = String::new();
                    if let Err(Blocked(rule)) =
                        self.fields[i].2.finish(sc, &mut flushed, &mut self.hits)
                    {
                        return ChunkOut::Blocked(rule);
                    }
                    if !flushed.is_empty() {
                        pre.push(self.synth(c, f, &flushed));
                    }
                }
            }
        }
        if edits.is_empty() && pre.is_empty() {
            return ChunkOut::Unchanged;
        }
        pre.push(splice(text, edits));
        ChunkOut::Replace(pre)
    }

    /// End of stream (`[DONE]` or the body's end): flush every field not yet finished.
    /// Returns the chunks to send before `[DONE]`.
    pub fn on_done(&mut self, sc: &mut Scanner) -> Result<Vec<Vec<u8>>, Blocked> {
        let mut out = Vec::new();
        for i in 0..self.fields.len() {
            let (c, f) = (self.fields[i].0, self.fields[i].1);
            let mut flushed = String::new();
            self.fields[i].2.finish(sc, &mut flushed, &mut self.hits)?;
            if !flushed.is_empty() {
                out.push(self.synth(c, f, &flushed));
            }
        }
        Ok(out)
    }

    /// A chunk carrying `text` in `field` of choice `choice`.
    fn synth(&self, choice: u32, field: Field, text: &str) -> Vec<u8> {
        let ids = &self.ids;
        let choice_json = match field {
            Field::Text => {
                serde_json::json!({"index": choice, "text": text, "finish_reason": null})
            }
            Field::Content => {
                serde_json::json!({"index": choice, "delta": {"content": text}, "finish_reason": null})
            }
            Field::Reasoning => {
                serde_json::json!({"index": choice, "delta": {"reasoning_content": text}, "finish_reason": null})
            }
            Field::Refusal => {
                serde_json::json!({"index": choice, "delta": {"refusal": text}, "finish_reason": null})
            }
            Field::ToolArgs(k) => {
                serde_json::json!({"index": choice, "delta": {"tool_calls": [{"index": k, "function": {"arguments": text}}]}, "finish_reason": null})
            }
        };
        let object = if ids.object.is_empty() {
            if field == Field::Text {
                "text_completion"
            } else {
                "chat.completion.chunk"
            }
        } else {
            ids.object.as_str()
        };
        let v = serde_json::json!({
            "id": ids.id,
            "object": object,
            "created": ids.created,
            "model": ids.model,
            "choices": [choice_json],
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }
}
