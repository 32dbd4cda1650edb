//! Content scanning end to end: requests masked or blocked before they reach the backend;
//! responses — whole and streamed with chosen chunking from the simulated fleet, including SSE
//! bytes split across TCP writes — masked with zero leaks; metrics, logprobs refusal, reload.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

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
replacement = "1**********"

[[rule]]
id = "pem"
pattern = '''-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----'''
action = "block"

[[rule]]
id = "codename"
words = ["nightingale", "绝密"]
case_insensitive = true
action = "mask"
replacement = "***"

[[rule]]
id = "ipv4"
pattern = '''\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b'''
action = "audit"
"#;

fn rules_file(text: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("tollgate-rules-{}-{n}.toml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn env_with_rules(kind: Personality) -> (Env, std::path::PathBuf) {
    let fleet = fleet_of(&[("a", kind, Mode::Instant)]);
    let rules = rules_file(RULES);
    let text = config_for(
        &fleet,
        &format!("[scan]\nrules = [{:?}]\n", rules.display().to_string()),
    );
    (start_with(fleet, text), rules)
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Concatenated `delta.content` of an SSE body, and whether it ended with [DONE].
fn streamed_content(body: &[u8]) -> (String, bool) {
    let mut s = String::new();
    let mut done = false;
    for d in data_lines(body) {
        if d == "[DONE]" {
            done = true;
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        for c in v["choices"].as_array().into_iter().flatten() {
            if let Some(t) = c["delta"]["content"].as_str() {
                s.push_str(t);
            }
        }
    }
    (s, done)
}

#[test]
fn request_text_is_masked_before_the_backend_and_blocks_never_reach_it() {
    let (env, _r) = env_with_rules(Personality::Vllm);
    let body = r#"{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"mail alice\u0040example.com or call 13800138000"}]}"#;
    let r = post(env.addr, "/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let recs = records(&env, 1);
    assert_eq!(recs.len(), 1);
    let seen = &recs[0].body;
    assert!(seen.contains("mail [EMAIL] or call 1**********"), "{seen}");
    assert!(
        !seen.contains("alice") && !seen.contains("13800138000"),
        "{seen}"
    );

    let body = r#"{"model":"m","messages":[{"role":"user","content":"here: -----BEGIN RSA PRIVATE KEY-----\nMIIE"}]}"#;
    let r = post(env.addr, "/v1/chat/completions", body);
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["error"]["code"], "pem");
    assert_eq!(j["error"]["type"], "invalid_request_error");
    assert!(
        !r.text().contains("BEGIN"),
        "the matched text is never echoed"
    );
    assert_eq!(
        records(&env, 2).len(),
        1,
        "a blocked request never reaches a backend"
    );

    // logprobs would carry unmasked tokens past the response scanner.
    let r = post(
        env.addr,
        "/v1/chat/completions",
        r#"{"model":"m","logprobs":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "logprobs_unsupported");
}

#[test]
fn streamed_answer_is_masked_at_every_split_offset() {
    let (env, _r) = env_with_rules(Personality::Vllm);
    let text =
        "Contact alice@example.com, 绝密 plan Nightingale; tel 13800138000. Host 10.1.2.3 ok";
    let expect = "Contact [EMAIL], *** plan ***; tel 1**********. Host 10.1.2.3 ok";
    let req = chat(true, 64);
    // Every split point of the text into two frames, then three-way splits on a stride.
    let mut cases: Vec<String> = (1..text.len()).map(|k| k.to_string()).collect();
    for a in (1..text.len()).step_by(7) {
        for b in (a + 1..text.len()).step_by(11) {
            cases.push(format!("{a}:{b}"));
        }
    }
    // One frame per byte offset (split_text moves cuts to char boundaries).
    cases.push(
        (1..text.len())
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(":"),
    );
    for chunks in &cases {
        env.fleet
            .set_fault(
                "a",
                Some(&format!("text={},chunks={chunks}", pct(text))),
                Some(1),
            )
            .unwrap();
        let r = post(env.addr, "/v1/chat/completions", &req);
        assert_eq!(r.status, 200);
        let (got, done) = streamed_content(&r.body);
        assert!(done, "chunks={chunks}: no [DONE]");
        assert_eq!(got, expect, "chunks={chunks}");
        let raw = String::from_utf8_lossy(&r.body).to_lowercase();
        for canary in ["alice@example.com", "13800138000", "nightingale", "绝密"] {
            assert!(
                !raw.contains(canary),
                "chunks={chunks}: {canary} on the wire"
            );
        }
    }
}

#[test]
fn sse_bytes_split_across_tcp_writes_are_masked() {
    let (env, _r) = env_with_rules(Personality::Sglang);
    let text = "reach me at bob.smith@mail.example.org — 绝密";
    let expect = "reach me at [EMAIL] — ***";
    for step in [1usize, 3, 7, 17, 50] {
        // raw_split: the SSE *bytes* are cut at these offsets into separate TCP writes, so cuts
        // fall inside UTF-8 sequences, JSON escapes and the `data:` prefix.
        let offs: Vec<String> = (1..400).step_by(step).map(|k| k.to_string()).collect();
        env.fleet
            .set_fault(
                "a",
                Some(&format!(
                    "text={},chunks={},raw_split",
                    pct(text),
                    offs.join(":")
                )),
                Some(1),
            )
            .unwrap();
        let r = post(env.addr, "/v1/chat/completions", &chat(true, 64));
        assert_eq!(r.status, 200);
        let (got, done) = streamed_content(&r.body);
        assert!(done);
        assert_eq!(got, expect, "step {step}");
    }
}

#[test]
fn whole_response_masked_stream_block_ends_with_error_event_and_metrics_count() {
    let (env, _r) = env_with_rules(Personality::Vllm);
    env.fleet
        .set_fault(
            "a",
            Some(&format!("text={}", pct("write to alice@example.com"))),
            Some(1),
        )
        .unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(false, 8));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "write to [EMAIL]"
    );

    let secret = "sure: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk";
    env.fleet
        .set_fault(
            "a",
            Some(&format!("text={},chunks=4:12:20:30", pct(secret))),
            Some(1),
        )
        .unwrap();
    let r = post(env.addr, "/v1/chat/completions", &chat(true, 64));
    assert_eq!(r.status, 200, "the head went out with the first frame");
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("\"code\":\"pem\""), "{body}");
    assert!(!body.contains("[DONE]"));
    assert!(!body.contains("BEGIN"), "{body}");

    let m = metrics(&env);
    assert!(
        m.contains(
            r#"tollgate_scan_hits_total{rule="email",action="mask",direction="response"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_scan_hits_total{rule="pem",action="block",direction="response"} 1"#),
        "{m}"
    );
}

#[test]
fn reload_swaps_rules_and_a_bad_rule_file_keeps_the_old_ones() {
    let (env, rules) = env_with_rules(Personality::Vllm);
    let send = || {
        post(
            env.addr,
            "/v1/chat/completions",
            r#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"nightingale"}]}"#,
        )
    };
    assert_eq!(send().status, 200);
    assert!(records(&env, 1)[0].body.contains("***"));
    // Broken rule file: reload refused, old rules stay.
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"x\"\npattern = '''a+'''\naction = \"mask\"\n",
    )
    .unwrap();
    let err = env.gw().reload().unwrap_err();
    assert!(
        err.contains("rule 'x'") && err.contains("maximum length"),
        "{err}"
    );
    assert_eq!(send().status, 200);
    assert!(records(&env, 2)[1].body.contains("***"));
    // Good new rules: now the word blocks.
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"bird\"\nwords = [\"nightingale\"]\naction = \"block\"\n",
    )
    .unwrap();
    env.gw().reload().unwrap();
    let r = send();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bird");
}
