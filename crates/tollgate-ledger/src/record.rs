//! The ledger's one record type: what a finished request cost, in the shape written to disk.
//!
//! It exists apart from the writer so that the proxy (which fills it in `finish`) and the reader
//! (which parses it back) agree on one definition. The serialized form is one JSON object per line;
//! fields are never renamed, only added, so older readers keep reading newer files (unknown fields
//! are ignored on read).

use serde::{Deserialize, Serialize};

/// One finished request, as appended to the ledger.
///
/// Identity fields hold `"-"` when they do not apply (an unauthenticated request has no tenant,
/// a request rejected before routing has no backend), so every column of a report has a name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time in milliseconds when the request finished.
    pub ts_ms: i64,
    /// The gateway's request id (also in the access log and the `x-request-id` header).
    pub request_id: String,
    /// Tenant of the authenticated key, `"-"` when unauthenticated.
    pub tenant: String,
    /// Project within the tenant, `"-"` when unauthenticated.
    pub project: String,
    /// Consumer within the project, `"-"` when unauthenticated.
    pub consumer: String,
    /// Id of the API key used (never the secret), `"-"` when unauthenticated.
    pub key_id: String,
    /// Model the request asked for, `"-"` when none.
    pub model: String,
    /// Backend that served it, `"-"` when none.
    pub backend: String,
    /// Prompt tokens as reported by the backend (or counted by the gateway).
    pub prompt_tokens: u64,
    /// Completion tokens as reported by the backend (or counted by the gateway).
    pub completion_tokens: u64,
    /// Tokens admission reserved for this request (0 if no token limit applied).
    pub reserved_tokens: u64,
    /// HTTP status sent to the client.
    pub status: u16,
    /// Whether the response was streamed (SSE).
    pub stream: bool,
    /// Time to first token in milliseconds, for streams that produced one.
    pub ttft_ms: Option<f64>,
    /// Total time from request head to end of response, in milliseconds.
    pub duration_ms: f64,
    /// Error code (never a message: messages may carry user data), `None` on success.
    pub error: Option<String>,
    /// Scanner rule hits as `"rule:action:direction"`.
    pub rule_hits: Vec<String>,
}

impl Record {
    /// Total tokens billed: prompt plus completion (saturating).
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// Whether the request counts as an error in reports: status 400 or above.
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    /// Encodes the record as one JSON line (with its trailing `\n`) into `out`.
    ///
    /// Non-finite floats are replaced before encoding (`ttft_ms` becomes `None`, `duration_ms`
    /// becomes 0): JSON has no NaN, and serde_json would write `null`, which then fails to parse
    /// back as `f64` and would turn a good record into a skipped line.
    pub(crate) fn encode_line(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let finite = self.ttft_ms.is_none_or(f64::is_finite) && self.duration_ms.is_finite();
        if finite {
            serde_json::to_writer(&mut *out, self)?;
        } else {
            let mut clean = self.clone();
            clean.ttft_ms = clean.ttft_ms.filter(|v| v.is_finite());
            if !clean.duration_ms.is_finite() {
                clean.duration_ms = 0.0;
            }
            serde_json::to_writer(&mut *out, &clean)?;
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record with every field set, for tests across the crate.
    pub(crate) fn sample(id: &str, ts_ms: i64) -> Record {
        Record {
            ts_ms,
            request_id: id.to_string(),
            tenant: "acme".into(),
            project: "search".into(),
            consumer: "web".into(),
            key_id: "k1".into(),
            model: "gpt-x".into(),
            backend: "b1".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            reserved_tokens: 100,
            status: 200,
            stream: true,
            ttft_ms: Some(12.5),
            duration_ms: 80.0,
            error: None,
            rule_hits: vec!["pii-email:redact:request".into()],
        }
    }

    #[test]
    fn encoded_line_is_one_line_and_parses_back() {
        let mut r = sample("a\nb", 1);
        r.error = Some("upstream\ntimeout".into());
        let mut out = Vec::new();
        r.encode_line(&mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(out.last(), Some(&b'\n'));
        let back: Record = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn non_finite_floats_are_cleaned_so_the_line_still_parses() {
        let mut r = sample("nan", 1);
        r.ttft_ms = Some(f64::NAN);
        r.duration_ms = f64::INFINITY;
        let mut out = Vec::new();
        r.encode_line(&mut out).unwrap();
        let back: Record = serde_json::from_slice(&out).unwrap();
        assert_eq!(back.ttft_ms, None);
        assert_eq!(back.duration_ms, 0.0);
    }
}
