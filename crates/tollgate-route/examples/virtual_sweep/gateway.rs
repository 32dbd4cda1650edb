//! The gateway side of a virtual run: tollgate-route's real `pick` with real in-flight guards and
//! prefix table, a modelled control thread that publishes (possibly stale) load snapshots from
//! the engines' gauges, and the harness-only routers (`random`, ablations, candidate formulas).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tollgate_route::load::{BackendLoad, LoadSnapshot, Scraped};
use tollgate_route::model::{Member, Policy, Pool, Settings, seed_of};
use tollgate_route::pick::{Ask, Env, Local, pick};
use tollgate_route::prefix::PrefixTable;
use tollgate_route::state::{BackendState, InflightGuard};
use tollgate_simfleet::engine::{Gauges, SimRequest, VirtualRouter};

use crate::report::cv;
use crate::workload::{Rng, Workload};

/// A routing policy under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// A tollgate-route policy, through `pick`.
    Crate(Policy),
    /// Uniformly random (harness baseline, not in the crate).
    Random,
    /// The crate's `least_load`, but published snapshots carry `inflight_at_scrape = MAX`, which
    /// turns its dead reckoning off: argmin on the scraped gauges alone (ablation for W6).
    LeastLoadNoDr,
    /// Candidate `least_load` formula (harness prototype of a suggested crate change, see
    /// [`Gateway::least_load_cand`]): the crate's score, but its queue term is the backend's
    /// *outstanding* requests (waiting + running) dead-reckoned with the signed in-flight change
    /// since the gauges were taken, and its KV term is dead-reckoned signed too.
    LeastLoadCand,
    /// A candidate prefix-affinity formula prototyped here (see [`Candidate`]).
    Cand(Candidate),
}

/// Candidate prefix-affinity formulas (harness prototypes). All three score
/// `cost(b) = load(b) + prompt − credit(b)` and take the argmin (random start for ties), with the
/// crate's prefix table, block hashes and credit (`credit(b)` = prompt tokens covered by the
/// deepest recorded match, for that match's backend only), and record the pick in the table as
/// the crate does. They were written against the crate's first formula, `load(b) =
/// tokens_in_flight(b)` (+ other gateways' queue), which yielded the prefix as soon as its owner
/// had one more request in flight than the least-loaded backend; the crate now follows the owner
/// while `inflight(owner) ≤ affinity_ratio · min + affinity_slack`. They stay as comparisons:
/// a continuous cost instead of that threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// `load(b) = REQ_TOKENS · inflight_requests(b)`: a request in flight weighs a fixed
    /// [`REQ_TOKENS`] instead of its prompt + max_tokens.
    Requests,
    /// `load(b) = REQ_TOKENS · tokens_in_flight(b) / t̄`, with `t̄` the pool's mean in-flight
    /// tokens per in-flight request: [`Candidate::Requests`] where requests are alike,
    /// size-aware (a 32k-token prompt weighs several mean requests) where they are not. Same
    /// counters as the crate has today.
    Scaled,
    /// `load(b) = pending_prefill(b) + DECODE_TOKENS · decoding(b)`, where `pending_prefill` is
    /// the uncached prompt tokens of requests routed to `b` that have not produced their first
    /// token and `decoding` the requests past it — what a third per-worker counter (prefill
    /// tokens, released at first token; routing.md §2.8) would give the crate.
    Prefill,
}

/// [`Candidate::Requests`] / [`Candidate::Scaled`]: prompt tokens one mean in-flight request
/// weighs against the prefix credit. A cached prefix of `c` tokens holds its backend until that
/// backend has `c / REQ_TOKENS` more (mean) requests in flight than the least-loaded one (W1:
/// ≈ 47): lowering it makes affinity stickier (more hits, hotter hot spots), raising it makes it
/// yield to load sooner. 64, 128, 256 and 512 were tried on W1, W1h and W4: 64–128 give the most
/// hits, 256–512 the fewest P99 outliers. The crate's first formula was in effect
/// `REQ_TOKENS` ≈ 7,800 on W1 (prompt + output of a mean request).
pub const REQ_TOKENS: f64 = 128.0;

