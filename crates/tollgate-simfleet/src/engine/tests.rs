//! Engine behaviour tests, checked against the routing.md §3.2 sanity table (±10%).

use std::collections::HashMap;

use super::*;

/// Tolerance against the §3.2 sanity table.
const TOL: f64 = 0.10;

fn close(measured: f64, expected: f64) -> bool {
    (measured - expected).abs() <= expected * TOL
}

/// A prompt of `n` tokens unique to `salt`.
fn prompt(salt: u64, n: usize) -> Vec<u32> {
    (0..n as u64)
        .map(|i| kv::mix64(salt.wrapping_mul(1_000_003) ^ i) as u32)
        .collect()
}

fn req(id: u64, tokens: Vec<u32>, max_tokens: u32) -> SimRequest {
    SimRequest {
        id,
        prompt_tokens: tokens,
        max_tokens,
        arrival_us: 0,
    }
}

/// Drives one engine through timed submissions to completion; returns every event.
fn drive(engine: &mut Engine, mut arrivals: Vec<(u64, SimRequest)>) -> Vec<EngineEvent> {
    arrivals.sort_by_key(|(t, _)| *t);
    let mut arrivals = arrivals.into_iter().peekable();
    let mut out = Vec::new();
    let mut guard = 0u64;
    loop {
        guard += 1;
        assert!(guard < 10_000_000, "engine did not drain");
        let next_arrival = arrivals.peek().map(|(t, _)| *t);
        let t = match (next_arrival, engine.next_event_time()) {
            (Some(a), Some(e)) => a.min(e),
            (Some(a), None) => a,
            (None, Some(e)) => e,
            (None, None) => break,
        };
        engine.advance(t, &mut out);
        while let Some((at, r)) = arrivals.next_if(|(at, _)| *at <= t) {
            engine.submit(at, r);
        }
    }
    out
}

fn tokens_of(events: &[EngineEvent], id: u64) -> Vec<(u32, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            EngineEvent::Token { id: i, seq, t_us } if i == id => Some((seq, t_us)),
            _ => None,
        })
        .collect()
}

fn ttft_ms(events: &[EngineEvent], id: u64, arrival_us: u64) -> f64 {
    let first = tokens_of(events, id)[0];
    assert_eq!(first.0, 0);
    (first.1 - arrival_us) as f64 / 1000.0
}

fn itls_ms(events: &[EngineEvent], id: u64) -> Vec<f64> {
    tokens_of(events, id)
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) as f64 / 1000.0)
        .collect()
}

fn finished(events: &[EngineEvent], id: u64) -> Option<(u32, u32)> {
    events.iter().find_map(|e| match *e {
        EngineEvent::Finished {
            id: i,
            cached_tokens,
            completion_tokens,
            ..
        } if i == id => Some((cached_tokens, completion_tokens)),
        _ => None,
    })
}

fn engine(p: Personality) -> Engine {
    Engine::new(p, EngineParams::default(), 7)
}

#[test]
fn step_time_matches_the_sanity_table() {
    let p = EngineParams::default();
    let cases: [(&str, f64, f64); 7] = [
        ("single decode 1k", step_time_ms(&p, &[1000], &[]), 6.8),
        ("decode 64 x 1.5k", step_time_ms(&p, &[1500; 64], &[]), 12.8),
        ("decode 128 x 2k", step_time_ms(&p, &[2000; 128], &[]), 22.0),
        (
            "decode 256 x 1.5k",
            step_time_ms(&p, &[1500; 256], &[]),
            33.0,
        ),
        ("prefill 1k", step_time_ms(&p, &[], &[(1000, 0)]), 33.0),
        ("prefill 8k", step_time_ms(&p, &[], &[(8192, 0)]), 290.0),
        (
            "64 decodes + 2k chunk",
            step_time_ms(&p, &[1500; 64], &[(2048, 0)]),
            76.0,
        ),
    ];
    for (name, got, want) in cases {
        assert!(close(got, want), "{name}: {got:.2} ms vs {want} ms");
    }
}

