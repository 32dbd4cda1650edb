//! One run and its statistics (routing.md §4.2), the sweep over (workload, load, seed, gauge
//! delay, policy) on a few threads, and the Markdown tables and §4.4 goal verdicts.

use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate_route::model::Policy;
use tollgate_simfleet::engine::{Engine, EngineParams, Personality, RequestResult, VirtualFleet};

use crate::gateway::{Candidate, Gateway, Router, Scrape};
use crate::workload::{Chat, W1, Workload};

/// The fleet: 8 vLLM-like engines (Llama-3-8B / H100 step model) with `kv_tokens` of KV each.
pub fn fleet(backends: usize, kv_tokens: u64, seed: u64) -> VirtualFleet {
    let params = EngineParams {
        kv_capacity_tokens: kv_tokens,
        jitter: 0.05,
        ..EngineParams::default()
    };
    VirtualFleet::new(
        (0..backends as u64)
            .map(|b| Engine::new(Personality::Vllm, params.clone(), seed ^ (b << 32)))
            .collect(),
    )
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Seed of the run (workload and engines).
    pub seed: u64,
    /// Mean TTFT (ms).
    pub ttft_mean: f64,
    /// TTFT percentiles (ms).
    pub ttft_p50: f64,
    /// See `ttft_p50`.
    pub ttft_p90: f64,
    /// See `ttft_p50`.
    pub ttft_p99: f64,
    /// Token-weighted mean inter-token latency (ms).
    pub itl_mean: f64,
    /// 99th percentile of every inter-token gap (ms).
    pub itl_p99: f64,
    /// E2E p99 (ms).
    pub e2e_p99: f64,
    /// Output tokens per second emitted between the end of warm-up and the last arrival (the
    /// steady-state rate: the offered load below capacity, the capacity above it).
    pub out_tok_s: f64,
    /// Σ cached / Σ prompt tokens of measured requests.
    pub hit_rate: f64,
    /// Coefficient of variation of requests per backend.
    pub cv_requests: f64,
    /// Coefficient of variation of prompt tokens per backend.
    pub cv_tokens: f64,
    /// Largest share of requests any backend got.
    pub max_share: f64,
    /// Mean over scrapes of the CV of `running + waiting` across backends.
    pub load_cv: f64,
    /// Preemptions (all requests).
    pub preemptions: u64,
    /// Share of picks sent to a backend credited with a prefix match (prefix policies).
    pub affinity: f64,
    /// See [`Gateway::herd_share`].
    pub herd_share: f64,
}

/// Coefficient of variation (population).
pub fn cv(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return 0.0;
    }
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt() / mean
}

/// Nearest-rank percentile of sorted `xs` (0 when empty).
pub fn pct<T: Copy + Into<f64>>(sorted: &[T], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).map_or(0.0, |&x| x.into())
}

/// Share of the arrival window treated as warm-up.
pub const WARMUP: f64 = 0.2;

/// Runs `work` through `router` on a fresh fleet and measures it.
pub fn run(
    work: &Workload,
    router: Router,
    scrape: Scrape,
    backends: usize,
    kv_tokens: u64,
    seed: u64,
) -> (Stats, Vec<RequestResult>) {
    let last_arrival = work.reqs.last().map_or(0, |r| r.0);
    let measure_from = (last_arrival as f64 * WARMUP) as u64;
    let mut fleet = fleet(backends, kv_tokens, seed);
    let mut gw = Gateway::new(router, backends, scrape, work, measure_from, seed);
    let res = fleet.run_with(work.sim_requests(), &mut gw);
    let mut stats = stats(&res, backends, measure_from, &mut gw.itl_us);
    stats.seed = seed;
    stats.load_cv = gw.load_cv();
    stats.out_tok_s =
        gw.window_tokens as f64 / (last_arrival.saturating_sub(measure_from).max(1) as f64 / 1e6);
    stats.affinity = gw.affinity_picks as f64 / res.len().max(1) as f64;
    stats.herd_share = gw.herd_share();
    (stats, res)
}

