//! Cost of one `pick` with 64 backends, per policy: criterion's mean per pick, then a direct
//! per-call distribution (p50/p99/p99.9 over 200k single timed picks, minus the timer's own
//! cost) because the goal is a p99: ≤ 1 µs.
//!
//!     cargo bench -p tollgate-route --bench select

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use tollgate_route::model::{Member, Policy, Pool, Settings, seed_of};
use tollgate_route::{
    Ask, BackendLoad, BackendState, Env, LoadSnapshot, Local, PrefixTable, Scraped, pick,
};

const N: usize = 64;

struct World {
    settings: Settings,
    states: Vec<Arc<BackendState>>,
    caps: Vec<u32>,
    load: LoadSnapshot,
    prefix: PrefixTable,
}

fn world() -> World {
    let states: Vec<Arc<BackendState>> = (0..N)
        .map(|i| Arc::new(BackendState::new(i as u16, Arc::from(format!("b{i}")), 2)))
        .collect();
    // Some in-flight work everywhere, uneven.
    let mut guards = Vec::new();
    for (i, s) in states.iter().enumerate() {
        for k in 0..(i % 7) {
            guards.push(s.start(k % 2, 1000 + 37 * i as u64));
        }
    }
    std::mem::forget(guards); // keep the counts for the whole run
    let load = LoadSnapshot {
        generation: 1,
        backends: (0..N)
            .map(|i| BackendLoad {
                scraped: Some(Scraped {
                    queue: Some((i % 5) as f64),
                    running: Some((i % 9) as f64),
                    kv_frac: Some((i % 10) as f64 / 10.0),
                    kv_capacity_tokens: Some(430_000.0),
                    ..Scraped::default()
                }),
                scraped_at_ms: 1_000,
                ..BackendLoad::default()
            })
            .collect(),
        compact: Vec::new(),
    }
    .seal();
    World {
        settings: Settings::default(),
        states,
        caps: vec![0; N],
        load,
        prefix: PrefixTable::new(1 << 20),
    }
}

fn pool(policy: Policy) -> Pool {
    Pool {
        name: "bench".into(),
        policy,
        tiers: vec![
            (0..N)
                .map(|b| Member {
                    backend: b,
                    weight: 1 + (b % 3) as u32,
                })
                .collect(),
        ],
        model: None,
        seed: seed_of("bench"),
    }
}

/// A 4 KiB chat prompt whose first 3 KiB are shared by 32 groups.
fn prompts() -> Vec<Vec<u8>> {
    (0..256)
        .map(|i| {
            let sys = format!("group {} system context. ", i % 32).repeat(140);
            serde_json::to_vec(&serde_json::json!([
                {"role": "system", "content": &sys[..3072]},
                {"role": "user", "content": format!("question {i} ").repeat(60)}
            ]))
            .unwrap_or_default()
        })
        .collect()
}

fn run_one(w: &World, p: &Pool, local: &mut Local, prompt: &[u8]) -> usize {
    let env = Env {
        now_ms: 1_100,
        generation: 1,
        settings: &w.settings,
        states: &w.states,
        caps: &w.caps,
        load: &w.load,
        prefix: &w.prefix,
    };
    let ask = Ask {
        tried: &[],
        prompt,
        prompt_tokens: prompt.len() as u64 / 4,
        output_tokens: 256,
    };
    pick(0, p, 1, &env, &ask, local).map_or(usize::MAX, |x| x.backend)
}

fn bench(c: &mut Criterion) {
    let w = world();
    let prompts = prompts();
    let mut g = c.benchmark_group("pick_64_backends");
    for policy in Policy::ALL {
        let p = pool(policy);
        let mut local = Local::new(1);
        let mut i = 0usize;
        g.bench_function(policy.as_str(), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(run_one(&w, &p, &mut local, &prompts[i % prompts.len()]))
            })
        });
    }
    g.finish();
}

fn percentiles() {
    let w = world();
    let prompts = prompts();
    // Timer overhead: two Instant::now() with nothing between.
    let mut base: Vec<u64> = (0..200_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    base.sort_unstable();
    let overhead = base[base.len() / 2];
    println!(
        "\nper-pick latency, 64 backends, 200k single timed picks (timer overhead {overhead} ns subtracted)"
    );
    println!("| policy | p50 ns | p99 ns | p99.9 ns | max ns |");
    println!("|---|---:|---:|---:|---:|");
    for policy in Policy::ALL {
        let p = pool(policy);
        let mut local = Local::new(1);
        for (i, pr) in prompts.iter().enumerate().take(1000) {
            black_box(run_one(&w, &p, &mut local, &prompts[i % prompts.len()]));
            black_box(pr);
        }
        let mut v: Vec<u64> = (0..200_000usize)
            .map(|i| {
                let pr = &prompts[i % prompts.len()];
                let t = Instant::now();
                black_box(run_one(&w, &p, &mut local, pr));
                (t.elapsed().as_nanos() as u64).saturating_sub(overhead)
            })
            .collect();
        v.sort_unstable();
        let q = |f: f64| v[((v.len() as f64 * f) as usize).min(v.len() - 1)];
        println!(
            "| {} | {} | {} | {} | {} |",
            policy.as_str(),
            q(0.50),
            q(0.99),
            q(0.999),
            v[v.len() - 1]
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    percentiles();
    Criterion::default().configure_from_args().final_summary();
}
