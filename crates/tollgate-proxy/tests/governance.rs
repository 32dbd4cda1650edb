//! Governance end to end: API keys (each auth outcome, byte-identical refusals, model
//! permissions), IP rules decided before the body is read, each limit kind through the real
//! dataplane (429 + Retry-After + OpenAI error body), a barrier-synchronised burst against a small
//! token budget, stream cuts, the usage ledger, and the metrics. Every key used here is a canary:
//! each test checks that no response, metric or log line it produced contains one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use tollgate_simfleet::Fleet;

/// A gateway with `[auth]` on the keys file plus `extra`, and a second model `other`.
fn gateway(keys: &Keys, fleet: Fleet, extra: &str) -> Env {
    gateway_log(keys, fleet, extra, None)
}

fn gateway_log(keys: &Keys, fleet: Fleet, extra: &str, log: Option<&Path>) -> Env {
    let mut text = config_for(
        &fleet,
        &format!("[auth]\nkeys_file = \"{}\"\n{extra}", keys.file.display()),
    );
    text.push_str("[[models]]\nname = \"other\"\nbackends = [\"a\"]\n");
    if let Some(l) = log {
        text = text.replacen(
            "access_log = \"off\"",
            &format!("access_log = \"{}\"", l.display()),
            1,
        );
    }
    start_with(fleet, text)
}

#[test]
fn each_auth_outcome_has_its_status_and_refusals_are_byte_identical() {
    let keys = Keys::new("auth");
    keys.consumer("alice", "acme");
    keys.consumer("bob", "beta");
    let (_, good) = keys.key("alice", &["m"]);
    let (revoked_id, revoked) = keys.key("alice", &["*"]);
    tollgate_auth::set_key_enabled(&keys.file, &revoked_id, false).unwrap();
    let expired = keys.key_expiring("bob", "2020-01-01T00:00:00Z");
    let env = gateway(&keys, fleet_one(None, 4), "");
    let body = chat(false, 4);

    // Valid, both header forms.
    assert_eq!(call(&env, &body, &bearer(&good)).status, 200);
    assert_eq!(
        call(&env, &body, &format!("x-api-key: {good}\r\n")).status,
        200
    );
    assert_eq!(
        call(&env, &body, &format!("Authorization: bearer {good}\r\n")).status,
        200
    );
    let backend_hits = records(&env, 3).len();

    // Refused without saying why: missing, malformed, wrong secret, wrong secret sharing the
    // id, hostile values, revoked. All byte-identical, all 401.
    let wrong_secret = format!("{}x", &good[..good.len() - 1]);
    let hostile = [
        String::new(),
        "authorization: Bearer\r\n".to_string(),
        "authorization: Basic dXNlcjpwYXNz\r\n".to_string(),
        bearer("tgk_000000000000_nope"),
        bearer(&wrong_secret),
        bearer("' OR '1'='1"),
        bearer(&"A".repeat(4000)),
        bearer(&format!("{good}%00")),
        format!("{}{}", bearer(&good), bearer(&good)),
        format!("{}x-api-key: {revoked}\r\n", bearer(&good)),
        bearer(&revoked),
    ];
    let mut bodies = Vec::new();
    for h in &hostile {
        let r = call(&env, &body, h);
        assert_eq!(r.status, 401, "{h:?}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_api_key");
        bodies.push(r.body.clone());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "refusal bodies differ"
    );

    // Expired: its own message.
    let r = call(&env, &body, &bearer(&expired));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "expired_api_key");

    // Model the key may not use: 403; not in its model list; not gettable.
    let r = call(
        &env,
        &chat(false, 4).replace("\"m\"", "\"other\""),
        &bearer(&good),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "model_not_allowed");
    let list = raw(
        env.addr,
        format!(
            "GET /v1/models HTTP/1.1\r\nhost: t\r\n{}\r\n",
            bearer(&good)
        )
        .as_bytes(),
    )
    .unwrap();
    let ids: Vec<String> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["m".to_string()]);
    let r = raw(env.addr, b"GET /v1/models HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
    assert_eq!(r.status, 401);
    // /health needs no key.
    let r = raw(env.addr, b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);

    // None of the refused requests reached the backend.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(env.fleet.records().len(), backend_hits);

    let m = metrics(&env);
    assert!(
        m.contains("tollgate_requests_denied_total{reason=\"missing_key\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_requests_denied_total{reason=\"revoked_key\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_requests_denied_total{reason=\"expired_key\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_requests_denied_total{reason=\"model_not_allowed\"} 1"),
        "{m}"
    );
    let texts: Vec<String> = bodies
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .chain([m, list.text()])
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_no_leak(&[&good, &revoked, &expired], &texts);
}