#[test]
fn speed_factor_divides_step_time() {
    let slow = EngineParams {
        speed_factor: 0.5,
        ..EngineParams::default()
    };
    let base = step_time_ms(&EngineParams::default(), &[1000], &[]);
    assert!((step_time_ms(&slow, &[1000], &[]) - 2.0 * base).abs() < 1e-9);
}

#[test]
fn isolated_1k_prefill_ttft_and_single_decode_itl_match_the_table() {
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        let mut e = engine(p);
        let ev = drive(&mut e, vec![(1_000, req(1, prompt(1, 1000), 16))]);
        let ttft = ttft_ms(&ev, 1, 1_000);
        assert!(close(ttft, 33.0), "{p:?} ttft {ttft}");
        for itl in itls_ms(&ev, 1) {
            assert!(close(itl, 6.8), "{p:?} itl {itl}");
        }
        assert_eq!(finished(&ev, 1), Some((0, 16)));
    }
}

#[test]
fn decode_batch_of_64_at_1_5k_context_matches_the_table() {
    let mut e = engine(Personality::Vllm);
    let arrivals = (0..64).map(|i| (0, req(i, prompt(i, 1500), 32))).collect();
    let ev = drive(&mut e, arrivals);
    // the last 8 ITLs of every request are pure 64-wide decode steps at ~1.5k context
    let mut late: Vec<f64> = (0..64)
        .flat_map(|i| itls_ms(&ev, i).into_iter().rev().take(8))
        .collect();
    late.sort_by(f64::total_cmp);
    let median = late[late.len() / 2];
    assert!(close(median, 12.8), "median late ITL {median}");
}

#[test]
fn ttft_grows_with_prompt_length() {
    let mut last = 0.0;
    for (i, n) in [128usize, 1024, 4096, 8192, 16384].into_iter().enumerate() {
        let mut e = engine(Personality::Vllm);
        let ev = drive(&mut e, vec![(0, req(i as u64, prompt(i as u64, n), 2))]);
        let ttft = ttft_ms(&ev, i as u64, 0);
        assert!(ttft > last, "ttft {ttft} for {n} tokens not above {last}");
        last = ttft;
    }
}

#[test]
fn itl_grows_with_batch_size() {
    let mut last = 0.0;
    for batch in [1u64, 16, 64, 256] {
        let mut e = engine(Personality::Vllm);
        let arrivals = (0..batch)
            .map(|i| (0, req(i, prompt(i, 1024), 24)))
            .collect();
        let ev = drive(&mut e, arrivals);
        let itl = *itls_ms(&ev, 0).last().expect("itl");
        assert!(itl > last, "batch {batch}: itl {itl} not above {last}");
        last = itl;
    }
}

#[test]
fn repeated_prefix_lowers_ttft_and_counts_hits() {
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        let shared = prompt(99, 2048);
        let mut second = shared.clone();
        second.extend(prompt(5, 64));
        let mut e = engine(p);
        let ev = drive(
            &mut e,
            vec![
                (0, req(1, shared.clone(), 4)),
                (1_000_000, req(2, second, 4)),
            ],
        );
        let cold = ttft_ms(&ev, 1, 0);
        let warm = ttft_ms(&ev, 2, 1_000_000);
        assert!(warm < cold / 3.0, "{p:?}: warm {warm} vs cold {cold}");
        let g = e.gauges();
        assert_eq!(g.prefix_queries_tokens, 2048 + 2048 + 64);
        assert_eq!(
            g.prefix_hits_tokens,
            u64::from(finished(&ev, 2).expect("done").0)
        );
        assert!(
            g.prefix_hits_tokens >= 1920,
            "{p:?}: hits {}",
            g.prefix_hits_tokens
        );
    }
}

