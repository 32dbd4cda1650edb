//! What route rules look at, computed at most once per request and only when a rule needs it:
//! header lookups are free; the request text is extracted from the JSON body on the first
//! content or context-length condition; tokens are counted on the first context-length one.

use std::cell::OnceCell;

use serde::Deserialize;
use serde_json::Value;

use crate::tokens::Tokenizer;

/// Header lookup by lowercase name (the proxy implements it over its parsed request head).
pub trait Headers {
    /// Value of the first header called `name` (lowercase), if any.
    fn get(&self, name: &str) -> Option<&[u8]>;
}

/// No headers (tests, benches).
pub struct NoHeaders;

impl Headers for NoHeaders {
    fn get(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

/// Headers as name/value pairs (tests, benches, the loadtest harness).
pub struct Pairs<'a>(pub &'a [(&'a str, &'a str)]);

impl Headers for Pairs<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }
}

/// The text of a request, by role.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text {
    /// User messages (chat) or the prompt / input (completions, embeddings), joined by `\n`.
    pub user: String,
    /// The last user message.
    pub last_user: String,
    /// Every message's text, joined by `\n`.
    pub all: String,
    /// Number of chat messages (0 for completions).
    pub messages: usize,
}

#[derive(Deserialize)]
struct Body {
    messages: Option<Vec<Msg>>,
    prompt: Option<Value>,
    input: Option<Value>,
}

#[derive(Deserialize)]
struct Msg {
    role: Option<String>,
    content: Option<Value>,
}

/// Append every string inside `v` (a string, an array of strings, or content parts with
/// `text`) to `out`.
fn collect(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::Object(o) => {
            if let Some(t) = o.get("text") {
                collect(t, out);
            }
        }
        _ => {}
    }
}

/// Extract the text of a chat / completions / embeddings body. `None` when the body is not a
/// JSON object (the proxy rejected those earlier).
pub fn extract_text(body: &[u8]) -> Option<Text> {
    let b: Body = serde_json::from_slice(body).ok()?;
    let mut t = Text::default();
    if let Some(msgs) = &b.messages {
        t.messages = msgs.len();
        for m in msgs {
            let Some(c) = &m.content else { continue };
            collect(c, &mut t.all);
            if m.role.as_deref() == Some("user") {
                collect(c, &mut t.user);
                t.last_user.clear();
                collect(c, &mut t.last_user);
            }
        }
    }
    for v in [&b.prompt, &b.input].into_iter().flatten() {
        collect(v, &mut t.user);
        collect(v, &mut t.all);
        t.last_user = t.user.clone();
    }
    Some(t)
}

/// Chat-format overhead per message (role and separators, OpenAI's cookbook figure) and for
/// priming the reply; added to the content tokens of chat requests.
pub const TOKENS_PER_MESSAGE: usize = 4;
/// See [`TOKENS_PER_MESSAGE`].
pub const TOKENS_REPLY_PRIMING: usize = 3;

/// The facts of one request, computed lazily.
pub struct Facts<'a> {
    /// Request headers.
    pub headers: &'a dyn Headers,
    /// Request JSON body.
    pub body: &'a [u8],
    text: OnceCell<Option<Text>>,
    tokens: OnceCell<Option<(Tokenizer, usize)>>,
}

impl<'a> Facts<'a> {
    /// Facts over a request.
    pub fn new(headers: &'a dyn Headers, body: &'a [u8]) -> Facts<'a> {
        Facts {
            headers,
            body,
            text: OnceCell::new(),
            tokens: OnceCell::new(),
        }
    }

    /// The request text (extracted on first use).
    pub fn text(&self) -> Option<&Text> {
        self.text.get_or_init(|| extract_text(self.body)).as_ref()
    }

    /// Prompt tokens with `tok` (counted on first use): content tokens plus the chat format's
    /// per-message overhead.
    pub fn prompt_tokens(&self, tok: Tokenizer) -> Option<usize> {
        let v = self.tokens.get_or_init(|| {
            let t = self.text()?;
            let mut n = tok.count(&t.all);
            if t.messages > 0 {
                n += t.messages * TOKENS_PER_MESSAGE + TOKENS_REPLY_PRIMING;
            }
            Some((tok, n))
        });
        match v {
            Some((t, n)) if *t == tok => Some(*n),
            // A second tokenizer for the same request (not possible with one model per
            // request, but stay correct): count without caching.
            Some(_) => {
                let t = self.text()?;
                Some(tok.count(&t.all))
            }
            None => None,
        }
    }

    /// Whether prompt tokens were counted for this request (the access log reports it).
    pub fn counted_tokens(&self) -> Option<usize> {
        self.tokens.get().and_then(|v| v.map(|(_, n)| n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_by_role() {
        let b = br#"{"model":"m","messages":[{"role":"system","content":"be nice"},
            {"role":"user","content":"hello"},{"role":"assistant","content":"hi"},
            {"role":"user","content":[{"type":"text","text":"how"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        let t = extract_text(b).unwrap();
        assert_eq!(t.user, "hello\nhow");
        assert_eq!(t.last_user, "how");
        assert_eq!(t.all, "be nice\nhello\nhi\nhow");
        assert_eq!(t.messages, 4);
    }

    #[test]
    fn completions_prompt_and_garbage() {
        let t = extract_text(br#"{"prompt":["a","b"]}"#).unwrap();
        assert_eq!((t.user.as_str(), t.messages), ("a\nb", 0));
        assert!(extract_text(b"[1]").is_none());
        assert!(extract_text(b"{").is_none());
    }

    #[test]
    fn tokens_are_counted_once_and_include_chat_overhead() {
        let b = br#"{"messages":[{"role":"user","content":"hello world"}]}"#;
        let f = Facts::new(&NoHeaders, b);
        assert_eq!(f.counted_tokens(), None);
        let n = f.prompt_tokens(Tokenizer::Cl100k).unwrap();
        assert_eq!(n, 2 + TOKENS_PER_MESSAGE + TOKENS_REPLY_PRIMING);
        assert_eq!(f.counted_tokens(), Some(n));
    }
}
