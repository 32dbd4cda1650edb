//! Fault injection: one [`FaultSpec`] type, parsed from the `x-simfleet-fault` header form.
//!
//! The gateway's reliability tests need upstreams that misbehave in exact, repeatable ways: wrong
//! status codes, resets and clean closes mid-stream, stalls, malformed SSE, lying usage, awkward
//! chunking of sensitive text, broken framing. Every knob is one `key[=value]` item of a
//! comma-separated spec; the same grammar is used in the per-request header, in `fleet.toml`
//! (`faults = "..."`) and in [`crate::Fleet::set_fault`]. See the crate README for the reference.
//!
//! Grammar (`,` separates items; values never contain a raw `,` — percent-encode it in `text`):
//!
//! ```text
//! spec      = item *("," item)
//! item      = "status=" 3DIGIT | "retry_after=" secs | "refuse" | "reset_after=" k
//!           | "close_after=" k | "chunked_end" | "stall_after=" k ":" ms
//!           | "slow_first_byte=" ms | "malformed=" ("cr_only" | "no_blank_line" | "huge_line")
//!           | "no_usage" | "usage_lies=" n | "text=" pct-encoded | "chunks=" b *(":" b)
//!           | "raw_split" | "cl_te" | "extra_bytes" | "unhealthy"
//! ```

use serde::Serialize;

/// Size of the single data line written by `malformed=huge_line` (2 MiB): above the 1 MiB line
/// limits common in SSE decoders, so the gateway's limit is what gets exercised.
pub const HUGE_LINE_BYTES: usize = 2 * 1024 * 1024;

/// How `malformed=` breaks the SSE framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Lines end in a bare `\r` (legal SSE, rarely tested).
    CrOnly,
    /// Events end in a single `\n`, so consecutive `data:` lines merge into one event.
    NoBlankLine,
    /// One extra content event whose `data:` line is [`HUGE_LINE_BYTES`] long.
    HugeLine,
}

/// A parsed fault spec. `Default` is "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultSpec {
    /// Answer inference requests with this status and a JSON error body.
    pub status: Option<u16>,
    /// With `status`: add `Retry-After: <s>`.
    pub retry_after_s: Option<u32>,
    /// Reset the connection (RST) right after reading the request, before any response byte.
    pub refuse: bool,
    /// Reset (SO_LINGER 0 + close) after this many content tokens.
    pub reset_after: Option<u32>,
    /// Close cleanly (FIN) after this many content tokens: no finish chunk, no `[DONE]`.
    pub close_after: Option<u32>,
    /// With `close_after`: write the chunked terminator `0\r\n\r\n` before the FIN, so the HTTP
    /// message is complete and only the SSE stream is truncated. Without it the chunked body
    /// itself is cut short (what a crashed server looks like).
    pub chunked_end: bool,
    /// After `k` tokens, stop sending for `ms` milliseconds, then continue.
    pub stall_after: Option<(u32, u64)>,
    /// Wait this long before the first response byte (the status line).
    pub slow_first_byte_ms: Option<u64>,
    /// Break the SSE framing.
    pub malformed: Option<Malformed>,
    /// Omit `usage` everywhere (usage chunk, finish chunk, non-streaming body).
    pub no_usage: bool,
    /// Report this many completion tokens instead of the true count.
    pub usage_lies: Option<u32>,
    /// Stream exactly this text as the content (instead of `«r<id>:<seq>»` tokens).
    pub text: Option<String>,
    /// Byte offsets at which to split `text` (or, with `raw_split`, the SSE bytes).
    pub chunks: Vec<usize>,
    /// Split the SSE *bytes* at `chunks` across separate TCP writes instead of splitting the text
    /// into separate content events.
    pub raw_split: bool,
    /// Non-streaming response carries both `Content-Length` and `Transfer-Encoding: chunked`.
    pub cl_te: bool,
    /// Non-streaming response is followed by stray bytes after the body.
    pub extra_bytes: bool,
    /// Health endpoints answer 503.
    pub unhealthy: bool,
}

