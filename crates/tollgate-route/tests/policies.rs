//! Each policy, tier choice, staleness, ejection and fail-open, driven through the public `pick`
//! with hand-made load snapshots and in-flight counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tollgate_route::model::{Member, Policy, Pool, Settings, seed_of};
use tollgate_route::{
    Ask, BackendLoad, BackendState, Env, LoadSnapshot, Local, PrefixTable, Scraped, pick,
};

struct World {
    settings: Settings,
    states: Vec<Arc<BackendState>>,
    caps: Vec<u32>,
    load: LoadSnapshot,
    prefix: PrefixTable,
    now: u64,
}

impl World {
    fn new(n: usize) -> World {
        World {
            settings: Settings::default(),
            states: (0..n)
                .map(|i| Arc::new(BackendState::new(i as u16, Arc::from(format!("b{i}")), 2)))
                .collect(),
            caps: vec![0; n],
            load: LoadSnapshot {
                generation: 1,
                backends: vec![BackendLoad::default(); n],
                compact: Vec::new(),
            },
            prefix: PrefixTable::new(1 << 12),
            now: 10_000,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            now_ms: self.now,
            generation: 1,
            settings: &self.settings,
            states: &self.states,
            caps: &self.caps,
            load: &self.load,
            prefix: &self.prefix,
        }
    }

    fn scrape(&mut self, b: usize, queue: f64, kv: f64, age_ms: u64) {
        self.load.backends[b].scraped = Some(Scraped {
            queue: Some(queue),
            running: Some(0.0),
            kv_frac: Some(kv),
            ..Scraped::default()
        });
        self.load.backends[b].scraped_at_ms = self.now - age_ms;
    }
}

fn pool(policy: Policy, tiers: &[&[usize]]) -> Pool {
    Pool {
        name: "p".into(),
        policy,
        tiers: tiers
            .iter()
            .map(|t| {
                t.iter()
                    .map(|&b| Member {
                        backend: b,
                        weight: 1,
                    })
                    .collect()
            })
            .collect(),
        model: None,
        seed: seed_of("p"),
    }
}

fn ask(tried: &[usize]) -> Ask<'_> {
    Ask {
        tried,
        prompt: b"",
        prompt_tokens: 100,
        output_tokens: 100,
    }
}

fn picks(w: &World, p: &Pool, n: usize, local: &mut Local) -> Vec<usize> {
    (0..n)
        .map(|_| pick(0, p, 1, &w.env(), &ask(&[]), local).unwrap().backend)
        .collect()
}

#[test]
fn round_robin_rotates_and_skips_tried() {
    let w = World::new(3);
    let p = pool(Policy::RoundRobin, &[&[0, 1, 2]]);
    let mut l = Local::new(1);
    assert_eq!(picks(&w, &p, 6, &mut l), vec![0, 1, 2, 0, 1, 2]);
    for _ in 0..10 {
        let b = pick(0, &p, 1, &w.env(), &ask(&[0, 2]), &mut l)
            .unwrap()
            .backend;
        assert_eq!(b, 1);
    }
    assert!(
        pick(0, &p, 1, &w.env(), &ask(&[0, 1, 2]), &mut l).is_none(),
        "all tried → none"
    );
}

#[test]
fn weighted_is_smooth_and_proportional() {
    let w = World::new(3);
    let mut p = pool(Policy::Weighted, &[&[0, 1, 2]]);
    p.tiers[0][0].weight = 5;
    let mut l = Local::new(1);
    let got = picks(&w, &p, 7, &mut l);
    // nginx's smooth WRR with weights 5,1,1: a a b a c a a (no long runs of the heavy one).
    assert_eq!(got, vec![0, 0, 1, 0, 2, 0, 0]);
    let got = picks(&w, &p, 700, &mut l);
    assert_eq!(got.iter().filter(|&&b| b == 0).count(), 500);
}

#[test]
fn least_request_follows_inflight_across_workers() {
    let w = World::new(3);
    let p = pool(Policy::LeastRequest, &[&[0, 1, 2]]);
    // Worker 0 holds two on b0, worker 1 holds one on b1: the sum over slots counts.
    let _g = [
        w.states[0].start(0, 1),
        w.states[0].start(1, 1),
        w.states[1].start(1, 1),
    ];
    let mut l = Local::new(7);
    for _ in 0..20 {
        assert_eq!(
            pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap().backend,
            2
        );
    }
}

