//! Request/response JSON scanning and the wire-level stream property: an OpenAI chat stream
//! whose text is split into delta frames at any character boundary, serialised (sometimes with
//! `\uXXXX` escapes, as Python's `json.dumps` does) and then cut into TCP reads at any byte
//! offset, reaches the client with exactly the text that masking the whole answer gives.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use tollgate_scan::json::{ChunkOut, StreamScanner, scan_request, scan_response};
use tollgate_scan::{Direction, RuleSet, Scanner};
use tollgate_sse::Decoder;

const RULES: &str = r#"
[[rule]]
id = "email"
pattern = '''[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,120}\.[A-Za-z]{2,24}'''
action = "mask"
replacement = "[EMAIL]"

[[rule]]
id = "cn-mobile"
pattern = '''\b1[3-9]\d{9}\b'''
action = "mask"

[[rule]]
id = "secret-word"
words = ["绝密", "nightingale"]
case_insensitive = true
action = "mask"
replacement = "***"

[[rule]]
id = "pem"
pattern = '''-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----'''
action = "block"
"#;

fn scanner() -> Scanner {
    let rules = RuleSet::compile(&[(Path::new("t.toml"), RULES)], 256).unwrap();
    Scanner::new(Arc::new(rules)).unwrap()
}

#[test]
fn request_fields_are_masked_and_other_bytes_kept() {
    let mut sc = scanner();
    let body = br#"{"model":"m",  "messages":[{"role":"system","content":"be nice"},{"role":"user","name":"alice\u0040example.com","content":[{"type":"text","text":"call 13800138000"},{"type":"image_url","image_url":{"url":"http://x/a@b.cc"}}]},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"to\":\"bob@example.org\"}"}}]}],"temperature":0.70}"#;
    let r = scan_request(&mut sc, body).unwrap();
    let out = String::from_utf8(r.body.unwrap()).unwrap();
    assert_eq!(
        out,
        r#"{"model":"m",  "messages":[{"role":"system","content":"be nice"},{"role":"user","name":"[EMAIL]","content":[{"type":"text","text":"call [CN-MOBILE]"},{"type":"image_url","image_url":{"url":"http://x/a@b.cc"}}]},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"to\":\"[EMAIL]\"}"}}]}],"temperature":0.70}"#
    );
    assert_eq!(r.hits.len(), 3);
    assert!(r.blocked.is_none());
}

#[test]
fn request_prompt_lists_and_clean_bodies() {
    let mut sc = scanner();
    let r = scan_request(
        &mut sc,
        r#"{"model":"m","prompt":["hi \u7edd\u5bc6",[1,2,3],"ok"]}"#.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        r.body.unwrap(),
        br#"{"model":"m","prompt":["hi ***",[1,2,3],"ok"]}"#
    );
    let r = scan_request(
        &mut sc,
        br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#,
    )
    .unwrap();
    assert!(r.body.is_none() && r.hits.is_empty());
    let r = scan_request(&mut sc, br#"{"model":"m","logprobs":true,"messages":[]}"#).unwrap();
    assert!(r.wants_logprobs);
    assert!(scan_request(&mut sc, br#"{"model":"m","messages":"x"}"#).is_err());
}

#[test]
fn request_block_names_rule_without_text() {
    let mut sc = scanner();
    let r = scan_request(
        &mut sc,
        br#"{"model":"m","messages":[{"role":"user","content":"-----BEGIN RSA PRIVATE KEY-----\nMII"}]}"#,
    )
    .unwrap();
    let rule = r.blocked.unwrap();
    assert_eq!(sc.rules().rule(rule).id, "pem");
}

#[test]
fn response_body_masked() {
    let mut sc = scanner();
    let r = scan_response(
        &mut sc,
        br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"write to alice@example.com","reasoning_content":"NIGHTINGALE"}},{"index":1,"text":"13800138000"}],"usage":{"prompt_tokens":1}}"#,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(r.body.unwrap()).unwrap(),
        r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"write to [EMAIL]","reasoning_content":"***"}},{"index":1,"text":"[CN-MOBILE]"}],"usage":{"prompt_tokens":1}}"#
    );
}