#[test]
fn a_refusal_before_the_body_costs_no_body_read_and_closes_the_connection() {
    let keys = Keys::new("early");
    keys.consumer("alice", "acme");
    let env = gateway(&keys, fleet_one(None, 4), "");
    // Head announces a 1 MB body that never comes: the 401 arrives at once, not after the
    // body timeout, and the connection closes (the unread body must not be parsed as a request).
    let mut s = connect(env.addr);
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n")
        .unwrap();
    let t = std::time::Instant::now();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 401);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(r.closed || server_closed(&mut s));
}

#[test]
fn ip_rules_global_and_per_consumer_decide_before_the_body() {
    // Global deny of loopback: 403 for everyone, before auth.
    let keys = Keys::new("ip1");
    keys.consumer("alice", "acme");
    let (_, good) = keys.key("alice", &["*"]);
    let env = gateway(
        &keys,
        fleet_one(None, 4),
        "allow_ips = [\"127.0.0.0/8\", \"::1\"]\ndeny_ips = [\"127.0.0.1/32\"]\n",
    );
    let r = call(&env, &chat(false, 4), &bearer(&good));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "ip_not_allowed");
    let mut s = connect(env.addr);
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: 500000\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 403);
    drop(env);

    // Consumer rule: alice may only call from 10.0.0.0/8, bob from anywhere.
    let keys = Keys::new("ip2");
    keys.consumer("alice", "acme");
    keys.consumer("bob", "acme");
    let text = std::fs::read_to_string(&keys.file).unwrap();
    let text = text.replacen(
        "name = \"alice\"",
        "name = \"alice\"\nallow_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
        1,
    );
    std::fs::write(&keys.file, text).unwrap();
    let (_, a) = keys.key("alice", &["*"]);
    let (_, b) = keys.key("bob", &["*"]);
    let env = gateway(&keys, fleet_one(None, 4), "");
    assert_eq!(call(&env, &chat(false, 4), &bearer(&a)).status, 403);
    assert_eq!(call(&env, &chat(false, 4), &bearer(&b)).status, 200);
    let m = metrics(&env);
    assert!(
        m.contains("tollgate_requests_denied_total{reason=\"ip_denied\"} 1"),
        "{m}"
    );
}

#[test]
fn requests_per_window_answer_429_with_retry_after_and_an_openai_body() {
    let keys = Keys::new("rpm");
    keys.consumer("alice", "acme");
    keys.consumer("bob", "acme");
    let (_, a) = keys.key("alice", &["*"]);
    let (_, b) = keys.key("bob", &["*"]);
    let env = gateway(
        &keys,
        fleet_one(None, 4),
        "[[quota.limits]]\nname = \"rpm\"\nkind = \"requests\"\nper = [\"consumer\"]\nlimit = 3\nwindow = \"1h\"\n",
    );
    for _ in 0..3 {
        assert_eq!(call(&env, &chat(false, 4), &bearer(&a)).status, 200);
    }
    let r = call(&env, &chat(false, 4), &bearer(&a));
    assert_eq!(r.status, 429, "{}", r.text());
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&ra), "{ra}");
    let j = r.json();
    assert_eq!(j["error"]["code"], "rate_limit_exceeded");
    assert_eq!(j["error"]["type"], "rate_limit_error");
    // Changing client headers does not dodge it; another consumer has its own budget.
    let r = call(
        &env,
        &chat(false, 4),
        &format!(
            "{}x-forwarded-for: 10.1.2.3\r\nuser-agent: other\r\n",
            bearer(&a)
        ),
    );
    assert_eq!(r.status, 429);
    assert_eq!(call(&env, &chat(false, 4), &bearer(&b)).status, 200);
    let m = metrics(&env);
    assert!(
        m.contains("tollgate_requests_throttled_total{limit=\"rpm\",reason=\"requests\"} 2"),
        "{m}"
    );
}

