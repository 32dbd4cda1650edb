//! Phase 3, inspect_request: parse the JSON body once and derive what later phases need — the
//! model, whether the client wants a stream, whether it asked for a usage chunk — and the body to
//! send upstream. The body is forwarded as the same bytes unless usage capture needs
//! `stream_options.include_usage=true` added, which is a splice after the opening brace (no
//! re-serialisation) in the common case of a body without `stream_options`.
//!
//! Duplicate keys among the fields the gateway acts on (`model`, `stream`, `stream_options`) are
//! rejected: a parser differential ("first for the check, last at the backend") must not exist.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use tollgate_core::{Error, ErrorKind};

use super::ReqCtx;
use super::admit::Api;
use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// The parsed request, as later phases see it.
pub struct Inspected {
    /// Endpoint.
    pub api: Api,
    /// Index of the model in the snapshot.
    pub model_idx: usize,
    /// `stream: true`.
    pub stream: bool,
    /// The client asked for `stream_options.include_usage`.
    pub client_wants_usage: bool,
    /// The body as the client sent it.
    pub body: Bytes,
    /// The body with `include_usage` forced on (for backends that honour `stream_options`).
    pub body_with_usage: Option<Bytes>,
    /// The client's `model` value.
    pub model: Arc<str>,
    /// The larger of `max_tokens` and `max_completion_tokens` (each when a non-negative
    /// integer): what token limits reserve for the completion.
    pub max_tokens: Option<u64>,
    /// `n` (choices per request), 1 when absent; completion reservations are multiplied by it.
    pub n: u64,
    /// Raw JSON of `messages` (chat) or `prompt` (completions), as the client sent it: what
    /// prefix affinity hashes. Empty when absent.
    pub prompt_raw: Bytes,
}

impl Inspected {
    /// Rewrite `model` to `name` in the bodies sent upstream (a pool's model name). Only the
    /// model string changes; every other byte stays as sent.
    pub fn rewrite_model(&mut self, name: &str) -> Result<(), Error> {
        if *self.model == *name {
            return Ok(());
        }
        self.body = splice_model(&self.body, name)?;
        if let Some(b) = &self.body_with_usage {
            self.body_with_usage = Some(splice_model(b, name)?);
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow)]
    model: &'a serde_json::value::RawValue,
}

fn splice_model(body: &Bytes, name: &str) -> Result<Bytes, Error> {
    let m: ModelOnly<'_> = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Invalid JSON body: {e}")).with_code("invalid_json"))?;
    let raw = m.model.get();
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    let end = start + raw.len();
    let enc = serde_json::to_vec(name).map_err(|e| Error::internal(format!("model name: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + enc.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(&enc);
    out.extend_from_slice(&body[end..]);
    Ok(Bytes::from(out))
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    #[serde(borrow)]
    messages: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    prompt: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    n: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

fn invalid(msg: impl Into<Cow<'static, str>>) -> Error {
    Error::client(ErrorKind::InvalidRequest, msg)
}

/// Parse and validate the body; run request-side content scanning (mask rewrites the body,
/// block answers 400 with the rule id as the code).
pub fn inspect(
    w: &Worker,
    snap: &Arc<Snapshot>,
    api: Api,
    body: Bytes,
    rq: &mut ReqCtx,
) -> Result<Inspected, Error> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(invalid("The request body must be a JSON object").with_code("invalid_json"));
    }
    let h: Head<'_> = serde_json::from_slice(&body).map_err(|e| {
        let msg = if e.to_string().starts_with("duplicate field") {
            format!("Invalid request body: {e}")
        } else {
            format!("Invalid JSON body: {}", e)
        };
        invalid(msg).with_code("invalid_json")
    })?;
    let model = match h.model.as_deref() {
        Some(m) if !m.is_empty() => m,
        _ => return Err(invalid("You must provide a model parameter").with_code("missing_model")),
    };
    let Some((model_idx, _)) = snap.config.model(model) else {
        return Err(Error::client(
            ErrorKind::ModelNotFound,
            "The model does not exist or you do not have access to it",
        ));
    };
    let stream = api != Api::Embeddings && h.stream.unwrap_or(false);
    let client_wants_usage = h
        .stream_options
        .as_ref()
        .and_then(|s| s.include_usage)
        .unwrap_or(false);
    let has_stream_options = h.stream_options.is_some();
    // Both fields may be present (old and new name): reserve for the larger, so a client cannot
    // pass the check with one and generate with the other.
    let max_tokens = [h.max_completion_tokens, h.max_tokens]
        .into_iter()
        .flatten()
        .filter_map(|v| v.get().parse::<u64>().ok())
        .max();
    let n = match h.n {
        None => 1,
        Some(v) if v.get() == "null" => 1,
        Some(v) => match v.get().parse::<u64>() {
            Ok(n) if (1..=128).contains(&n) => n,
            _ => {
                return Err(
                    invalid("'n' must be an integer between 1 and 128").with_code("invalid_n")
                );
            }
        },
    };
    let prompt_raw = match h.messages.or(h.prompt) {
        Some(raw) => {
            let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
            body.slice(start..start + raw.get().len())
        }
        None => Bytes::new(),
    };
    let model: Arc<str> = Arc::from(model);
    let body = scan_request(w, snap, body, rq)?;
    let body_with_usage = if stream && !client_wants_usage {
        Some(force_include_usage(&body, has_stream_options)?)
    } else {
        None
    };
    Ok(Inspected {
        api,
        model_idx,
        stream,
        client_wants_usage,
        body,
        body_with_usage,
        model,
        max_tokens,
        n,
        prompt_raw,
    })
}