#[test]
fn p2c_never_picks_the_most_loaded_of_its_pair_and_spreads() {
    let w = World::new(4);
    let p = pool(Policy::P2c, &[&[0, 1, 2, 3]]);
    let _g: Vec<_> = (0..10).map(|_| w.states[3].start(0, 10)).collect();
    let mut l = Local::new(3);
    let got = picks(&w, &p, 3000, &mut l);
    assert!(
        !got.contains(&3),
        "the loaded backend loses every pair it is in"
    );
    for b in 0..3 {
        let n = got.iter().filter(|&&x| x == b).count();
        assert!((800..=1200).contains(&n), "b{b}: {n}");
    }
}

#[test]
fn least_load_weighs_queue_kv_and_tokens_and_treats_stale_as_saturated() {
    let mut w = World::new(3);
    let p = pool(Policy::LeastLoad, &[&[0, 1, 2]]);
    w.scrape(0, 10.0, 0.9, 0);
    w.scrape(1, 0.0, 0.2, 0);
    w.scrape(2, 0.0, 0.1, 0);
    let mut l = Local::new(1);
    assert!(picks(&w, &p, 20, &mut l).iter().all(|&b| b == 2));
    // b2's metrics go stale: unknown counts as saturated (queue 1, kv 1), not idle.
    w.scrape(2, 0.0, 0.1, w.settings.stale_after_ms + 1);
    assert!(picks(&w, &p, 20, &mut l).iter().all(|&b| b == 1));
    // In-flight tokens move the choice between scrapes.
    w.scrape(2, 0.0, 0.2, 0);
    let _g = w.states[1].start(0, 50_000);
    assert!(picks(&w, &p, 20, &mut l).iter().all(|&b| b == 2));
}

#[test]
fn dead_reckoning_adds_what_the_gateway_sent_since_the_scrape() {
    let mut w = World::new(2);
    w.settings.saturation_queue = 4.0;
    let p = pool(Policy::LeastLoad, &[&[0, 1], &[]]);
    let p = Pool {
        tiers: vec![p.tiers[0].clone()],
        ..p
    };
    w.scrape(0, 3.0, 0.1, 0);
    w.scrape(1, 0.0, 0.1, 0);
    // Since b0's scrape the gateway sent 2 more requests there: queue estimate 5 ≥ 4 → saturated.
    let _g = [w.states[0].start(0, 1), w.states[0].start(0, 1)];
    let mut l = Local::new(1);
    for _ in 0..5 {
        assert_eq!(
            pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap().backend,
            1
        );
    }
}

#[test]
fn tiers_fail_over_on_ejection_probe_and_saturation() {
    let mut w = World::new(3);
    let p = pool(Policy::RoundRobin, &[&[0, 1], &[2]]);
    let mut l = Local::new(1);
    assert!(picks(&w, &p, 10, &mut l).iter().all(|&b| b < 2));
    // b0 ejected, b1 probed down → the backup tier serves.
    let ej = tollgate_route::EjectPolicy {
        consecutive_failures: 1,
        base_ms: 1000,
        max_ms: 1000,
    };
    assert!(w.states[0].record_failure(w.now, &ej, true));
    w.load.backends[1].probe_ok = Some(false);
    let pk = pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap();
    assert_eq!((pk.backend, pk.tier, pk.fail_open), (2, 1, false));
    // The ejection ends: b0 is back.
    w.now += 1000;
    assert_eq!(
        pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap().backend,
        0
    );
    // Saturation (max_inflight) also moves traffic to the backup tier.
    w.load.backends[1].probe_ok = Some(true);
    w.caps = vec![1, 1, 0];
    let _g = [w.states[0].start(0, 1), w.states[1].start(0, 1)];
    assert_eq!(pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap().tier, 1);
    // A retry after the primary failed goes to the backup even when the primary is fine.
    w.caps = vec![0, 0, 0];
    let pk = pick(0, &p, 1, &w.env(), &ask(&[0, 1]), &mut l).unwrap();
    assert_eq!(pk.backend, 2);
}

