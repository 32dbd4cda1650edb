//! Virtual-time routing sweep: tollgate-route's real policies in front of 8 simulated vLLM-like
//! engines (tollgate-simfleet's `VirtualFleet`), on the routing.md §4.1 workloads W1, W3, W4
//! and W6 (plus W1h, W1 with hot prefixes), reporting the §4.2 metrics as Markdown tables (`scripts/route-sweep.sh` writes them to
//! `loadtest/results/`).
//!
//! Why virtual time: a policy comparison needs minutes of traffic per (workload, load, policy,
//! seed); in virtual time one such run takes about a second and is exactly reproducible.
//!
//! What is real and what is modelled:
//! - Real: `tollgate_route::pick` with the crate's `Settings::default()`, one `Pool` of 8 backends
//!   in one tier, one-worker `BackendState`s whose `InflightGuard`s live from the pick to the
//!   engine's finish, the shared `PrefixTable`, and a `LoadSnapshot` published by a modelled
//!   control thread every `scrape_interval_ms` of virtual time from the engines' gauges.
//! - Prompts are seeded pseudo-text. The router hashes the raw chat `messages` JSON bytes the
//!   gateway would see; the engines get the same text tokenized with
//!   `tollgate_simfleet::tokenizer`, so both sides see the same sharing. `Ask.prompt_tokens` is the
//!   gateway's estimate (JSON bytes / 4), `Ask.output_tokens` the request's `max_tokens` (the
//!   engines generate exactly that many, as `vllm bench serve` does with `ignore_eos`).
//! - Stale gauges (W6): the control thread keeps a short history of gauge samples and publishes
//!   the one taken `delay` ms ago, stamped with the publish time (the gateway cannot tell the
//!   data is late), with `inflight_at_scrape` taken when the gauges were.
//!
//! `random` is a harness-side baseline, `least_load_no_dr` an ablation (least_load without its
//! dead reckoning) and `*_cand` rows are candidate formulas prototyped here (see
//! `gateway::Router`), not crate policies.
//!
//! Run: `cargo run --release -p tollgate-route --example virtual_sweep -- [--seeds N]
//! [--quick | --scale X] [--only W1,W3,…] [--policies a,b] [--loads x,y] [--threads N]
//! [--scrape-ms N]`, or `scripts/route-sweep.sh`.
//!
//! `workload.rs`, `gateway.rs` and `report.rs` are also included by `tests/virtual_routing.rs`
//! (`#[path]`), which runs small versions of the same workloads as regression tests.

mod gateway;
mod report;
mod workload;

use tollgate_route::model::{Policy, Settings};

use crate::gateway::{BASELINES, Candidate, Router};
use crate::report::{Cell, Family, Section, goals, sweep, table};
use crate::workload::{Chat, W1};

/// W1 at full routing.md scale: 150 × 6000-token contexts need 900k tokens, ≈ 70% of the
/// cluster's KV at 160k tokens per backend (≈ 5.6 backends' worth).
fn w1(requests: usize) -> W1 {
    W1 {
        groups: 150,
        users: 5,
        system_tokens: 6000,
        question_tokens: 1200,
        output: (200, 1000),
        zipf: 0.0,
        qps: 1.0,
        requests,
    }
}

/// KV per backend for every workload (see [`w1`]).
const KV_TOKENS: u64 = 160_000;

/// W3: ShareGPT-like.
fn w3(requests: usize) -> Chat {
    Chat {
        system_tokens: 100,
        input_mean: 230.0,
        output_mean: 200.0,
        qps: 1.0,
        arrival_cv: 1.0,
        long_fraction: 0.0,
        long_tokens: (16_384, 32_768),
        requests,
    }
}

/// W4: W3 with Gamma(CV 3) arrivals and 10% 16k–32k inputs.
fn w4(requests: usize) -> Chat {
    Chat {
        arrival_cv: 3.0,
        long_fraction: 0.1,
        ..w3(requests)
    }
}