#[test]
fn kv_exhaustion_queues_then_preempts_and_every_request_still_completes() {
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        let params = EngineParams {
            kv_capacity_tokens: 8192,
            ..EngineParams::default()
        };
        let mut e = Engine::new(p, params, 3);
        let n = 24u64;
        let arrivals: Vec<_> = (0..n)
            .map(|i| (i * 100, req(i, prompt(i, 400), 300)))
            .collect();
        let mut out = Vec::new();
        let mut saw_waiting = false;
        // drive by hand to watch the gauges
        let mut arrivals = arrivals.into_iter().peekable();
        loop {
            let t = match (arrivals.peek().map(|(t, _)| *t), e.next_event_time()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            e.advance(t, &mut out);
            while let Some((at, r)) = arrivals.next_if(|(at, _)| *at <= t) {
                e.submit(at, r);
            }
            let g = e.gauges();
            saw_waiting |= g.waiting > 0 && g.running > 0;
            assert!(g.kv_used_tokens <= g.kv_capacity_tokens);
        }
        let g = e.gauges();
        assert!(saw_waiting, "{p:?}: never queued");
        assert!(g.preemptions > 0, "{p:?}: no preemption");
        let preempted = out
            .iter()
            .filter(|e| matches!(e, EngineEvent::Preempted { .. }))
            .count() as u64;
        assert_eq!(preempted, g.preemptions);
        for id in 0..n {
            let seqs: Vec<u32> = tokens_of(&out, id).into_iter().map(|(s, _)| s).collect();
            assert_eq!(seqs, (0..300).collect::<Vec<u32>>(), "{p:?}: request {id}");
            assert_eq!(finished(&out, id).map(|f| f.1), Some(300));
        }
        assert_eq!(g.requests_finished, n);
        assert_eq!(g.running + g.waiting, 0);
        assert_eq!(g.kv_used_tokens, 0);
    }
}

#[test]
fn cancel_frees_kv_and_silences_the_request() {
    let mut e = engine(Personality::Vllm);
    let mut out = Vec::new();
    e.submit(0, req(1, prompt(1, 4000), 1000));
    e.advance(0, &mut out);
    let end = e.next_event_time().expect("step in flight");
    e.advance(end + 50_000, &mut out);
    assert!(e.gauges().kv_used_tokens >= 4000);
    e.cancel(end + 50_000, 1);
    let g = e.gauges();
    assert_eq!((g.kv_used_tokens, g.running, g.waiting), (0, 0, 0));
    let before = out.len();
    e.advance(10_000_000, &mut out);
    assert_eq!(
        out.len(),
        before,
        "events after cancel: {:?}",
        &out[before..]
    );
    assert_eq!(e.next_event_time(), None);
}

#[test]
fn idle_engine_runs_no_phantom_steps() {
    let mut e = engine(Personality::Vllm);
    let mut out = Vec::new();
    e.advance(5_000_000, &mut out);
    assert_eq!(e.next_event_time(), None);
    e.submit(5_000_000, req(1, prompt(1, 1000), 3));
    assert_eq!(e.next_event_time(), Some(5_000_000));
    e.advance(6_000_000, &mut out);
    assert_eq!(e.gauges().steps, 3);
    assert_eq!(e.next_event_time(), None);
    assert!(matches!(out[0], EngineEvent::Token { seq: 0, t_us, .. }
            if (5_030_000..5_040_000).contains(&t_us)));
}

#[test]
fn same_seed_same_events_and_jitter_changes_with_seed() {
    let run = |seed: u64, p: Personality| {
        let params = EngineParams {
            jitter: 0.05,
            kv_capacity_tokens: 20_000,
            ..EngineParams::default()
        };
        let mut e = Engine::new(p, params, seed);
        let arrivals = (0..40)
            .map(|i| (i * 3_000, req(i, prompt(i % 5, 300 + 37 * i as usize), 50)))
            .collect();
        drive(&mut e, arrivals)
    };
    for p in [Personality::Vllm, Personality::Sglang, Personality::Mindie] {
        assert_eq!(run(11, p), run(11, p));
        assert_ne!(run(11, p), run(12, p));
    }
}

#[test]
fn mindie_128_blocks_miss_a_100_token_shared_prefix_that_vllm_hits() {
    let cached = |p: Personality| {
        let shared = prompt(42, 100);
        let mut a = shared.clone();
        a.extend(prompt(1, 50));
        let mut b = shared;
        b.extend(prompt(2, 50));
        let mut e = engine(p);
        let ev = drive(&mut e, vec![(0, req(1, a, 2)), (500_000, req(2, b, 2))]);
        finished(&ev, 2).expect("done").0
    };
    assert_eq!(cached(Personality::Vllm), 96);
    assert_eq!(cached(Personality::Sglang), 100);
    assert_eq!(cached(Personality::Mindie), 0);
}

