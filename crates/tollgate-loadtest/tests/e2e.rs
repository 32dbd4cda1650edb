//! End-to-end: the driver against an in-process simulated fleet (model mode, SGLang), for a
//! couple of seconds, with metrics scraped from the backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_loadtest::scenario::{self, Overrides};
use tollgate_loadtest::{RunOptions, run_blocking};
use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{BackendConfig, Fleet, FleetConfig, Mode};

fn fleet(n: usize, faults: Option<&str>) -> Fleet {
    let backends = (0..n)
        .map(|i| BackendConfig {
            name: format!("s{i}"),
            personality: Personality::Sglang,
            mode: Mode::Model,
            faults: faults.map(str::to_string),
            ..BackendConfig::default()
        })
        .collect();
    Fleet::start(FleetConfig {
        seed: 1,
        threads: 1,
        backends,
    })
    .unwrap()
}

const W1: &str = r#"
name = "w1-e2e"
seed = 4
model = "llama-3-8b"
duration_s = 2.0
warmup_s = 0.3
timeout_s = 10
[arrival]
kind = "poisson"
rate = 20.0
[workload]
kind = "shared_prefix"
groups = 3
prefix_tokens = 400
users_per_group = 2
question_tokens = 20
output_tokens = 8
[slo]
ttft_ms = 5000
"#;

#[test]
fn a_short_w1_run_against_the_fleet_measures_everything() {
    let f = fleet(2, None);
    let b: Vec<String> = f
        .backends()
        .iter()
        .map(|b| format!("http://{}", b.api_addr))
        .collect();
    let plan = scenario::from_str(W1, &Overrides::default()).unwrap();
    let mut opts = RunOptions::new(&b[0]);
    opts.progress = false;
    opts.backend_metrics = b.iter().map(|u| format!("{u}/metrics")).collect();
    opts.scrape_interval = Some(std::time::Duration::from_millis(200));
    let r = run_blocking(&plan, &opts, 1).unwrap();
    let s = &r.stats;
    assert!(s.requests.measured > 10, "{:?}", s.requests);
    assert_eq!(s.requests.ok, s.requests.measured, "{:?}", s.requests);
    assert_eq!(s.ttft_ms.count, s.requests.ok);
    assert!(s.ttft_ms.p50 > 0.0 && s.ttft_ms.p99 >= s.ttft_ms.p50);
    assert_eq!(s.itl_ms.count, s.requests.ok * 7, "8 tokens → 7 gaps each");
    assert_eq!(s.output_tokens, s.requests.ok * 8);
    assert_eq!(s.usage_mismatch, 0);
    assert_eq!(s.usage_missing, 0);
    assert_eq!(s.prompt_tokens, s.requests.ok * 420);
    let hit = s.prefix_hit.unwrap();
    assert!(hit > 0.5, "3 groups on one backend mostly hit: {hit}");
    assert_eq!(s.goodput.good, s.requests.ok);
    // All traffic went to backend 0 (the target); backend 1 saw none.
    assert_eq!(r.backends.len(), 2);
    assert_eq!(r.backends[0].requests, s.requests.finished as f64);
    assert_eq!(r.backends[1].requests, 0.0);
    assert_eq!(r.backends[0].request_share, 1.0);
    let im = r.imbalance.as_ref().unwrap();
    assert_eq!(im.requests_cv, 1.0);
    assert!(im.load_samples > 0);
    assert!(r.backends[0].prefix_hit.unwrap() > 0.5);
    // The JSON round-trips for `table` (floats to within their last digit).
    let back: tollgate_loadtest::Report =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.stats.requests, r.stats.requests);
    assert_eq!(back.plan, r.plan);
    let table = tollgate_loadtest::report::table(std::slice::from_ref(&r));
    assert_eq!(tollgate_loadtest::report::table(&[back]), table);
    assert!(table.contains("| w1-e2e |"));
}

#[test]
fn a_closed_loop_non_streaming_run_counts_usage_tokens() {
    let f = fleet(1, None);
    let url = format!("http://{}", f.backends()[0].api_addr);
    let text = W1
        .replace(
            "kind = \"poisson\"\nrate = 20.0",
            "kind = \"closed\"\nconcurrency = 4",
        )
        .replace(
            "timeout_s = 10",
            "timeout_s = 10\nstream = false\nmax_requests = 12",
        );
    let plan = scenario::from_str(
        &text,
        &Overrides {
            warmup_s: Some(0.0),
            ..Overrides::default()
        },
    )
    .unwrap();
    let mut opts = RunOptions::new(&url);
    opts.progress = false;
    let r = run_blocking(&plan, &opts, 1).unwrap();
    assert_eq!(r.stats.requests.ok, 12);
    assert_eq!(r.stats.output_tokens, 12 * 8);
    assert_eq!(r.stats.ttft_ms.count, 12, "non-streaming: TTFT = E2E");
    assert_eq!(r.stats.itl_ms.count, 0);
}