/// Statistics of one run's results (`itl_us` is sorted in place).
pub fn stats(
    res: &[RequestResult],
    backends: usize,
    measure_from: u64,
    itl_us: &mut [u32],
) -> Stats {
    let m: Vec<&RequestResult> = res
        .iter()
        .filter(|r| r.arrival_us >= measure_from)
        .collect();
    let mut ttft: Vec<f64> = m.iter().map(|r| r.ttft_us as f64 / 1000.0).collect();
    let mut e2e: Vec<f64> = m.iter().map(|r| r.e2e_us as f64 / 1000.0).collect();
    ttft.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    itl_us.sort_unstable();
    let gaps: u64 = itl_us.iter().map(|&x| u64::from(x)).sum();
    let (cached, prompt) = m.iter().fold((0u64, 0u64), |a, r| {
        (
            a.0 + u64::from(r.cached_tokens),
            a.1 + u64::from(r.prompt_tokens),
        )
    });
    let mut per_req = vec![0.0f64; backends];
    let mut per_tok = vec![0.0f64; backends];
    for r in res {
        if let (Some(q), Some(t)) = (per_req.get_mut(r.backend), per_tok.get_mut(r.backend)) {
            *q += 1.0;
            *t += f64::from(r.prompt_tokens);
        }
    }
    Stats {
        seed: 0,
        ttft_mean: ttft.iter().sum::<f64>() / ttft.len().max(1) as f64,
        ttft_p50: pct(&ttft, 0.50),
        ttft_p90: pct(&ttft, 0.90),
        ttft_p99: pct(&ttft, 0.99),
        itl_mean: gaps as f64 / itl_us.len().max(1) as f64 / 1000.0,
        itl_p99: pct(itl_us, 0.99) / 1000.0,
        e2e_p99: pct(&e2e, 0.99),
        out_tok_s: 0.0,
        hit_rate: cached as f64 / prompt.max(1) as f64,
        cv_requests: cv(&per_req),
        cv_tokens: cv(&per_tok),
        max_share: per_req.iter().copied().fold(0.0, f64::max) / res.len().max(1) as f64,
        load_cv: 0.0,
        preemptions: res.iter().map(|r| u64::from(r.preempted)).sum(),
        affinity: 0.0,
        herd_share: 0.0,
    }
}

/// A workload family and its load levels.
#[derive(Clone, Debug)]
pub enum Family {
    /// Shared prefix.
    W1(W1),
    /// Chat (W3 / W4).
    Chat(Chat),
}

impl Family {
    fn with_qps(&self, qps: f64) -> Family {
        match self {
            Family::W1(w) => Family::W1(W1 { qps, ..w.clone() }),
            Family::Chat(w) => Family::Chat(Chat { qps, ..w.clone() }),
        }
    }

    fn generate(&self, seed: u64) -> Workload {
        match self {
            Family::W1(w) => w.generate(seed),
            Family::Chat(w) => w.generate(seed),
        }
    }
}

/// One table of the report: a workload at some loads, policies and staleness levels.
#[derive(Clone, Debug)]
pub struct Section {
    /// Title (e.g. "W1 shared prefix").
    pub name: String,
    /// The workload (its `qps` is overridden by `loads`).
    pub family: Family,
    /// Arrival rates.
    pub loads: Vec<f64>,
    /// Gauge delays (ms); `[0]` outside W6.
    pub delays: Vec<u64>,
    /// Policies.
    pub routers: Vec<Router>,
    /// KV capacity per backend (tokens).
    pub kv_tokens: u64,
    /// This section runs `seed_factor ×` the sweep's seeds (W6 compares runs paired by seed and
    /// wants more pairs).
    pub seed_factor: u64,
}

/// One (section, load, delay, router) cell over every seed.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Section index.
    pub section: usize,
    /// Arrival rate.
    pub qps: f64,
    /// Gauge delay (ms).
    pub delay_ms: u64,
    /// Policy.
    pub router: Router,
    /// One entry per seed.
    pub runs: Vec<Stats>,
}

/// Fleet size (routing.md §4.5: N = 8).
pub const BACKENDS: usize = 8;

/// One finished run: (section, QPS, gauge delay, router, statistics).
type Done = (usize, f64, u64, Router, Stats);

