//! Routing end to end through the gateway and the simulated fleet: route rules (header,
//! context length), model rewrite, backup-tier failover with no client-visible error, passive
//! ejection and recovery, active probes, prefix affinity, `/admin/backends` and the metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

/// `[[backends]]` for every fleet backend (MindIE with its management/metrics listeners).
fn backends(fleet: &tollgate_simfleet::Fleet) -> String {
    let mut c = String::new();
    for b in fleet.backends() {
        c.push_str(&format!(
            "[[backends]]\nname = \"{}\"\nurl = \"http://{}\"\nkind = \"{}\"\n",
            b.name,
            b.api_addr,
            b.personality.as_str()
        ));
        if let Some(m) = b.management_addr {
            c.push_str(&format!("management_url = \"http://{m}\"\n"));
        }
        if let Some(m) = b.metrics_addr {
            c.push_str(&format!("metrics_url = \"http://{m}\"\n"));
        }
    }
    c
}

fn gateway(fleet: tollgate_simfleet::Fleet, body: &str) -> Env {
    let text = format!(
        "workers = 2\n[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n{body}\n{}",
        backends(&fleet)
    );
    start_with(fleet, text)
}

fn admin_get(env: &Env, path: &str) -> serde_json::Value {
    let r = raw(
        env.admin,
        format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn chat_body(model: &str, system: &str, user: &str) -> String {
    serde_json::json!({"model": model, "max_tokens": 2, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": user}]})
    .to_string()
}

fn backend_of(env: &Env, n_before: usize) -> String {
    let recs = records(env, n_before + 1);
    recs[n_before].backend.clone()
}

#[test]
fn header_and_context_length_routes_with_model_rewrite() {
    let fleet = fleet_of(&[
        ("std", Personality::Vllm, Mode::Instant),
        ("gold", Personality::Sglang, Mode::Instant),
        ("long", Personality::Vllm, Mode::Instant),
    ]);
    let env = gateway(
        fleet,
        r#"
[[pools]]
name = "std"
backends = ["std"]
[[pools]]
name = "gold"
backends = ["gold"]
model = "meta-llama/Llama-3.1-70B-Instruct"
[[pools]]
name = "long"
backends = ["long"]
[[models]]
name = "chat"
pool = "std"
[[models.routes]]
name = "gold-tier"
pool = "gold"
when = { header = { name = "x-tier", equals = "gold" } }
[[models.routes]]
name = "long-context"
pool = "long"
when = { context_tokens = { min = 1000 } }
"#,
    );
    let short = chat_body("chat", "be brief", "hello");
    let long = chat_body(
        "chat",
        "be brief",
        &"lorem ipsum dolor sit amet ".repeat(300),
    );
    let r = post(env.addr, "/v1/chat/completions", &short);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(backend_of(&env, 0), "std");
    let req = post_req("/v1/chat/completions", &short, "x-tier: gold\r\n");
    let r = raw(env.addr, &req).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let recs = records(&env, 2);
    assert_eq!(recs[1].backend, "gold");
    // Only the model string changed on the way to the gold pool.
    let sent: serde_json::Value = serde_json::from_str(&recs[1].body).unwrap();
    assert_eq!(sent["model"], "meta-llama/Llama-3.1-70B-Instruct");
    assert_eq!(
        recs[1].body,
        short.replace("\"chat\"", "\"meta-llama/Llama-3.1-70B-Instruct\"")
    );
    assert!(
        !recs[1].headers.iter().any(|(k, _)| k == "x-tier"),
        "client headers are not forwarded"
    );
    let r = post(env.addr, "/v1/chat/completions", &long);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(backend_of(&env, 2), "long");
    // Header beats length (rule order).
    let r = raw(
        env.addr,
        &post_req("/v1/chat/completions", &long, "x-tier: gold\r\n"),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(backend_of(&env, 3), "gold");
    let m = metrics(&env);
    for (pool, backend) in [("std", "std"), ("gold", "gold"), ("long", "long")] {
        assert!(
            m.contains(&format!("tollgate_route_picks_total{{pool=\"{pool}\",backend=\"{backend}\",policy=\"prefix_affinity\"}}")),
            "{m}"
        );
    }
}

#[test]
fn backup_tier_takes_over_with_no_client_visible_error() {
    let fleet = fleet_of(&[
        ("p1", Personality::Vllm, Mode::Instant),
        ("p2", Personality::Sglang, Mode::Instant),
        ("bk", Personality::Mindie, Mode::Instant),
    ]);
    let env = gateway(
        fleet,
        r#"
[upstream]
retries = 2
[routing]
probe_interval_ms = 100
probe_failures_down = 1
scrape_interval_ms = 50
[[pools]]
name = "main"
backends = ["p1", "p2"]
backup = ["bk"]
policy = "round_robin"
[[models]]
name = "m"
pool = "main"
"#,
    );
    for _ in 0..4 {
        let r = post(env.addr, "/v1/chat/completions", &chat(false, 2));
        assert_eq!(r.status, 200);
    }
    assert!(
        records(&env, 4).iter().all(|r| r.backend != "bk"),
        "primary tier serves while healthy"
    );
    // The whole primary tier goes away: every request still succeeds — first through retries
    // (connect refused before any byte), then straight to the backup once probes see it.
    env.fleet.set_refusing("p1", true);
    env.fleet.set_refusing("p2", true);
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_millis(800) {
        let r = post(env.addr, "/v1/chat/completions", &chat(true, 2));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            data_lines(&r.body).last().map(String::as_str),
            Some("[DONE]")
        );
        n += 1;
    }
    assert!(n >= 5);
    let adm = admin_get(&env, "/admin/backends");
    let by_name: HashMap<&str, &serde_json::Value> = adm["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b))
        .collect();
    assert_eq!(by_name["p1"]["health"]["up"], false, "{adm:#}");
    assert_eq!(by_name["p1"]["health"]["probe_ok"], false);
    assert_eq!(by_name["bk"]["health"]["up"], true);
    let m = metrics(&env);
    assert!(m.contains("tollgate_route_tier_fallbacks_total "), "{m}");
    assert!(
        !m.contains("tollgate_route_tier_fallbacks_total 0\n"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_backend_up{backend=\"p1\",kind=\"vllm\"} 0"),
        "{m}"
    );
    // The primary tier comes back: probes see it and traffic returns to it.
    env.fleet.set_refusing("p1", false);
    env.fleet.set_refusing("p2", false);
    std::thread::sleep(Duration::from_millis(400));
    let before = env.fleet.records().len();
    for _ in 0..4 {
        assert_eq!(
            post(env.addr, "/v1/chat/completions", &chat(false, 2)).status,
            200
        );
    }
    let recs = records(&env, before + 4);
    assert!(
        recs[before..].iter().all(|r| r.backend != "bk"),
        "{:?}",
        &recs[before..]
    );
}

#[test]
fn consecutive_failures_eject_at_most_half_a_pool_and_it_recovers() {
    let fleet = fleet_of(&[
        ("a", Personality::Vllm, Mode::Instant),
        ("b", Personality::Vllm, Mode::Instant),
    ]);
    let env = gateway(
        fleet,
        r#"
[upstream]
retries = 0
[routing]
eject_consecutive_failures = 3
eject_base_ms = 600
[[pools]]
name = "main"
backends = ["a", "b"]
policy = "round_robin"
[[models]]
name = "m"
pool = "main"
"#,
    );
    env.fleet.set_fault("a", Some("status=500"), None).unwrap();
    env.fleet.set_fault("b", Some("status=500"), None).unwrap();
    // Both fail: only one of the two may be ejected (never more than half the pool).
    for _ in 0..12 {
        let _ = post(env.addr, "/v1/chat/completions", &chat(false, 2));
    }
    let adm = admin_get(&env, "/admin/backends");
    let ejected: Vec<bool> = adm["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["health"]["ejected"].as_bool().unwrap())
        .collect();
    assert_eq!(ejected.iter().filter(|&&e| e).count(), 1, "{adm:#}");
    let which = if ejected[0] { "a" } else { "b" };
    let other = if which == "a" { "b" } else { "a" };
    // The healthy one recovers; the ejected one gets nothing until its ejection ends.
    env.fleet.set_fault(other, None, None).unwrap();
    env.fleet.set_fault(which, None, None).unwrap();
    let before = env.fleet.records().len();
    for _ in 0..6 {
        assert_eq!(
            post(env.addr, "/v1/chat/completions", &chat(false, 2)).status,
            200
        );
    }
    let recs = records(&env, before + 6);
    assert!(
        recs[before..].iter().all(|r| r.backend == other),
        "ejected backend got traffic"
    );
    std::thread::sleep(Duration::from_millis(700));
    let before = env.fleet.records().len();
    for _ in 0..6 {
        assert_eq!(
            post(env.addr, "/v1/chat/completions", &chat(false, 2)).status,
            200
        );
    }
    let recs = records(&env, before + 6);
    assert!(
        recs[before..].iter().any(|r| r.backend == which),
        "did not come back"
    );
    let m = metrics(&env);
    assert!(m.contains("tollgate_backend_ejections_total 1"), "{m}");
}

#[test]
fn prefix_affinity_keeps_a_conversation_on_one_backend_and_spreads_others() {
    let fleet = fleet_of(&[
        ("s0", Personality::Sglang, Mode::Instant),
        ("s1", Personality::Sglang, Mode::Instant),
        ("s2", Personality::Sglang, Mode::Instant),
        ("s3", Personality::Sglang, Mode::Instant),
    ]);
    let env = gateway(
        fleet,
        "[[pools]]\nname = \"main\"\nbackends = [\"s0\", \"s1\", \"s2\", \"s3\"]\npolicy = \"prefix_affinity\"\n[[models]]\nname = \"m\"\npool = \"main\"\n",
    );
    let mut seen: HashMap<usize, Vec<String>> = HashMap::new();
    let mut n = 0;
    for round in 0..5 {
        for g in 0..8 {
            let sys = format!("You are assistant number {g} of the ACME support desk. ").repeat(40);
            let body = chat_body("m", &sys, &format!("question {round}"));
            assert_eq!(post(env.addr, "/v1/chat/completions", &body).status, 200);
            seen.entry(g).or_default().push(backend_of(&env, n));
            n += 1;
        }
    }
    for (g, bs) in &seen {
        assert!(bs.iter().all(|b| b == &bs[0]), "group {g} moved: {bs:?}");
    }
    let distinct: std::collections::HashSet<&String> = seen.values().map(|v| &v[0]).collect();
    assert!(
        distinct.len() >= 3,
        "8 prefixes on {} backends",
        distinct.len()
    );
    let m = metrics(&env);
    assert!(m.contains("tollgate_route_prefix_matched_total 32"), "{m}");
}

#[test]
fn admin_backends_reports_scraped_load_per_kind_and_staleness() {
    let fleet = fleet_of(&[
        ("v", Personality::Vllm, Mode::Instant),
        ("s", Personality::Sglang, Mode::Instant),
        ("i", Personality::Mindie, Mode::Instant),
    ]);
    let env = gateway(
        fleet,
        "[routing]\nscrape_interval_ms = 50\nstale_after_ms = 300\n[[models]]\nname = \"m\"\nbackends = [\"v\", \"s\", \"i\"]\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    let adm = admin_get(&env, "/admin/backends");
    for b in adm["backends"].as_array().unwrap() {
        let l = &b["load"];
        assert_eq!(l["stale"], false, "{b:#}");
        assert!(l["age_ms"].as_u64().unwrap() < 300, "{b:#}");
        assert!(l["queue"].is_number() && l["kv_usage"].is_number(), "{b:#}");
        assert!(l["kv_capacity_tokens"].as_f64().unwrap() > 0.0, "{b:#}");
        assert_eq!(b["health"]["probe_ok"], true, "{b:#}");
    }
    assert_eq!(adm["pools"][0]["name"], "model:m");
    assert_eq!(adm["pools"][0]["policy"], "prefix_affinity");
    // A backend whose metrics stop answering goes stale: unknown, with the reason.
    env.fleet.set_refusing("v", true);
    std::thread::sleep(Duration::from_millis(600));
    let adm = admin_get(&env, "/admin/backends");
    let v = &adm["backends"][0];
    assert_eq!(v["load"]["stale"], true, "{v:#}");
    assert!(
        v["load"]["scrape_error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v:#}"
    );
    let m = metrics(&env);
    assert!(
        m.contains("tollgate_load_snapshot_age_seconds{backend=\"s\",kind=\"sglang\"} 0."),
        "{m}"
    );
}