#[test]
fn concurrency_limit_holds_slots_until_the_response_ends() {
    let keys = Keys::new("conc");
    keys.consumer("alice", "acme");
    let (_, a) = keys.key("alice", &["*"]);
    let env = gateway(
        &keys,
        fleet_one(Some("slow_first_byte=400"), 4),
        "[[quota.limits]]\nname = \"two-at-once\"\nkind = \"concurrency\"\nper = [\"key\"]\nlimit = 2\n",
    );
    let addr = env.addr;
    let a2 = a.clone();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let h = bearer(&a2);
            std::thread::spawn(move || {
                raw(addr, &post_req("/v1/chat/completions", &chat(false, 4), &h))
                    .unwrap()
                    .status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let r = call(&env, &chat(false, 4), &bearer(&a));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "concurrency_limit_exceeded");
    for h in slow {
        assert_eq!(h.join().unwrap(), 200);
    }
    // Slots came back.
    assert_eq!(call(&env, &chat(false, 4), &bearer(&a)).status, 200);
}

#[test]
fn barrier_burst_against_a_small_token_budget_admits_no_more_than_it_allows() {
    let keys = Keys::new("burst");
    keys.consumer("alice", "acme");
    let (_, a) = keys.key("alice", &["*"]);
    let budget = 1000u64;
    let env = gateway(
        &keys,
        // Backends answer slowly, so every admitted request is still in flight when the last
        // of the burst arrives: nothing is refunded early.
        fleet_one(Some("slow_first_byte=300"), 4),
        &format!(
            "[[quota.limits]]\nname = \"tpm\"\nkind = \"tokens\"\ntokens = \"total\"\nper = [\"tenant\"]\nlimit = {budget}\nwindow = \"1h\"\n"
        ),
    );
    let n = 48;
    let barrier = Arc::new(Barrier::new(n));
    let addr = env.addr;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            let h = bearer(&a);
            std::thread::spawn(move || {
                let req = post_req("/v1/chat/completions", &chat(false, 100), &h);
                let mut s = connect(addr);
                b.wait();
                s.write_all(&req).unwrap();
                read_response(&mut s).unwrap()
            })
        })
        .collect();
    let resps: Vec<Resp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = resps.iter().filter(|r| r.status == 200).count() as u64;
    let per = CHAT_PROMPT_TOKENS + 100;
    assert!(ok <= budget / per, "admitted {ok} > {}", budget / per);
    assert!(ok >= 1);
    for r in resps.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429);
        assert!(r.header("retry-after").is_some());
        assert_eq!(r.json()["error"]["code"], "token_limit_exceeded");
    }
    // After settlement the spend is what the backend reported, within the budget, and the
    // reservations are gone.
    let m = metrics(&env);
    let val = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim().parse::<f64>().unwrap() as u64)
            })
            .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
    };
    let reserved = val("tollgate_quota_reserved_tokens_total ");
    let settled = val("tollgate_quota_settled_tokens_total ");
    assert_eq!(reserved, ok * per);
    assert!(
        settled <= budget && settled < reserved,
        "{settled} {reserved}"
    );
    assert_eq!(val("tollgate_quota_outstanding_tokens "), 0);
}