impl FaultSpec {
    /// Parses `key[=value],...`; an empty spec is "no fault".
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut f = FaultSpec::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, val) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            match key {
                "status" => {
                    let s: u16 = num(key, need(key, val)?)?;
                    if !(100..=599).contains(&s) {
                        return Err(format!("fault status={s}: not an HTTP status"));
                    }
                    f.status = Some(s);
                }
                "retry_after" => f.retry_after_s = Some(num(key, need(key, val)?)?),
                "refuse" => f.refuse = true,
                "reset_after" => f.reset_after = Some(num(key, need(key, val)?)?),
                "close_after" => f.close_after = Some(num(key, need(key, val)?)?),
                "chunked_end" => f.chunked_end = true,
                "stall_after" => {
                    let v = need(key, val)?;
                    let (k, ms) = v
                        .split_once(':')
                        .ok_or_else(|| format!("fault stall_after={v}: expected <k>:<ms>"))?;
                    f.stall_after = Some((num(key, k)?, num(key, ms)?));
                }
                "slow_first_byte" => f.slow_first_byte_ms = Some(num(key, need(key, val)?)?),
                "malformed" => {
                    f.malformed = Some(match need(key, val)? {
                        "cr_only" => Malformed::CrOnly,
                        "no_blank_line" => Malformed::NoBlankLine,
                        "huge_line" => Malformed::HugeLine,
                        other => {
                            return Err(format!(
                                "fault malformed={other}: expected cr_only|no_blank_line|huge_line"
                            ));
                        }
                    })
                }
                "no_usage" => f.no_usage = true,
                "usage_lies" => f.usage_lies = Some(num(key, need(key, val)?)?),
                "text" => f.text = Some(percent_decode(need(key, val)?)?),
                "chunks" => {
                    f.chunks = need(key, val)?
                        .split(':')
                        .map(|b| num::<usize>(key, b))
                        .collect::<Result<_, _>>()?;
                }
                "raw_split" => f.raw_split = true,
                "cl_te" => f.cl_te = true,
                "extra_bytes" => f.extra_bytes = true,
                "unhealthy" => f.unhealthy = true,
                other => return Err(format!("unknown fault {other:?}")),
            }
        }
        Ok(f)
    }

    /// True when the spec changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == FaultSpec::default()
    }

    /// True when the spec changes how a stream is written, so the instant mode's precomputed
    /// single-write fast path cannot be used.
    pub fn shapes_stream(&self) -> bool {
        let inert = FaultSpec {
            unhealthy: self.unhealthy,
            ..FaultSpec::default()
        };
        *self != inert
    }

    /// A short label for records: the spec items that are set, in grammar order.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status={s}"));
        }
        if self.refuse {
            parts.push("refuse".into());
        }
        if let Some(k) = self.reset_after {
            parts.push(format!("reset_after={k}"));
        }
        if let Some(k) = self.close_after {
            parts.push(format!("close_after={k}"));
        }
        if let Some((k, ms)) = self.stall_after {
            parts.push(format!("stall_after={k}:{ms}"));
        }
        if let Some(ms) = self.slow_first_byte_ms {
            parts.push(format!("slow_first_byte={ms}"));
        }
        if let Some(m) = self.malformed {
            parts.push(format!("malformed={m:?}"));
        }
        if self.no_usage {
            parts.push("no_usage".into());
        }
        if let Some(n) = self.usage_lies {
            parts.push(format!("usage_lies={n}"));
        }
        if self.text.is_some() {
            parts.push("text".into());
        }
        if self.raw_split {
            parts.push("raw_split".into());
        }
        if self.cl_te {
            parts.push("cl_te".into());
        }
        if self.extra_bytes {
            parts.push("extra_bytes".into());
        }
        parts.join(",")
    }
}

fn need<'a>(key: &str, v: Option<&'a str>) -> Result<&'a str, String> {
    v.ok_or_else(|| format!("fault {key:?} needs a value"))
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("fault {key}={v}: not a valid number"))
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`). The result must be UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or("truncated %-escape in text")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape in text")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "text is not UTF-8 after %-decoding".to_string())
}

/// Splits `text` at byte offsets, each moved down to the nearest char boundary; empty pieces are
/// dropped. Offsets past the end are ignored.
pub fn split_text(text: &str, offsets: &[usize]) -> Vec<String> {
    let mut cuts: Vec<usize> = offsets
        .iter()
        .map(|&o| {
            let mut o = o.min(text.len());
            while !text.is_char_boundary(o) {
                o -= 1;
            }
            o
        })
        .collect();
    cuts.push(text.len());
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        if c > start {
            out.push(text[start..c].to_string());
            start = c;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_knob() {
        let f = FaultSpec::parse(
            "status=429,retry_after=3,refuse,reset_after=2,close_after=4,chunked_end,\
             stall_after=1:250,slow_first_byte=100,malformed=cr_only,no_usage,usage_lies=7,\
             text=a%2Cb%C3%A9,chunks=1:3,raw_split,cl_te,extra_bytes,unhealthy",
        );
        let f = f.unwrap();
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after_s, Some(3));
        assert_eq!(f.stall_after, Some((1, 250)));
        assert_eq!(f.text.as_deref(), Some("a,bé"));
        assert_eq!(f.chunks, vec![1, 3]);
        assert!(f.refuse && f.chunked_end && f.raw_split && f.cl_te && f.extra_bytes);
        assert!(f.unhealthy && f.no_usage);
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        assert!(FaultSpec::parse("bogus").is_err());
        assert!(FaultSpec::parse("status=abc").is_err());
        assert!(FaultSpec::parse("stall_after=3").is_err());
        assert!(FaultSpec::parse("malformed=bom").is_err());
        assert!(FaultSpec::parse("").unwrap().is_empty());
    }

    #[test]
    fn split_text_respects_char_boundaries() {
        // "é" is 2 bytes at offsets 1..3; a cut at 2 moves down to 1.
        assert_eq!(split_text("aéb", &[2]), vec!["a", "éb"]);
        assert_eq!(split_text("abcd", &[1, 3, 9]), vec!["a", "bc", "d"]);
    }
}