/// Command line (see the module docs). `--only` takes section ids (the first word of a section's
/// name: W1, W1h, W3, W4, W6); `--quick` is `--scale 0.3` (fewer requests per run).
#[derive(Debug)]
struct Args {
    seeds: u64,
    threads: usize,
    only: Option<Vec<String>>,
    policies: Option<Vec<Router>>,
    loads: Option<Vec<f64>>,
    scrape_ms: u64,
    scale: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seeds: 3,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        only: None,
        policies: None,
        loads: None,
        scrape_ms: Settings::default().scrape_interval_ms,
        scale: 1.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or(format!("{k} needs a value"));
        let list = |v: String| v.split(',').map(str::to_string).collect::<Vec<_>>();
        match k.as_str() {
            "--quick" => a.scale = 0.3,
            "--seeds" => a.seeds = val()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--scale" => a.scale = val()?.parse().map_err(|e| format!("--scale: {e}"))?,
            "--scrape-ms" => {
                a.scrape_ms = val()?.parse().map_err(|e| format!("--scrape-ms: {e}"))?
            }
            "--only" => a.only = Some(list(val()?)),
            "--policies" => {
                let names = list(val()?);
                let rs: Option<Vec<Router>> = names.iter().map(|n| Router::from_name(n)).collect();
                a.policies = Some(rs.ok_or(format!("unknown policy in {names:?}"))?);
            }
            "--loads" => {
                let v: Result<Vec<f64>, _> =
                    list(val()?).iter().map(|x| x.parse::<f64>()).collect();
                a.loads = Some(v.map_err(|e| format!("--loads: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// The report's sections at `scale` (1.0 = the full sweep).
fn sections(scale: f64) -> Vec<Section> {
    let n = |x: f64| ((x * scale) as usize).max(50);
    let with =
        |extra: &[Router]| -> Vec<Router> { BASELINES.iter().chain(extra).copied().collect() };
    // W6: the policies that read the scraped gauges (least_load, and prefix_affinity through its
    // saturation gate and foreign-queue term), the no-dead-reckoning ablation, the least_load
    // candidate, and two gauge-blind references (their rows must not change with the delay).
    let stale = vec![
        Router::Crate(Policy::LeastRequest),
        Router::Crate(Policy::P2c),
        Router::Crate(Policy::LeastLoad),
        Router::LeastLoadNoDr,
        Router::LeastLoadCand,
        Router::Crate(Policy::PrefixAffinity),
    ];
    let (scaled, prefill) = (
        Router::Cand(Candidate::Scaled),
        Router::Cand(Candidate::Prefill),
    );
    vec![
        Section {
            name: "W1 shared prefix".into(),
            family: Family::W1(w1(n(3000.0))),
            loads: vec![4.0, 8.0, 12.0, 14.0, 16.0],
            delays: vec![0],
            routers: with(&[Router::LeastLoadCand, scaled, prefill]),
            kv_tokens: KV_TOKENS,
            seed_factor: 1,
        },
        Section {
            name: "W1h hot prefixes (W1 with Zipf 1.0 group popularity)".into(),
            family: Family::W1(W1 {
                zipf: 1.0,
                ..w1(n(3000.0))
            }),
            loads: vec![8.0, 16.0],
            delays: vec![0],
            routers: with(&[Router::LeastLoadCand, scaled]),
            kv_tokens: KV_TOKENS,
            seed_factor: 1,
        },
        Section {
            name: "W3 ShareGPT-like".into(),
            family: Family::Chat(w3(n(8000.0))),
            loads: vec![150.0, 300.0, 400.0, 500.0],
            delays: vec![0],
            routers: with(&[Router::LeastLoadCand, scaled]),
            kv_tokens: KV_TOKENS,
            seed_factor: 1,
        },
        Section {
            name: "W4 bursty heavy-tail".into(),
            family: Family::Chat(w4(n(3000.0))),
            loads: vec![10.0, 20.0, 30.0, 40.0],
            delays: vec![0],
            routers: with(&[Router::LeastLoadCand, scaled]),
            kv_tokens: KV_TOKENS,
            seed_factor: 1,
        },
        Section {
            name: "W6 stale gauges on W1".into(),
            family: Family::W1(w1(n(3000.0))),
            loads: vec![12.0],
            delays: vec![0, 50, 200, 1000],
            routers: stale.clone(),
            kv_tokens: KV_TOKENS,
            seed_factor: 2,
        },
        Section {
            name: "W6 stale gauges on W4".into(),
            family: Family::Chat(w4(n(3000.0))),
            loads: vec![30.0],
            delays: vec![0, 50, 200, 1000],
            routers: stale,
            kv_tokens: KV_TOKENS,
            seed_factor: 2,
        },
    ]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("virtual_sweep: {e}");
            std::process::exit(2);
        }
    };
    let mut secs = sections(args.scale);
    if let Some(only) = &args.only {
        secs.retain(|s| {
            let id = s.name.split_whitespace().next().unwrap_or_default();
            only.iter().any(|o| o == id)
        });
    }
    for s in &mut secs {
        if let Some(p) = &args.policies {
            s.routers = p.clone();
        }
        if let Some(l) = &args.loads {
            s.loads = l.clone();
        }
    }
    let started = std::time::Instant::now();
    let cells = sweep(&secs, args.seeds, args.scrape_ms, args.threads);
    println!("## Results\n");
    for (i, sec) in secs.iter().enumerate() {
        let cs: Vec<&Cell> = cells.iter().filter(|c| c.section == i).collect();
        println!("{}", table(sec, &cs));
    }
    println!("{}", goals(&secs, &cells));
    eprintln!("sweep took {:.1} s", started.elapsed().as_secs_f64());
}