#[test]
fn gauges_report_personality_geometry() {
    let g = engine(Personality::Mindie).gauges();
    assert_eq!((g.block_size, g.max_num_seqs), (128, 200));
    assert_eq!(g.num_blocks, 430_000 / 128);
    let g = engine(Personality::Vllm).gauges();
    assert_eq!(
        (g.block_size, g.num_blocks, g.max_num_seqs),
        (16, 26_875, 1024)
    );
    assert_eq!(engine(Personality::Sglang).gauges().block_size, 1);
}

#[test]
fn oversized_request_is_clamped_instead_of_deadlocking() {
    let params = EngineParams {
        kv_capacity_tokens: 1024,
        ..EngineParams::default()
    };
    let mut e = Engine::new(Personality::Vllm, params, 1);
    let ev = drive(&mut e, vec![(0, req(1, prompt(1, 5000), 500))]);
    let (_, completion) = finished(&ev, 1).expect("finished");
    assert!(completion >= 1);
    assert_eq!(tokens_of(&ev, 1).len() as u32, completion);
}

#[test]
fn virtual_fleet_prefix_affinity_beats_round_robin() {
    // 16 "system prompts" of 3k tokens shared by many requests, each with a short unique suffix.
    let groups = 16u64;
    let reqs: Vec<SimRequest> = (0..400u64)
        .map(|i| {
            let g = kv::mix64(i) % groups;
            let mut t = prompt(1000 + g, 3000);
            t.extend(prompt(i, 100));
            SimRequest {
                id: i,
                prompt_tokens: t,
                max_tokens: 64,
                arrival_us: i * 15_000,
            }
        })
        .collect();
    let group_of = |r: &SimRequest| reqs_group(&r.prompt_tokens);
    let params = EngineParams {
        kv_capacity_tokens: 60_000,
        ..EngineParams::default()
    };
    let fleet = || {
        VirtualFleet::new(
            (0..4)
                .map(|s| Engine::new(Personality::Vllm, params.clone(), s))
                .collect(),
        )
    };

    let mut rr = fleet();
    let mut next = 0usize;
    let res_rr = rr.run(reqs.clone(), |_, _| {
        next += 1;
        next
    });
    let mut aff = fleet();
    let res_aff = aff.run(reqs.clone(), |_, r| (group_of(r) % 4) as usize);

    let stats = |res: &[RequestResult], f: &VirtualFleet| {
        let (q, h) = f.engines().iter().map(Engine::gauges).fold((0, 0), |a, g| {
            (a.0 + g.prefix_queries_tokens, a.1 + g.prefix_hits_tokens)
        });
        let ttft = res.iter().map(|r| r.ttft_us as f64).sum::<f64>() / res.len() as f64;
        (h as f64 / q as f64, ttft)
    };
    assert_eq!(res_rr.len(), 400);
    assert_eq!(res_aff.len(), 400);
    let (hit_rr, ttft_rr) = stats(&res_rr, &rr);
    let (hit_aff, ttft_aff) = stats(&res_aff, &aff);
    assert!(
        hit_aff > hit_rr,
        "hit rate affinity {hit_aff:.3} vs rr {hit_rr:.3}"
    );
    assert!(
        ttft_aff < ttft_rr,
        "mean ttft affinity {ttft_aff:.0} us vs rr {ttft_rr:.0} us"
    );
    assert!(res_aff.iter().all(|r| r.completion_tokens == 64));
}

/// Recovers the group of a test prompt from its first token (test helper for affinity routing).
fn reqs_group(tokens: &[u32]) -> u64 {
    (0..16u64)
        .find(|g| prompt(1000 + g, 1)[0] == tokens[0])
        .unwrap_or(0)
}

/// Records every [`VirtualRouter`] callback; routes round-robin and ticks every 5 ms.
#[derive(Default)]
struct Recorder {
    next: usize,
    tick_at: u64,
    /// (time, kind, id, backend): kind 0 = routed, 1 = first token, 2 = finish, 3 = tick.
    log: Vec<(u64, u8, u64, usize)>,
    routed: HashMap<u64, usize>,
    tokens: HashMap<u64, u32>,
}