#[test]
fn failures_are_counted_by_kind() {
    for (fault, kind) in [
        ("status=503", "http_status"),
        ("close_after=2,chunked_end", "truncated"),
        ("reset_after=1", "truncated"),
    ] {
        let f = fleet(1, Some(fault));
        let url = format!("http://{}", f.backends()[0].api_addr);
        let plan = scenario::from_str(
            W1,
            &Overrides {
                max_requests: Some(5),
                warmup_s: Some(0.0),
                ..Overrides::default()
            },
        )
        .unwrap();
        let mut opts = RunOptions::new(&url);
        opts.progress = false;
        let r = run_blocking(&plan, &opts, 1).unwrap();
        let e = &r.stats.requests;
        assert_eq!(e.measured, 5, "{fault}");
        assert_eq!(e.errors[kind], 5, "{fault}: {e:?}");
        assert_eq!(e.ok, 0);
        if kind == "http_status" {
            assert_eq!(e.status_codes["503"], 5);
        }
    }
}

#[test]
fn a_refused_target_is_a_connect_error() {
    let f = fleet(1, None);
    let addr = f.backends()[0].api_addr;
    f.set_refusing("s0", true);
    let plan = scenario::from_str(
        W1,
        &Overrides {
            max_requests: Some(3),
            warmup_s: Some(0.0),
            ..Overrides::default()
        },
    )
    .unwrap();
    let mut opts = RunOptions::new(&format!("http://{addr}"));
    opts.progress = false;
    let r = run_blocking(&plan, &opts, 1).unwrap();
    assert_eq!(r.stats.requests.errors["connect"], 3);
}

const MULTI_TURN: &str = r#"
name = "mt-e2e"
seed = 5
model = "llama-3-8b"
duration_s = 2.0
warmup_s = 0.0
timeout_s = 10
[arrival]
kind = "closed"
concurrency = 1
[workload]
kind = "multi_turn"
sessions = 2
turns = 4
system_tokens = 50
user_tokens = 30
reply_tokens = 40
output_tokens = 6
"#;

#[test]
fn multi_turn_prompts_are_what_the_server_counts_and_reuse_its_cache() {
    let f = fleet(1, None);
    let url = format!("http://{}", f.backends()[0].api_addr);
    let plan = scenario::from_str(MULTI_TURN, &Overrides::default()).unwrap();
    let mut opts = RunOptions::new(&url);
    opts.progress = false;
    opts.scrape_interval = None;
    opts.headers = vec!["x-tenant: e2e".into()];
    let r = run_blocking(&plan, &opts, 1).unwrap();
    let s = &r.stats;
    let n = s.requests.ok;
    assert!(
        n >= 8,
        "two full rounds of 2 sessions x 4 turns: {:?}",
        s.requests
    );
    assert_eq!(n, s.requests.measured, "{:?}", s.requests);
    // Turn k of a session: 50 + (k+1)·30 + k·40 prompt tokens, sessions interleaved s0, s1, s0…
    let expect: u64 = (0..n)
        .map(|i| {
            let k = (i / 2) % 4;
            50 + (k + 1) * 30 + k * 40
        })
        .sum();
    assert_eq!(
        s.prompt_tokens, expect,
        "the fleet tokenizes exactly the generated lengths"
    );
    let hit = s.prefix_hit.unwrap();
    assert!(
        hit > 0.4,
        "each turn extends the last one's cached prompt: {hit}"
    );
    // The timeline covers the run and adds up to the totals.
    let ok: u64 = s.timeline.iter().map(|b| b.ok).sum();
    assert_eq!(ok, s.requests.finished);
    assert_eq!(s.curves.ttft_ms.len(), 42);
    let svg = tollgate_loadtest::plot::svg(std::slice::from_ref(&r), "mt");
    assert_eq!(
        svg.matches("<polyline").count(),
        4,
        "TTFT, ITL, E2E, timeline"
    );
}
