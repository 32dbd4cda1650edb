//! Frames the gateway writes itself: data, `[DONE]` and error events.
//!
//! Used when a chunk was rewritten (redaction, synthesized usage) or when the gateway must end a
//! stream with an error it can still report in-band (headers already sent). Output is always a
//! complete frame ending in a blank line, with LF line endings.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// `data: <payload>\n\n`. A payload containing CR or LF (never the case for compact JSON) is
/// written as several `data:` lines so that a decoder yields exactly `payload` back, with line
/// breaks normalized to `\n`.
pub fn data_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 8);
    put_data_lines(&mut out, payload);
    out.put_u8(b'\n');
    out.freeze()
}

/// `data: [DONE]\n\n`, the OpenAI end-of-stream sentinel.
pub fn done_frame() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// An in-band error event in the OpenAI error shape:
/// `event: error\ndata: {"error":{"message":..,"type":..,"code":..}}\n\n` (`code` is `null`
/// when `None`). Strings are JSON-escaped.
pub fn error_event(message: &str, err_type: &str, code: Option<&str>) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        err_type: &'a str,
        code: Option<&'a str>,
    }
    let body = Body {
        error: Inner {
            message,
            err_type,
            code,
        },
    };
    // Serializing a struct of strings into a Vec cannot fail; keep a valid frame regardless.
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"error":{"message":"internal error","type":"internal_error","code":null}}"#.to_vec()
    });
    let mut out = BytesMut::with_capacity(json.len() + 24);
    out.put_slice(b"event: error\n");
    put_data_lines(&mut out, &json);
    out.put_u8(b'\n');
    out.freeze()
}

/// Write `payload` as one `data:` line per line of it.
fn put_data_lines(out: &mut BytesMut, payload: &[u8]) {
    let mut rest = payload;
    loop {
        out.put_slice(b"data: ");
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                out.put_slice(rest);
                out.put_u8(b'\n');
                return;
            }
            Some(i) => {
                out.put_slice(&rest[..i]);
                out.put_u8(b'\n');
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::decode_chunks;

    #[test]
    fn encoded_frames_exact_bytes() {
        let cases: &[(&str, Bytes, &[u8])] = &[
            ("data", data_frame(br#"{"a":1}"#), b"data: {\"a\":1}\n\n"),
            ("empty data", data_frame(b""), b"data: \n\n"),
            ("multi-line payload", data_frame(b"a\nb\r\nc\rd"), b"data: a\ndata: b\ndata: c\ndata: d\n\n"),
            ("done", done_frame(), b"data: [DONE]\n\n"),
            (
                "error",
                error_event("bad \"quote\"\n", "invalid_request_error", Some("pii")),
                b"event: error\ndata: {\"error\":{\"message\":\"bad \\\"quote\\\"\\n\",\"type\":\"invalid_request_error\",\"code\":\"pii\"}}\n\n",
            ),
            (
                "error null code",
                error_event("x", "t", None),
                b"event: error\ndata: {\"error\":{\"message\":\"x\",\"type\":\"t\",\"code\":null}}\n\n",
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got.as_ref(), *want, "{name}");
        }
    }

    #[test]
    fn encoded_frames_decode_back() {
        let payloads: &[&[u8]] = &[b"x", b"", b"a\nb", b"a\r\nb", b"[DONE]", b"line\r"];
        for payload in payloads {
            let frame = data_frame(payload);
            let out = decode_chunks([frame.as_ref()], 1024);
            let want: Vec<u8> = String::from_utf8_lossy(payload)
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .into_bytes();
            assert_eq!(out.end, Ok(()));
            assert_eq!(out.frames.len(), 1);
            assert_eq!(
                out.frames[0].data.as_deref(),
                Some(want.as_slice()),
                "{payload:?}"
            );
        }
        let err = decode_chunks([error_event("m", "t", None).as_ref()], 1024);
        assert_eq!(err.frames[0].event_str(), Some("error"));
    }
}