#[test]
fn a_stream_running_past_a_cut_limit_ends_with_an_error_event() {
    let keys = Keys::new("cut");
    keys.consumer("alice", "acme");
    let (_, a) = keys.key("alice", &["*"]);
    // The backend streams 40 tokens whatever max_tokens says; the budget has 10 completion
    // tokens and the rule cuts.
    let env = gateway(
        &keys,
        fleet_one(None, 40),
        "[[quota.limits]]\nname = \"out\"\nkind = \"tokens\"\ntokens = \"completion\"\nlimit = 10\nwindow = \"1h\"\nstream_overrun = \"cut\"\n",
    );
    let r = call(&env, &chat(true, 4), &bearer(&a));
    assert_eq!(r.status, 200);
    let lines = data_lines(&r.body);
    let last = lines.last().unwrap();
    assert!(last.contains("token_limit_exceeded"), "{lines:?}");
    assert!(!lines.iter().any(|l| l == "[DONE]"));
    let content = lines.len() - 1;
    assert!((4..=10).contains(&content), "{content} chunks: {lines:?}");
    let m = metrics(&env);
    assert!(m.contains("tollgate_quota_stream_cuts_total 1"), "{m}");
}

fn ledger_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for l in text.lines().filter(|l| !l.is_empty()) {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

#[test]
fn the_ledger_and_metrics_bill_each_request_to_its_tenant_and_key() {
    let keys = Keys::new("ledger");
    keys.consumer("alice", "acme");
    keys.consumer("bob", "beta");
    let (aid, a) = keys.key("alice", &["*"]);
    let (_, b) = keys.key("bob", &["*"]);
    let ledger = keys.dir.join("ledger");
    let log = keys.dir.join("access.log");
    let env = gateway_log(
        &keys,
        fleet_one(None, 4),
        &format!(
            "[ledger]\ndir = \"{}\"\ncommit_interval_ms = 10\n[[quota.limits]]\nname = \"t\"\nkind = \"tokens\"\nlimit = 100000\nwindow = \"1d\"\ntimezone = \"Europe/Berlin\"\n",
            ledger.display()
        ),
        Some(&log),
    );
    let mut ids = Vec::new();
    for (k, n) in [(&a, 3), (&b, 1)] {
        for _ in 0..n {
            let r = call(&env, &chat(n == 3, 4), &bearer(k));
            assert_eq!(r.status, 200);
            ids.push(r.header("x-request-id").unwrap().to_string());
        }
    }
    assert_eq!(call(&env, "{}", "").status, 401);
    std::thread::sleep(Duration::from_millis(200));
    let rows = ledger_lines(&ledger);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for id in &ids {
        assert_eq!(
            rows.iter()
                .filter(|r| r["request_id"] == *id.as_str())
                .count(),
            1
        );
    }
    let alice: Vec<_> = rows.iter().filter(|r| r["tenant"] == "acme").collect();
    assert_eq!(alice.len(), 3);
    assert!(
        alice
            .iter()
            .all(|r| r["key_id"] == aid.as_str() && r["consumer"] == "alice")
    );
    assert!(
        alice
            .iter()
            .all(|r| r["completion_tokens"].as_u64().unwrap() > 0)
    );
    assert!(
        alice
            .iter()
            .all(|r| r["reserved_tokens"].as_u64().unwrap() > 0)
    );
    let m = metrics(&env);
    assert!(
        m.contains("gen_ai_client_token_usage_total{tenant=\"acme\",gen_ai_request_model=\"m\",gen_ai_token_type=\"output\"}"),
        "{m}"
    );
    let all_ledger: String = std::fs::read_dir(&ledger)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    drop(env); // flush the access log
    let access = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(access.contains(&aid), "the access log names the key id");
    assert_no_leak(&[&a, &b], &[&all_ledger, &m, &access]);
}