/// [`Candidate::Prefill`]: prefill-token equivalent of one decoding request. From the §3.2 step
/// model a decoding sequence at ~8k context adds `ε + β + γ·ctx` ≈ 0.45 ms per step, ≈ 14 prefill
/// tokens (β = 0.032 ms), and a new request shares a few steps with it before its first token.
pub const DECODE_TOKENS: f64 = 64.0;

impl Router {
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Router::Crate(p) => p.as_str(),
            Router::Random => "random",
            Router::LeastLoadNoDr => "least_load_no_dr",
            Router::LeastLoadCand => "least_load_cand",
            Router::Cand(Candidate::Requests) => "pa_requests_cand",
            Router::Cand(Candidate::Scaled) => "pa_scaled_cand",
            Router::Cand(Candidate::Prefill) => "pa_prefill_cand",
        }
    }

    /// Parses a report name.
    pub fn from_name(s: &str) -> Option<Router> {
        [
            Router::Random,
            Router::LeastLoadNoDr,
            Router::LeastLoadCand,
            Router::Cand(Candidate::Requests),
            Router::Cand(Candidate::Scaled),
            Router::Cand(Candidate::Prefill),
        ]
        .into_iter()
        .find(|r| r.name() == s)
        .or_else(|| Policy::from_name(s).map(Router::Crate))
    }
}

/// The baselines of routing.md §4.3 that the crate has, plus `random`.
pub const BASELINES: [Router; 6] = [
    Router::Random,
    Router::Crate(Policy::RoundRobin),
    Router::Crate(Policy::LeastRequest),
    Router::Crate(Policy::P2c),
    Router::Crate(Policy::LeastLoad),
    Router::Crate(Policy::PrefixAffinity),
];

/// Control-thread model: when and how late the scraped gauges are.
#[derive(Clone, Copy, Debug)]
pub struct Scrape {
    /// Publish period (ms of virtual time).
    pub interval_ms: u64,
    /// Age of the gauges when published (ms).
    pub delay_ms: u64,
}

/// One gauge sample the control thread took, with the gateway's in-flight counts at that moment.
#[derive(Clone, Debug)]
struct Sample {
    t_us: u64,
    gauges: Vec<Gauges>,
    inflight: Vec<(u32, u64)>,
}