/// Serialise a string as JSON, escaping non-ASCII as `\uXXXX` when `ascii` (like json.dumps).
fn json_str(s: &str, ascii: bool) -> String {
    if !ascii {
        return serde_json::to_string(s).unwrap();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Build the SSE body of a 2-choice chat stream: choice 0 gets `text` split at `cuts`,
/// choice 1 gets the same text whole, interleaved.
fn sse_body(text: &str, cuts: &[usize], ascii: bool) -> Vec<u8> {
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let mut pts: Vec<usize> = cuts.iter().map(|c| bounds[c % bounds.len()]).collect();
    pts.extend([0, text.len()]);
    pts.sort_unstable();
    pts.dedup();
    let mut out = Vec::new();
    let head = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":["#;
    out.extend_from_slice(format!("data: {head}{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}}}}]}}\n\n").as_bytes());
    for (k, w) in pts.windows(2).enumerate() {
        let piece = &text[w[0]..w[1]];
        out.extend_from_slice(
            format!("data: {head}{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n", json_str(piece, ascii)).as_bytes(),
        );
        if k == 0 {
            out.extend_from_slice(
                format!("data: {head}{{\"index\":1,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n", json_str(text, ascii)).as_bytes(),
            );
        }
    }
    out.extend_from_slice(
        format!("data: {head}{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n")
            .as_bytes(),
    );
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// Run the body through Decoder + StreamScanner, reading it in pieces cut at `reads`.
/// Returns the concatenated content per choice as the client would see it.
fn client_view(sc: &mut Scanner, body: &[u8], reads: &[usize]) -> (String, String) {
    let mut dec = Decoder::new(1 << 20);
    let mut ss = StreamScanner::new();
    let mut cuts: Vec<usize> = reads.iter().map(|r| r % (body.len() + 1)).collect();
    cuts.extend([0, body.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for w in cuts.windows(2) {
        dec.feed(&body[w[0]..w[1]]);
        while let Some(f) = dec.next_frame().unwrap() {
            let Some(data) = f.data.clone() else { continue };
            if f.is_done() {
                payloads.extend(ss.on_done(sc).unwrap());
                continue;
            }
            match ss.on_chunk(sc, &data) {
                ChunkOut::Unchanged => payloads.push(data.to_vec()),
                ChunkOut::Replace(v) => payloads.extend(v),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let mut c = [String::new(), String::new()];
    for p in payloads {
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        for ch in v["choices"].as_array().unwrap() {
            let i = ch["index"].as_u64().unwrap() as usize;
            if let Some(t) = ch["delta"]["content"].as_str() {
                c[i].push_str(t);
            }
        }
    }
    let [a, b] = c;
    (a, b)
}

fn text_strategy() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("alice@example.com".to_string()),
        Just("13800138000".to_string()),
        Just("１３８００１３８０００".to_string()),
        Just("alice\u{200B}@example.com".to_string()),
        Just("Nightingale".to_string()),
        Just("绝密".to_string()),
        Just("\"quoted\\".to_string()),
        Just("\n".to_string()),
        "[a-z]{1,6}",
        "[0-9 @.]{1,6}",
        "[中文测试é😀]{1,3}",
    ];
    prop::collection::vec(frag, 1..16).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn wire_splits_equal_whole_masking(
        text in text_strategy(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
        reads in prop::collection::vec(any::<usize>(), 0..30),
        ascii in any::<bool>(),
    ) {
        let mut sc = scanner();
        let whole = sc.scan_text(Direction::Response, &text).masked.unwrap_or_else(|| text.clone());
        let body = sse_body(&text, &cuts, ascii);
        let (c0, c1) = client_view(&mut sc, &body, &reads);
        prop_assert_eq!(&c0, &whole);
        prop_assert_eq!(&c1, &whole);
        for canary in ["alice@example.com", "13800138000", "nightingale", "绝密"] {
            prop_assert!(!c0.to_lowercase().contains(canary), "{} leaked", canary);
        }
    }
}

#[test]
fn block_in_stream_and_invalid_chunks() {
    let mut sc = scanner();
    let mut ss = StreamScanner::new();
    let a = br#"{"choices":[{"index":0,"delta":{"content":"key: -----BEGIN RSA PRIV"}}]}"#;
    assert!(matches!(ss.on_chunk(&mut sc, a), ChunkOut::Replace(_)));
    let b = br#"{"choices":[{"index":0,"delta":{"content":"ATE KEY-----\nMII"}}]}"#;
    match ss.on_chunk(&mut sc, b) {
        ChunkOut::Blocked(r) => assert_eq!(sc.rules().rule(r).id, "pem"),
        other => panic!("{other:?}"),
    }
    let mut ss = StreamScanner::new();
    assert!(matches!(
        ss.on_chunk(&mut sc, b"{not json"),
        ChunkOut::Invalid(_)
    ));
    // A frame with nothing held or changed is forwarded as is.
    let c = br#"{"choices":[{"index":0,"delta":{"content":"ok. "}}]}"#;
    assert_eq!(ss.on_chunk(&mut sc, c), ChunkOut::Unchanged);
}