/// Runs every cell of `sections` for seeds `1..=seeds` (× each section's `seed_factor`) on
/// `threads` threads.
pub fn sweep(
    sections: &[Section],
    seeds: u64,
    scrape_interval_ms: u64,
    threads: usize,
) -> Vec<Cell> {
    // One job = one run. Jobs of one workload are consecutive and each thread keeps the last
    // workload it generated, so a workload is generated at most once per thread.
    let jobs: Vec<(usize, f64, u64, u64, Router)> = sections
        .iter()
        .enumerate()
        .flat_map(|(s, sec)| {
            sec.loads.iter().flat_map(move |&q| {
                (1..=seeds * sec.seed_factor.max(1)).flat_map(move |seed| {
                    sec.delays
                        .iter()
                        .flat_map(move |&d| sec.routers.iter().map(move |&r| (s, q, seed, d, r)))
                })
            })
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results: Vec<Vec<Done>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    let mut cache: Option<((usize, u64, u64), Workload)> = None;
                    while let Some(&(s, qps, seed, delay_ms, router)) =
                        jobs.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let Some(sec) = sections.get(s) else { continue };
                        let key = (s, qps.to_bits(), seed);
                        let work = match cache.take() {
                            Some((k, w)) if k == key => w,
                            _ => sec.family.with_qps(qps).generate(seed),
                        };
                        let scrape = Scrape {
                            interval_ms: scrape_interval_ms,
                            delay_ms,
                        };
                        let (st, _) = run(&work, router, scrape, BACKENDS, sec.kv_tokens, seed);
                        out.push((s, qps, delay_ms, router, st));
                        cache = Some((key, work));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut cells: Vec<Cell> = Vec::new();
    for (s, qps, delay_ms, router, st) in results.into_iter().flatten() {
        match cells.iter_mut().find(|c| {
            c.section == s && c.qps == qps && c.delay_ms == delay_ms && c.router == router
        }) {
            Some(c) => c.runs.push(st),
            None => cells.push(Cell {
                section: s,
                qps,
                delay_ms,
                router,
                runs: vec![st],
            }),
        }
    }
    // Report order: section, load, delay, then the section's router order.
    cells.sort_by(|a, b| {
        let pos = |c: &Cell| {
            sections
                .get(c.section)
                .and_then(|s| s.routers.iter().position(|&r| r == c.router))
                .unwrap_or(0)
        };
        (a.section, a.qps, a.delay_ms, pos(a))
            .partial_cmp(&(b.section, b.qps, b.delay_ms, pos(b)))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    cells
}

/// Mean and population standard deviation of `f` over a cell's runs.
pub fn mean_sd(runs: &[Stats], f: impl Fn(&Stats) -> f64) -> (f64, f64) {
    let n = runs.len().max(1) as f64;
    let mean = runs.iter().map(&f).sum::<f64>() / n;
    let var = runs.iter().map(|r| (f(r) - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

fn pm(runs: &[Stats], f: impl Fn(&Stats) -> f64) -> String {
    let (m, sd) = mean_sd(runs, f);
    if runs.len() > 1 {
        format!("{} ± {}", fmt_ms(m), fmt_ms(sd))
    } else {
        fmt_ms(m)
    }
}

/// The Markdown table of one section.
pub fn table(sec: &Section, cells: &[&Cell]) -> String {
    let mut s = String::new();
    let stale = sec.delays.len() > 1;
    s.push_str(&format!("### {}\n\n", sec.name));
    let mut cols = vec!["QPS"];
    if stale {
        cols.push("gauge delay ms");
    }
    cols.extend([
        "policy",
        "TTFT mean ms",
        "TTFT p50 ms",
        "TTFT p90 ms",
        "TTFT p99 ms",
        "ITL mean ms",
        "ITL p99 ms",
        "E2E p99 ms",
        "out tok/s",
        "prefix hit",
        "CV req",
        "CV prompt tok",
        "max share",
        "herd share",
        "load CV",
        "preempt",
        "affinity picks",
    ]);
    s.push_str(&format!("| {} |\n|", cols.join(" | ")));
    for c in &cols {
        s.push_str(if *c == "policy" { "---|" } else { "---:|" });
    }
    s.push('\n');
    for c in cells {
        let r = &c.runs;
        let m = |f: fn(&Stats) -> f64| mean_sd(r, f).0;
        s.push_str(&format!("| {}", c.qps));
        if stale {
            s.push_str(&format!(" | {}", c.delay_ms));
        }
        s.push_str(&format!(
            " | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} ± {:.0} | {:.1}% | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0}% |\n",
            c.router.name(),
            fmt_ms(m(|x| x.ttft_mean)),
            fmt_ms(m(|x| x.ttft_p50)),
            pm(r, |x| x.ttft_p90),
            pm(r, |x| x.ttft_p99),
            fmt_ms(m(|x| x.itl_mean)),
            fmt_ms(m(|x| x.itl_p99)),
            fmt_ms(m(|x| x.e2e_p99)),
            m(|x| x.out_tok_s),
            mean_sd(r, |x| x.out_tok_s).1,
            100.0 * m(|x| x.hit_rate),
            m(|x| x.cv_requests),
            m(|x| x.cv_tokens),
            m(|x| x.max_share),
            m(|x| x.herd_share),
            m(|x| x.load_cv),
            m(|x| x.preemptions as f64),
            100.0 * m(|x| x.affinity),
        ));
    }
    s
}

fn find<'c>(cells: &[&'c Cell], qps: f64, delay: u64, r: Router) -> Option<&'c Cell> {
    cells
        .iter()
        .copied()
        .find(|c| c.qps == qps && c.delay_ms == delay && c.router == r)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

/// The "goals" section: each §4.4 target against the sweep's numbers.
pub fn goals(sections: &[Section], cells: &[Cell]) -> String {
    let mut s = String::from("## Goals (routing.md §4.4)\n\n");
    let rr = Router::Crate(Policy::RoundRobin);
    let pa = Router::Crate(Policy::PrefixAffinity);
    let ll = Router::Crate(Policy::LeastLoad);
    for (i, sec) in sections.iter().enumerate() {
        let cs: Vec<&Cell> = cells.iter().filter(|c| c.section == i).collect();
        let mean =
            |c: Option<&Cell>, f: fn(&Stats) -> f64| c.map_or(f64::NAN, |c| mean_sd(&c.runs, f).0);
        if sec.name.starts_with("W1") {
            s.push_str(&format!(
                "**{}** — target: P90 TTFT ≥ 10× lower than round_robin, prefix hit ≥ 3× RR's and ≥ 70%, output tok/s +15%…2×. \
                 Below round_robin's capacity every policy serves the offered load and RR's P90 is one uncached \
                 prefill, so the TTFT and throughput targets can only be met where RR queues.\n\n",
                sec.name
            ));
            for &q in &sec.loads {
                for r in sec.routers.iter().filter(|r| **r != rr) {
                    let (base, cand) = (find(&cs, q, 0, rr), find(&cs, q, 0, *r));
                    if !matches!(r, Router::Crate(Policy::PrefixAffinity) | Router::Cand(_)) {
                        continue;
                    }
                    let ratio = mean(base, |x| x.ttft_p90) / mean(cand, |x| x.ttft_p90);
                    let hit = mean(cand, |x| x.hit_rate);
                    let hit_x = hit / mean(base, |x| x.hit_rate);
                    let tput = mean(cand, |x| x.out_tok_s) / mean(base, |x| x.out_tok_s) - 1.0;
                    s.push_str(&format!(
                        "- {q} QPS, {}: P90 TTFT {ratio:.1}× lower ({}), hit {:.0}% = {hit_x:.1}× RR ({}), output tok/s {:+.0}% ({})\n",
                        r.name(),
                        verdict(ratio >= 10.0),
                        hit * 100.0,
                        verdict(hit_x >= 3.0 && hit >= 0.7),
                        tput * 100.0,
                        verdict(tput >= 0.15),
                    ));
                }
            }
            s.push('\n');
        } else if sec.name.starts_with("W3") {
            s.push_str(&format!(
                "**{}** — target: no regression, within ±5% of the best balancer (least_request or p2c) on TTFT p99 and throughput.\n\n",
                sec.name
            ));
            for &q in &sec.loads {
                let best = [Policy::LeastRequest, Policy::P2c]
                    .into_iter()
                    .filter_map(|p| find(&cs, q, 0, Router::Crate(p)))
                    .min_by(|a, b| {
                        mean(Some(a), |x| x.ttft_p99).total_cmp(&mean(Some(b), |x| x.ttft_p99))
                    });
                for r in [pa, ll, Router::Cand(Candidate::Scaled)] {
                    let c = find(&cs, q, 0, r);
                    let d99 = mean(c, |x| x.ttft_p99) / mean(best, |x| x.ttft_p99) - 1.0;
                    let dt = mean(c, |x| x.out_tok_s) / mean(best, |x| x.out_tok_s) - 1.0;
                    s.push_str(&format!(
                        "- {q} QPS, {} vs {}: TTFT p99 {:+.1}%, output tok/s {:+.1}% ({})\n",
                        r.name(),
                        best.map_or("?", |b| b.router.name()),
                        d99 * 100.0,
                        dt * 100.0,
                        verdict(d99 <= 0.05 && dt >= -0.05),
                    ));
                }
            }
            s.push('\n');
        } else if sec.name.starts_with("W4") {
            s.push_str(&format!(
                "**{}** — target: best policy's P99 TTFT ≥ 2× better than round_robin; p2c / least-token beat RR and random.\n\n",
                sec.name
            ));
            for &q in &sec.loads {
                let base = mean(find(&cs, q, 0, rr), |x| x.ttft_p99);
                let rand = mean(find(&cs, q, 0, Router::Random), |x| x.ttft_p99);
                let best = sec
                    .routers
                    .iter()
                    .filter_map(|&r| find(&cs, q, 0, r))
                    .min_by(|a, b| {
                        mean(Some(a), |x| x.ttft_p99).total_cmp(&mean(Some(b), |x| x.ttft_p99))
                    });
                let p2c = mean(find(&cs, q, 0, Router::Crate(Policy::P2c)), |x| x.ttft_p99);
                let b99 = mean(best, |x| x.ttft_p99);
                s.push_str(&format!(
                    "- {q} QPS: best {} P99 TTFT {} vs RR {} = {:.1}× ({}); p2c {} vs RR {} / random {} ({})\n",
                    best.map_or("?", |b| b.router.name()),
                    fmt_ms(b99),
                    fmt_ms(base),
                    base / b99,
                    verdict(base / b99 >= 2.0),
                    fmt_ms(p2c),
                    fmt_ms(base),
                    fmt_ms(rand),
                    verdict(p2c < base && p2c < rand),
                ));
            }
            s.push('\n');
        } else if sec.name.starts_with("W6") {
            let metric: fn(&Stats) -> f64 = if sec.name.contains("W1") {
                |x| x.ttft_p90
            } else {
                |x| x.ttft_p99
            };
            let mname = if sec.name.contains("W1") {
                "P90"
            } else {
                "P99"
            };
            s.push_str(&format!(
                "**{}** — target: {mname} TTFT degradation ≤ 20% at 200 ms–1 s gauge delay vs fresh (delay 0).\n\n",
                sec.name
            ));
            s.push_str(
                "Degradation is paired by seed (stale run vs fresh run on the same trace), mean ± sd \
                 over seeds; the unpaired means in the table swing more than this between seeds.\n\n",
            );
            for &q in &sec.loads {
                for &r in &sec.routers {
                    let Some(fresh) = find(&cs, q, 0, r) else {
                        continue;
                    };
                    let paired = |d: u64| -> Option<(f64, f64)> {
                        let stale = find(&cs, q, d, r)?;
                        let ratios: Vec<f64> = stale
                            .runs
                            .iter()
                            .filter_map(|st| {
                                let f = fresh.runs.iter().find(|x| x.seed == st.seed)?;
                                Some(metric(st) / metric(f) - 1.0)
                            })
                            .collect();
                        let n = ratios.len().max(1) as f64;
                        let m = ratios.iter().sum::<f64>() / n;
                        let sd = (ratios.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
                        Some((m, sd))
                    };
                    let parts: Vec<String> = sec
                        .delays
                        .iter()
                        .filter(|&&d| d > 0)
                        .filter_map(|&d| {
                            paired(d).map(|(m, sd)| {
                                format!("{d} ms {:+.0}% ± {:.0}", m * 100.0, sd * 100.0)
                            })
                        })
                        .collect();
                    let worst = sec
                        .delays
                        .iter()
                        .filter(|&&d| d >= 200)
                        .filter_map(|&d| paired(d).map(|p| p.0))
                        .fold(f64::NEG_INFINITY, f64::max);
                    s.push_str(&format!(
                        "- {q} QPS, {}: fresh {mname} {}; vs fresh: {} ({})\n",
                        r.name(),
                        fmt_ms(mean(Some(fresh), metric)),
                        parts.join(", "),
                        verdict(worst <= 0.20),
                    ));
                }
            }
            s.push('\n');
        }
    }
    s
}