/// The gateway as a [`VirtualRouter`]: real `pick`, real guards, modelled control thread.
pub struct Gateway<'w> {
    router: Router,
    settings: Settings,
    pool: Pool,
    states: Vec<Arc<BackendState>>,
    caps: Vec<u32>,
    prefix: PrefixTable,
    local: Local,
    rng: Rng,
    snapshot: LoadSnapshot,
    scrape: Scrape,
    tick_us: u64,
    next_tick: u64,
    next_publish: u64,
    history: VecDeque<Sample>,
    /// Prefix counters of the last published sample, per backend (for `prefix_hit`).
    last_counters: Vec<(u64, u64)>,
    guards: HashMap<u64, InflightGuard>,
    work: &'w Workload,
    /// Requests arriving before this (µs) are warm-up: not in latency statistics.
    measure_from_us: u64,
    /// End of the throughput window (the last arrival).
    measure_to_us: u64,
    /// Output tokens emitted in `[measure_from_us, measure_to_us)`.
    pub window_tokens: u64,
    last_token: HashMap<u64, u64>,
    /// Inter-token gaps (µs) of measured requests.
    pub itl_us: Vec<u32>,
    /// Σ over ticks of the CV of `running + waiting` across backends, and the tick count.
    load_cv: (f64, u64),
    /// Picks that went to a backend credited with a prefix match.
    pub affinity_picks: u64,
    /// Picks per backend since the last publish, and Σ max / Σ total over publish intervals
    /// with at least two picks (herding: every pick of an interval on one backend → 1).
    interval_picks: Vec<u32>,
    herd: (u64, u64),
    hashes: Vec<u64>,
    /// Candidate counters per backend: uncached prompt tokens before first token, and requests
    /// past their first token.
    pending_prefill: Vec<u64>,
    decoding: Vec<u32>,
    /// Per request: (backend, pending prefill tokens it added, past first token).
    inflight: HashMap<u64, (usize, u64, bool)>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl<'w> Gateway<'w> {
    /// A gateway in front of `backends` engines routing `work` with `router`.
    pub fn new(
        router: Router,
        backends: usize,
        scrape: Scrape,
        work: &'w Workload,
        measure_from_us: u64,
        seed: u64,
    ) -> Gateway<'w> {
        let settings = Settings {
            scrape_interval_ms: scrape.interval_ms,
            ..Settings::default()
        };
        let policy = match router {
            Router::Crate(p) => p,
            Router::LeastLoadNoDr => Policy::LeastLoad,
            Router::Random | Router::LeastLoadCand | Router::Cand(_) => Policy::RoundRobin,
        };
        let pool = Pool {
            name: "fleet".into(),
            policy,
            tiers: vec![
                (0..backends)
                    .map(|backend| Member { backend, weight: 1 })
                    .collect(),
            ],
            model: None,
            seed: seed_of("fleet"),
        };
        let states = (0..backends)
            .map(|b| Arc::new(BackendState::new(b as u16, Arc::from(format!("b{b}")), 1)))
            .collect();
        let interval_us = scrape.interval_ms.max(1) * 1000;
        Gateway {
            router,
            prefix: PrefixTable::new(settings.prefix_table_slots),
            settings,
            pool,
            states,
            caps: vec![0; backends],
            local: Local::new(seed),
            rng: Rng::new(seed, 7),
            snapshot: LoadSnapshot {
                generation: 1,
                backends: vec![BackendLoad::default(); backends],
                ..LoadSnapshot::default()
            }
            .seal(),
            scrape,
            tick_us: gcd(interval_us, scrape.delay_ms * 1000),
            next_tick: 0,
            next_publish: 0,
            history: VecDeque::new(),
            last_counters: vec![(0, 0); backends],
            guards: HashMap::new(),
            work,
            measure_from_us,
            measure_to_us: work.reqs.last().map_or(0, |r| r.0),
            window_tokens: 0,
            last_token: HashMap::new(),
            itl_us: Vec::new(),
            load_cv: (0.0, 0),
            affinity_picks: 0,
            interval_picks: vec![0; backends],
            herd: (0, 0),
            hashes: Vec::new(),
            pending_prefill: vec![0; backends],
            decoding: vec![0; backends],
            inflight: HashMap::new(),
        }
    }

    /// Share of picks that went to the interval's most-picked backend, over publish intervals
    /// with at least two picks: 1 = every interval herded onto one backend; round-robin with
    /// `k ≤ n` picks per interval gives `1/k`.
    pub fn herd_share(&self) -> f64 {
        self.herd.0 as f64 / self.herd.1.max(1) as f64
    }

    /// Mean over scrape ticks of the CV of `running + waiting` across backends (herding shows
    /// as a high value).
    pub fn load_cv(&self) -> f64 {
        self.load_cv.0 / self.load_cv.1.max(1) as f64
    }

    fn measured(&self, id: u64) -> bool {
        self.work
            .reqs
            .get(id as usize)
            .is_some_and(|r| r.0 >= self.measure_from_us)
    }

    /// Publishes the newest sample at least `delay` old (the oldest one early in the run).
    fn publish(&mut self, now_us: u64) {
        let due = now_us.saturating_sub(self.scrape.delay_ms * 1000);
        let Some(s) = self
            .history
            .iter()
            .rev()
            .find(|s| s.t_us <= due)
            .or_else(|| self.history.front())
        else {
            return;
        };
        for (b, (g, &(r, tok))) in s.gauges.iter().zip(&s.inflight).enumerate() {
            let (q0, h0) = self.last_counters.get(b).copied().unwrap_or((0, 0));
            let (q1, h1) = (g.prefix_queries_tokens, g.prefix_hits_tokens);
            let prefix_hit = (q1 > q0).then(|| (h1 - h0) as f64 / (q1 - q0) as f64);
            if let Some(c) = self.last_counters.get_mut(b) {
                *c = (q1, h1);
            }
            if let Some(l) = self.snapshot.backends.get_mut(b) {
                l.scraped = Some(Scraped {
                    queue: Some(f64::from(g.waiting)),
                    running: Some(f64::from(g.running)),
                    kv_frac: Some(g.kv_usage),
                    kv_capacity_tokens: Some(g.kv_capacity_tokens as f64),
                    prefix_hit,
                    prefix_counters: Some((q1 as f64, h1 as f64)),
                    preemptions: Some(g.preemptions as f64),
                });
                l.scraped_at_ms = now_us / 1000;
                (l.inflight_at_scrape, l.inflight_tokens_at_scrape) =
                    if self.router == Router::LeastLoadNoDr {
                        (u32::MAX, u64::MAX)
                    } else {
                        (r, tok)
                    };
            }
        }
        // The control thread seals every snapshot it publishes (the packed pick-time view).
        self.snapshot = std::mem::take(&mut self.snapshot).seal();
    }

    /// Estimated queue at `b` (scraped waiting + what the gateway added since), like the crate's
    /// saturation gate reads it.
    fn est_queue(&self, b: usize, now_ms: u64) -> Option<f64> {
        let (s, l) = self
            .snapshot
            .fresh(1, b, now_ms, self.settings.stale_after_ms)?;
        let r = self.states.get(b).map_or(0, |st| st.inflight());
        Some(s.queue? + (f64::from(r) - f64::from(l.inflight_at_scrape)).max(0.0))
    }

    /// [`Router::LeastLoadCand`]: `w_q·o/max_o + w_kv·kv + w_t·t/max_t` over the unsaturated
    /// backends (lower is better), as the crate's `least_load`, except
    /// - `o = max(0, waiting + running + r_now − r_at_scrape)`: outstanding requests at the
    ///   backend, with the gateway's in-flight change since the gauges were taken counted with its
    ///   sign — requests that finished since leave the estimate too. With one gateway this is
    ///   `r_now` plus the other gateways' load as of the scrape, exact at any staleness; the
    ///   crate's `waiting + max(0, r_now − r_at_scrape)` lets finishes cancel adds and keeps a
    ///   stale queue.
    /// - `kv = kv_at_scrape + (t_now − t_at_scrape) / capacity`, signed, clamped to 0..1.
    ///
    /// Unknown (stale) gauges count as saturated (1), as in the crate.
    fn least_load_cand(&mut self, now_ms: u64) -> usize {
        let s = &self.settings;
        let n = self.states.len();
        let est: Vec<(Option<f64>, Option<f64>, u64, bool)> = (0..n)
            .map(|b| {
                let (r, t) = self.states.get(b).map_or((0, 0), |st| st.load());
                let open = self
                    .est_queue(b, now_ms)
                    .is_none_or(|q| q < s.saturation_queue);
                let Some((sc, l)) = self.snapshot.fresh(1, b, now_ms, s.stale_after_ms) else {
                    return (None, None, t, open);
                };
                let dr = f64::from(r) - f64::from(l.inflight_at_scrape);
                let o = match (sc.queue, sc.running) {
                    (Some(q), Some(run)) => Some((q + run + dr).max(0.0)),
                    _ => None,
                };
                let kv = sc.kv_frac.map(|kv| match sc.kv_capacity_tokens {
                    Some(cap) if cap > 0.0 => {
                        let dt = t as f64 - l.inflight_tokens_at_scrape as f64;
                        (kv + dt / cap).clamp(0.0, 1.0)
                    }
                    _ => kv,
                });
                (o, kv, t, open)
            })
            .collect();
        let any_open = est.iter().any(|e| e.3);
        let max_o = est.iter().filter_map(|e| e.0).fold(0.0, f64::max);
        let max_t = est.iter().map(|e| e.2).max().unwrap_or(0);
        let start = (self.rng.next_u64() % n as u64) as usize;
        let mut best = (f64::INFINITY, 0usize);
        for k in 0..n {
            let b = (start + k) % n;
            let Some(&(o, kv, t, open)) = est.get(b) else {
                continue;
            };
            if any_open && !open {
                continue;
            }
            let on = match o {
                Some(o) if max_o > 0.0 => o / max_o,
                Some(_) => 0.0,
                None => 1.0,
            };
            let tn = if max_t > 0 {
                t as f64 / max_t as f64
            } else {
                0.0
            };
            let score =
                s.weight_queue * on + s.weight_kv * kv.unwrap_or(1.0) + s.weight_tokens * tn;
            if score < best.0 {
                best = (score, b);
            }
        }
        best.1
    }

    /// A [`Candidate`] pick; returns (backend, credited tokens).
    fn candidate(
        &mut self,
        kind: Candidate,
        now_ms: u64,
        json: &[u8],
        prompt: u64,
    ) -> (usize, u64) {
        let s = &self.settings;
        tollgate_route::prefix::block_hashes(
            json,
            s.prefix_block_bytes,
            s.prefix_max_blocks,
            self.pool.seed,
            &mut self.hashes,
        );
        let block_tokens =
            (s.prefix_block_bytes as u64 / tollgate_route::pick::BYTES_PER_TOKEN).max(1);
        let n = self.states.len();
        let start = (self.rng.next_u64() % n as u64) as usize;
        let open: Vec<bool> = (0..n)
            .map(|b| {
                self.est_queue(b, now_ms)
                    .is_none_or(|q| q < s.saturation_queue)
            })
            .collect();
        let any_open = open.iter().any(|&o| o);
        let (sum_t, sum_r) = self.states.iter().fold((0u64, 0u64), |a, st| {
            (a.0 + st.inflight_tokens(), a.1 + u64::from(st.inflight()))
        });
        let mean_t = if sum_r > 0 {
            sum_t as f64 / sum_r as f64
        } else {
            1.0
        };
        let deepest = self.prefix.longest(&self.hashes);
        let mut best = (f64::INFINITY, 0usize, 0u64);
        for k in 0..n {
            let b = (start + k) % n;
            let Some(st) = self.states.get(b) else {
                continue;
            };
            if any_open && !open.get(b).copied().unwrap_or(true) {
                continue;
            }
            let credit = match deepest {
                Some((m, id)) if id == st.id => (m as u64 * block_tokens).min(prompt),
                _ => 0,
            };
            let load = match kind {
                Candidate::Requests => REQ_TOKENS * f64::from(st.inflight()),
                Candidate::Scaled => REQ_TOKENS * st.inflight_tokens() as f64 / mean_t,
                Candidate::Prefill => {
                    self.pending_prefill.get(b).copied().unwrap_or(0) as f64
                        + DECODE_TOKENS * f64::from(self.decoding.get(b).copied().unwrap_or(0))
                }
            };
            let cost = load + (prompt - credit) as f64;
            if cost < best.0 {
                best = (cost, b, credit);
            }
        }
        if let Some(st) = self.states.get(best.1) {
            self.prefix.record(&self.hashes, st.id);
        }
        (best.1, best.2)
    }
}