#[test]
fn saturated_everywhere_still_picks_and_nothing_healthy_fails_open() {
    let mut w = World::new(2);
    let p = pool(Policy::LeastRequest, &[&[0], &[1]]);
    w.caps = vec![1, 1];
    let _g = [w.states[0].start(0, 1), w.states[1].start(0, 1)];
    let mut l = Local::new(1);
    let pk = pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap();
    assert_eq!(
        (pk.tier, pk.fail_open),
        (0, false),
        "saturated but healthy: stay on tier 0"
    );
    w.load.backends[0].probe_ok = Some(false);
    w.load.backends[1].probe_ok = Some(false);
    let pk = pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap();
    assert!(
        pk.fail_open,
        "every backend down: try anyway rather than refuse"
    );
    // A load snapshot of another config generation is ignored (indices may differ).
    w.load.generation = 2;
    let pk = pick(0, &p, 1, &w.env(), &ask(&[]), &mut l).unwrap();
    assert!(!pk.fail_open);
}

fn chat(system: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!([{"role":"system","content":system},{"role":"user","content":user}]),
    )
    .unwrap()
}

#[test]
fn prefix_affinity_sticks_to_the_prefix_owner_within_the_load_bound() {
    let w = World::new(4);
    let p = pool(Policy::PrefixAffinity, &[&[0, 1, 2, 3]]);
    let sys = "You are the support bot of ACME. ".repeat(150); // ~5 KB ≈ 1.2k tokens
    let mut l = Local::new(5);
    let a0 = chat(&sys, "first question");
    let ask0 = Ask {
        tried: &[],
        prompt: &a0,
        prompt_tokens: a0.len() as u64 / 4,
        output_tokens: 100,
    };
    let first = pick(0, &p, 1, &w.env(), &ask0, &mut l).unwrap();
    assert_eq!(first.matched_blocks, 0);
    let owner = first.backend;
    // Same system prompt, different questions: the owner, credited with the shared blocks, for
    // as long as it is within ratio·min + slack in-flight requests (min = 0 → 8 requests).
    let mut guards = vec![w.states[owner].start(0, 1)];
    let a1 = chat(&sys, "a different question");
    let ask1 = Ask {
        prompt: &a1,
        prompt_tokens: a1.len() as u64 / 4,
        ..ask0
    };
    for _ in 0..7 {
        let pk = pick(0, &p, 1, &w.env(), &ask1, &mut l).unwrap();
        assert_eq!(pk.backend, owner);
        assert!(pk.matched_blocks >= 15, "{pk:?}");
        guards.push(w.states[owner].start(0, 1));
    }
    // 8 in flight on the owner, 0 elsewhere: still within the bound; the 9th spills.
    assert_eq!(
        pick(0, &p, 1, &w.env(), &ask1, &mut l).unwrap().backend,
        owner
    );
    guards.push(w.states[owner].start(0, 1));
    let spill = pick(0, &p, 1, &w.env(), &ask1, &mut l).unwrap();
    assert_ne!(
        spill.backend, owner,
        "a hot prefix cannot pin a loaded backend"
    );
    assert_eq!(spill.matched_blocks, 0);
    // The table followed the spill: the next request goes to the new home.
    let next = pick(0, &p, 1, &w.env(), &ask1, &mut l).unwrap();
    assert_eq!(next.backend, spill.backend);
    // A short shared head (under prefix_min_match of the prompt) is not followed: least load.
    let long_q = chat(&sys[..300], &"an unrelated long question ".repeat(60));
    let ask2 = Ask {
        prompt: &long_q,
        prompt_tokens: long_q.len() as u64 / 4,
        ..ask0
    };
    let pk = pick(0, &p, 1, &w.env(), &ask2, &mut l).unwrap();
    assert_eq!(pk.matched_blocks, 0);
    assert_ne!(pk.backend, owner);
    drop(guards);
}

#[test]
fn prefix_affinity_spreads_distinct_prefixes_evenly() {
    let w = World::new(4);
    let p = pool(Policy::PrefixAffinity, &[&[0, 1, 2, 3]]);
    let mut l = Local::new(9);
    let mut count = [0usize; 4];
    let mut guards = Vec::new();
    for g in 0..40 {
        let body = chat(&format!("group {g} context ").repeat(80), "q");
        let a = Ask {
            tried: &[],
            prompt: &body,
            prompt_tokens: body.len() as u64 / 4,
            output_tokens: 50,
        };
        let pk = pick(0, &p, 1, &w.env(), &a, &mut l).unwrap();
        count[pk.backend] += 1;
        guards.push(w.states[pk.backend].start(0, a.prompt_tokens + 50));
    }
    assert!(count.iter().all(|&c| (8..=12).contains(&c)), "{count:?}");
}