impl VirtualRouter for Recorder {
    fn route(&mut self, now_us: u64, gauges: &[Gauges], req: &SimRequest) -> usize {
        assert_eq!(gauges.len(), 3);
        self.next += 1;
        let b = self.next % 3;
        self.routed.insert(req.id, b);
        self.log.push((now_us, 0, req.id, b));
        b
    }

    fn on_token(&mut self, id: u64, backend: usize, seq: u32, _t_us: u64) {
        assert_eq!(self.routed.get(&id), Some(&backend));
        let n = self.tokens.entry(id).or_default();
        assert_eq!(*n, seq, "tokens of {id} in order");
        *n += 1;
    }

    fn on_first_token(&mut self, id: u64, backend: usize, t_us: u64) {
        self.log.push((t_us, 1, id, backend));
    }

    fn on_finish(&mut self, id: u64, backend: usize, t_us: u64) {
        self.log.push((t_us, 2, id, backend));
    }

    fn next_tick_us(&self) -> Option<u64> {
        Some(self.tick_at)
    }

    fn on_tick(&mut self, now_us: u64, gauges: &[Gauges]) {
        assert_eq!(gauges.len(), 3);
        assert!(now_us >= self.tick_at);
        self.log.push((now_us, 3, 0, 0));
        self.tick_at = now_us + 5_000;
    }
}

#[test]
fn virtual_router_callbacks_fire_once_per_request_in_time_order() {
    let reqs: Vec<SimRequest> = (0..60u64)
        .map(|i| SimRequest {
            id: i,
            prompt_tokens: prompt(i % 7, 200 + 50 * (i as usize % 5)),
            max_tokens: 5 + (i % 11) as u32,
            arrival_us: i * 7_000,
        })
        .collect();
    let mut fleet = VirtualFleet::new(
        (0..3)
            .map(|s| Engine::new(Personality::Vllm, EngineParams::default(), s))
            .collect(),
    );
    let mut rec = Recorder::default();
    let res = fleet.run_with(reqs, &mut rec);
    assert_eq!(res.len(), 60);
    assert!(
        rec.log.windows(2).all(|w| w[0].0 <= w[1].0),
        "callbacks out of time order"
    );
    for r in &res {
        let of = |kind: u8| -> Vec<(u64, usize)> {
            rec.log
                .iter()
                .filter(|e| e.1 == kind && e.2 == r.id)
                .map(|e| (e.0, e.3))
                .collect()
        };
        let (routed, first, fin) = (of(0), of(1), of(2));
        assert_eq!(routed, vec![(r.arrival_us, r.backend)], "request {}", r.id);
        assert_eq!(first, vec![(r.arrival_us + r.ttft_us, r.backend)]);
        assert_eq!(fin, vec![(r.arrival_us + r.e2e_us, r.backend)]);
        assert_eq!(rec.tokens.get(&r.id), Some(&r.completion_tokens));
    }
    // Ticks every 5 ms while work remains, none after the last finish.
    let ticks: Vec<u64> = rec.log.iter().filter(|e| e.1 == 3).map(|e| e.0).collect();
    let last_finish = res
        .iter()
        .map(|r| r.arrival_us + r.e2e_us)
        .max()
        .unwrap_or(0);
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == 5_000));
    assert!(ticks.len() as u64 >= last_finish / 5_000);
    assert!(ticks.last().is_some_and(|&t| t <= last_finish));
}

#[test]
fn ticks_and_callbacks_do_not_change_the_outcome() {
    let reqs: Vec<SimRequest> = (0..30u64)
        .map(|i| SimRequest {
            id: i,
            prompt_tokens: prompt(i, 300),
            max_tokens: 8,
            arrival_us: i * 3_000,
        })
        .collect();
    let fleet = || {
        VirtualFleet::new(
            (0..3)
                .map(|s| Engine::new(Personality::Sglang, EngineParams::default(), s))
                .collect(),
        )
    };
    // Recorder routes round-robin starting at 1, like this closure.
    let mut n = 0usize;
    let plain = fleet().run(reqs.clone(), |_, _| {
        n += 1;
        n
    });
    let with = fleet().run_with(reqs, &mut Recorder::default());
    assert_eq!(with, plain);
}