/// Request-side scanning. Also refuses `logprobs` while response scanning is on: log
/// probabilities carry the raw tokens and would bypass the response masker.
fn scan_request(
    w: &Worker,
    snap: &Arc<Snapshot>,
    body: Bytes,
    rq: &mut ReqCtx,
) -> Result<Bytes, Error> {
    use tollgate_scan::Direction;
    let Some(rules) = &snap.config.scan else {
        return Ok(body);
    };
    if !rules.active(Direction::Request) && !rules.active(Direction::Response) {
        return Ok(body);
    }
    let r = w
        .with_scanner(rules, |sc| tollgate_scan::json::scan_request(sc, &body))?
        .map_err(|e| invalid(format!("Invalid request body: {e}")).with_code("invalid_json"))?;
    rq.scan_hits
        .extend(r.hits.iter().map(|h| (h.rule as u32, Direction::Request)));
    if let Some(rule) = r.blocked {
        let code = rules.code(rule);
        return Err(Error::client(
            ErrorKind::ContentBlocked,
            format!("The request was blocked by content rule '{code}'"),
        )
        .with_code(code));
    }
    if r.wants_logprobs && rules.active(Direction::Response) {
        return Err(invalid(
            "logprobs are not available while response content scanning is on (they would \
             carry unmasked tokens)",
        )
        .with_code("logprobs_unsupported"));
    }
    Ok(r.body.map(Bytes::from).unwrap_or(body))
}

/// The body with `"stream_options":{"include_usage":true}`.
fn force_include_usage(body: &Bytes, has_stream_options: bool) -> Result<Bytes, Error> {
    if !has_stream_options {
        // Splice right after the opening brace; the object has at least `model`, so a comma
        // after the inserted member keeps it valid JSON.
        let pos = body.iter().position(|&b| b == b'{').unwrap_or(0) + 1;
        const INS: &[u8] = b"\"stream_options\":{\"include_usage\":true},";
        let mut out = Vec::with_capacity(body.len() + INS.len());
        out.extend_from_slice(&body[..pos]);
        out.extend_from_slice(INS);
        out.extend_from_slice(&body[pos..]);
        return Ok(Bytes::from(out));
    }
    // Rare path: the client sent stream_options without include_usage=true. Rewrite the object.
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid JSON body: {e}")))?;
    if let Some(so) = v.get_mut("stream_options").and_then(|s| s.as_object_mut()) {
        so.insert("include_usage".into(), serde_json::Value::Bool(true));
    } else if let Some(o) = v.as_object_mut() {
        o.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| invalid(format!("Invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_keeps_json_valid_and_adds_usage() {
        let b = Bytes::from_static(br#" {"model":"m","stream":true,"messages":[]}"#);
        let out = force_include_usage(&b, false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "m");
    }

    #[test]
    fn existing_stream_options_are_rewritten() {
        let b = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
        );
        let v: serde_json::Value =
            serde_json::from_slice(&force_include_usage(&b, true).unwrap()).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);
    }

    #[test]
    fn model_rewrite_changes_only_the_model_string() {
        let b = Bytes::from_static(
            br#"{"stream":true, "model" : "chat","messages":[{"role":"user","content":"model"}]}"#,
        );
        let out = splice_model(&b, "meta/llama \"x\"").unwrap();
        assert_eq!(
            &out[..],
            &br#"{"stream":true, "model" : "meta/llama \"x\"","messages":[{"role":"user","content":"model"}]}"#[..]
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "meta/llama \"x\"");
    }

    #[test]
    fn duplicate_model_key_is_an_error() {
        let r: Result<Head<'_>, _> = serde_json::from_slice(br#"{"model":"a","model":"b"}"#);
        assert!(r.is_err());
    }
}