impl VirtualRouter for Gateway<'_> {
    fn route(&mut self, now_us: u64, _gauges: &[Gauges], req: &SimRequest) -> usize {
        let (json, out) = self
            .work
            .reqs
            .get(req.id as usize)
            .and_then(|&(_, p, out)| Some((&self.work.prompts.get(p)?.json, out)))
            .map_or((&[][..], 0), |(j, o)| (j.as_slice(), o));
        let prompt_tokens = json.len() as u64 / tollgate_route::pick::BYTES_PER_TOKEN;
        let mut credit = 0;
        let backend = match self.router {
            Router::Random => (self.rng.next_u64() % self.states.len() as u64) as usize,
            Router::LeastLoadCand => self.least_load_cand(now_us / 1000),
            Router::Cand(kind) => {
                let (b, c) = self.candidate(kind, now_us / 1000, json, prompt_tokens);
                credit = c;
                if c > 0 {
                    self.affinity_picks += 1;
                }
                b
            }
            Router::Crate(_) | Router::LeastLoadNoDr => {
                let env = Env {
                    now_ms: now_us / 1000,
                    generation: 1,
                    settings: &self.settings,
                    states: &self.states,
                    caps: &self.caps,
                    load: &self.snapshot,
                    prefix: &self.prefix,
                };
                let ask = Ask {
                    tried: &[],
                    prompt: json,
                    prompt_tokens,
                    output_tokens: u64::from(out),
                };
                let p = pick(0, &self.pool, 1, &env, &ask, &mut self.local);
                if p.is_some_and(|p| p.matched_blocks > 0) {
                    self.affinity_picks += 1;
                }
                p.map_or(0, |p| p.backend)
            }
        };
        if let Some(n) = self.interval_picks.get_mut(backend) {
            *n += 1;
        }
        if let Some(st) = self.states.get(backend) {
            let guard = st.start(0, prompt_tokens + u64::from(out));
            self.guards.insert(req.id, guard);
        }
        let pending = prompt_tokens - credit;
        if let Some(p) = self.pending_prefill.get_mut(backend) {
            *p += pending;
        }
        self.inflight.insert(req.id, (backend, pending, false));
        backend
    }

    fn on_first_token(&mut self, id: u64, _backend: usize, _t_us: u64) {
        if let Some((b, pending, started)) = self.inflight.get_mut(&id) {
            *started = true;
            if let Some(p) = self.pending_prefill.get_mut(*b) {
                *p -= *pending;
            }
            if let Some(d) = self.decoding.get_mut(*b) {
                *d += 1;
            }
        }
    }

    fn on_token(&mut self, id: u64, _backend: usize, _seq: u32, t_us: u64) {
        if (self.measure_from_us..self.measure_to_us).contains(&t_us) {
            self.window_tokens += 1;
        }
        if !self.measured(id) {
            return;
        }
        if let Some(prev) = self.last_token.insert(id, t_us) {
            self.itl_us
                .push((t_us - prev).min(u64::from(u32::MAX)) as u32);
        }
    }

    fn on_finish(&mut self, id: u64, _backend: usize, _t_us: u64) {
        self.guards.remove(&id);
        match self.inflight.remove(&id) {
            Some((b, _, true)) => {
                if let Some(d) = self.decoding.get_mut(b) {
                    *d -= 1;
                }
            }
            Some((b, pending, false)) => {
                if let Some(p) = self.pending_prefill.get_mut(b) {
                    *p -= pending;
                }
            }
            None => {}
        }
        self.last_token.remove(&id);
    }

    fn next_tick_us(&self) -> Option<u64> {
        Some(self.next_tick)
    }

    fn on_tick(&mut self, now_us: u64, gauges: &[Gauges]) {
        self.next_tick = now_us + self.tick_us;
        self.history.push_back(Sample {
            t_us: now_us,
            gauges: gauges.to_vec(),
            inflight: self
                .states
                .iter()
                .map(|s| (s.inflight(), s.inflight_tokens()))
                .collect(),
        });
        let keep_from = now_us.saturating_sub(self.scrape.delay_ms * 1000 + self.tick_us);
        while self.history.len() > 1 && self.history.front().is_some_and(|s| s.t_us < keep_from) {
            self.history.pop_front();
        }
        if now_us >= self.next_publish {
            self.next_publish = now_us + self.scrape.interval_ms.max(1) * 1000;
            self.publish(now_us);
            let total: u32 = self.interval_picks.iter().sum();
            if total >= 2 {
                let max = self.interval_picks.iter().copied().max().unwrap_or(0);
                self.herd.0 += u64::from(max);
                self.herd.1 += u64::from(total);
            }
            self.interval_picks.iter_mut().for_each(|n| *n = 0);
            let loads: Vec<f64> = gauges
                .iter()
                .map(|g| f64::from(g.running + g.waiting))
                .collect();
            self.load_cv.0 += cv(&loads);
            self.load_cv.1 += 1;
        }
    }
}
