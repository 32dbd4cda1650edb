//! Backend selection: tier choice (health and saturation), then the pool's policy. Everything a
//! pick reads is either immutable (config), one atomic load away (the load snapshot the caller
//! loaded), or a sum of per-worker atomic slots; everything it writes is this worker's own
//! state ([`Local`]) or the shared prefix table (relaxed stores). No lock, no allocation after
//! warm-up.

use std::sync::Arc;

use crate::load::LoadSnapshot;
use crate::model::{Policy, Pool, Settings};
use crate::prefix::{PrefixTable, block_hashes};
use crate::state::BackendState;

/// Bytes of prompt JSON per token, for turning prefix blocks into tokens.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Everything shared a pick reads.
pub struct Env<'a> {
    /// Router clock (ms, monotonic).
    pub now_ms: u64,
    /// Config generation (the load snapshot must match it to count).
    pub generation: u64,
    /// Routing settings.
    pub settings: &'a Settings,
    /// Backend states by config backend index.
    pub states: &'a [Arc<BackendState>],
    /// Per backend: most in-flight requests before it counts as saturated (0 = no cap).
    pub caps: &'a [u32],
    /// The control thread's scraped load.
    pub load: &'a LoadSnapshot,
    /// Shared prefix table.
    pub prefix: &'a PrefixTable,
}

/// The request, as a pick sees it.
pub struct Ask<'a> {
    /// Backends already tried by this request (a retry goes elsewhere).
    pub tried: &'a [usize],
    /// The prompt's raw JSON bytes (`messages` or `prompt`), for prefix affinity.
    pub prompt: &'a [u8],
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Expected output tokens.
    pub output_tokens: u64,
}

/// A worker's own selection state.
#[derive(Debug, Default)]
pub struct Local {
    generation: u64,
    rr: Vec<usize>,
    swrr: Vec<Vec<i64>>,
    rng: u64,
    hashes: Vec<u64>,
    cand: Vec<Cand>,
}

/// A candidate and its load, read once per pick.
#[derive(Clone, Copy, Debug)]
struct Cand {
    backend: usize,
    weight: u32,
    pos: usize,
    /// Gateway in-flight requests (all workers).
    inflight: u32,
    /// Gateway in-flight estimated tokens.
    tokens: u64,
    /// Estimated queue now (`None` = unknown).
    queue: Option<f64>,
    /// Estimated outstanding requests (waiting + running) now (`None` = unknown).
    outstanding: Option<f64>,
    /// Estimated KV usage now (`None` = unknown).
    kv: Option<f64>,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Chosen backend (config index).
    pub backend: usize,
    /// Tier it came from.
    pub tier: usize,
    /// Prefix blocks the chosen backend was credited with (prefix affinity), 0 otherwise.
    pub matched_blocks: u32,
    /// No healthy backend was left: the pick ignored health (fail open).
    pub fail_open: bool,
}

impl Local {
    /// State for worker `seed` (seeds the random source; distinct per worker).
    pub fn new(seed: u64) -> Local {
        Local {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            ..Local::default()
        }
    }

    /// Next random number (xorshift64*).
    pub fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn reset_for(&mut self, generation: u64, pools: usize) {
        if self.generation != generation || self.rr.len() < pools {
            self.generation = generation;
            self.rr = vec![0; pools];
            self.swrr = vec![Vec::new(); pools];
        }
    }
}

/// The packed scrape of backend `b`, if the snapshot belongs to this config generation.
fn compact(env: &Env<'_>, b: usize) -> Option<crate::load::Compact> {
    if env.load.generation != env.generation {
        return None;
    }
    match env.load.compact.get(b) {
        Some(c) => Some(*c),
        None => env.load.backends.get(b).map(crate::load::Compact::of),
    }
}

/// Build a candidate: its in-flight counts, and its estimated queue and KV usage now — the
/// scraped values plus what the gateway added since the scrape (dead reckoning); `None` =
/// unknown (no fresh scrape).
fn cand(env: &Env<'_>, backend: usize, weight: u32, pos: usize) -> Cand {
    let c = compact(env, backend);
    cand_with(env, backend, weight, pos, c.as_ref())
}

fn cand_with(
    env: &Env<'_>,
    backend: usize,
    weight: u32,
    pos: usize,
    c: Option<&crate::load::Compact>,
) -> Cand {
    let (r_now, t_now) = env.states.get(backend).map_or((0, 0), |st| st.load());
    let (queue, outstanding, kv) = estimate_with(env, c, r_now, t_now);
    Cand {
        backend,
        weight,
        pos,
        inflight: r_now,
        tokens: t_now,
        queue,
        outstanding,
        kv,
    }
}

/// A healthy member's candidate view (one read of its packed scrape), or `None` when it is
/// ejected or probed down.
fn healthy_cand(env: &Env<'_>, backend: usize, weight: u32, pos: usize) -> Option<Cand> {
    if env
        .states
        .get(backend)
        .is_some_and(|s| s.ejected(env.now_ms))
    {
        return None;
    }
    let c = compact(env, backend);
    if c.is_some_and(|c| c.probe_down) {
        return None;
    }
    Some(cand_with(env, backend, weight, pos, c.as_ref()))
}

/// Dead reckoning with sign: what the gateway started since the scrape adds, what finished
/// since subtracts (a drained queue reads as drained, not as its old value). Returns
/// (waiting, waiting + running, KV usage), each `None` when unknown or stale.
fn estimate_with(
    env: &Env<'_>,
    c: Option<&crate::load::Compact>,
    r_now: u32,
    t_now: u64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let Some(c) = c else {
        return (None, None, None);
    };
    if c.at_ms == u64::MAX || env.now_ms.saturating_sub(c.at_ms) > env.settings.stale_after_ms {
        return (None, None, None);
    }
    let dr = f64::from(r_now) - f64::from(c.inflight_at);
    let q = (!c.queue.is_nan()).then(|| (c.queue + dr).max(0.0));
    let o = (!c.queue.is_nan()).then(|| {
        let run = if c.running.is_nan() { 0.0 } else { c.running };
        (c.queue + run + dr).max(0.0)
    });
    let kv = (!c.kv.is_nan()).then(|| {
        if c.capacity > 0.0 {
            let dt = t_now as f64 - c.tokens_at as f64;
            (c.kv + dt / c.capacity).clamp(0.0, 1.0)
        } else {
            c.kv
        }
    });
    (q, o, kv)
}

fn saturated(env: &Env<'_>, c: &Cand) -> bool {
    let cap = env.caps.get(c.backend).copied().unwrap_or(0);
    (cap > 0 && c.inflight >= cap)
        || matches!(c.queue, Some(q) if q >= env.settings.saturation_queue)
}

/// Fill `local.cand` with the candidates: the first tier with a healthy unsaturated backend
/// (only those), else the first tier with a healthy one, else every untried member of the first
/// tier that has one (fail open). Returns (tier, fail_open).
fn candidates(
    pool: &Pool,
    env: &Env<'_>,
    ask: &Ask<'_>,
    local: &mut Local,
) -> Option<(usize, bool)> {
    let cand = &mut local.cand;
    let untried = |b: usize| !ask.tried.contains(&b);
    // Pass 1 and 2.
    for want_unsaturated in [true, false] {
        let mut pos = 0;
        for (t, tier) in pool.tiers.iter().enumerate() {
            cand.clear();
            for m in tier {
                if untried(m.backend)
                    && let Some(c) = healthy_cand(env, m.backend, m.weight.max(1), pos)
                    && (!want_unsaturated || !saturated(env, &c))
                {
                    cand.push(c);
                }
                pos += 1;
            }
            if !cand.is_empty() {
                return Some((t, false));
            }
        }
    }
    // Pass 3: nothing healthy is left; trying beats refusing.
    let mut pos = 0;
    for (t, tier) in pool.tiers.iter().enumerate() {
        cand.clear();
        for m in tier {
            if untried(m.backend) {
                cand.push(self::cand(env, m.backend, m.weight.max(1), pos));
            }
            pos += 1;
        }
        if !cand.is_empty() {
            return Some((t, true));
        }
    }
    None
}

/// Pick a backend of `pool` (index `pool_idx` among `pools`) for `ask`.
pub fn pick(
    pool_idx: usize,
    pool: &Pool,
    pools: usize,
    env: &Env<'_>,
    ask: &Ask<'_>,
    local: &mut Local,
) -> Option<Pick> {
    local.reset_for(env.generation, pools);
    if let Some(p) = fast_path(pool_idx, pool, env, ask, local) {
        return Some(p);
    }
    let (tier, fail_open) = candidates(pool, env, ask, local)?;
    let n = local.cand.len();
    let mut matched_blocks = 0u32;
    let chosen = if n == 1 {
        local.cand[0]
    } else {
        match pool.policy {
            Policy::RoundRobin => {
                let c = local.rr.get(pool_idx).copied().unwrap_or(0);
                if let Some(r) = local.rr.get_mut(pool_idx) {
                    *r = r.wrapping_add(1);
                }
                local.cand[c % n]
            }
            Policy::Weighted => weighted(pool_idx, pool, local),
            Policy::LeastRequest => {
                let start = (local.rand() % n as u64) as usize;
                argmin(&local.cand, start, |c| {
                    env.states
                        .get(c.backend)
                        .map_or(0.0, |s| f64::from(s.inflight()))
                })
            }
            Policy::P2c => {
                let i = (local.rand() % n as u64) as usize;
                let mut j = (local.rand() % (n as u64 - 1)) as usize;
                if j >= i {
                    j += 1;
                }
                let (a, b) = (local.cand[i], local.cand[j]);
                if (b.inflight, b.tokens) < (a.inflight, a.tokens) {
                    b
                } else {
                    a
                }
            }
            Policy::LeastLoad => least_load(env, local),
            Policy::PrefixAffinity => {
                let (c, m) = prefix_affinity(pool, env, ask, local);
                matched_blocks = m;
                c
            }
        }
    };
    Some(Pick {
        backend: chosen.backend,
        tier,
        matched_blocks,
        fail_open,
    })
}

/// Policies that look at one or two members (round-robin, p2c) first try tier 0 without reading
/// every member's load: the member(s) they would pick, if usable (untried, healthy,
/// unsaturated). Anything unusable falls back to the full candidate scan, which gives the same
/// decisions as if the fast path did not exist.
fn fast_path(
    pool_idx: usize,
    pool: &Pool,
    env: &Env<'_>,
    ask: &Ask<'_>,
    local: &mut Local,
) -> Option<Pick> {
    let tier = pool.tiers.first()?;
    let n = tier.len();
    if n < 2 {
        return None;
    }
    let usable = |m: &crate::model::Member| -> Option<Cand> {
        if ask.tried.contains(&m.backend) {
            return None;
        }
        let c = healthy_cand(env, m.backend, m.weight.max(1), 0)?;
        (!saturated(env, &c)).then_some(c)
    };
    let chosen = match pool.policy {
        Policy::RoundRobin => {
            let cur = local.rr.get(pool_idx).copied()?;
            let c = usable(&tier[cur % n])?;
            if let Some(r) = local.rr.get_mut(pool_idx) {
                *r = r.wrapping_add(1);
            }
            c
        }
        Policy::P2c => {
            let i = (local.rand() % n as u64) as usize;
            let mut j = (local.rand() % (n as u64 - 1)) as usize;
            if j >= i {
                j += 1;
            }
            let (a, b) = (usable(&tier[i])?, usable(&tier[j])?);
            if (b.inflight, b.tokens) < (a.inflight, a.tokens) {
                b
            } else {
                a
            }
        }
        _ => return None,
    };
    Some(Pick {
        backend: chosen.backend,
        tier: 0,
        matched_blocks: 0,
        fail_open: false,
    })
}

/// The candidate with the lowest `cost`, scanning from `start` so ties rotate.
fn argmin(cand: &[Cand], start: usize, cost: impl Fn(&Cand) -> f64) -> Cand {
    let n = cand.len();
    let mut best = cand[start % n];
    let mut best_cost = cost(&best);
    for k in 1..n {
        let c = cand[(start + k) % n];
        let x = cost(&c);
        if x < best_cost {
            best = c;
            best_cost = x;
        }
    }
    best
}

/// nginx's smooth weighted round-robin over the candidates (state per member position).
fn weighted(pool_idx: usize, pool: &Pool, local: &mut Local) -> Cand {
    let members = pool.len();
    let Some(cw) = local.swrr.get_mut(pool_idx) else {
        return local.cand[0];
    };
    if cw.len() != members {
        *cw = vec![0; members];
    }
    let total: i64 = local.cand.iter().map(|c| i64::from(c.weight)).sum();
    let mut best = local.cand[0];
    let mut best_w = i64::MIN;
    for c in &local.cand {
        if let Some(w) = cw.get_mut(c.pos) {
            *w += i64::from(c.weight);
            if *w > best_w {
                best_w = *w;
                best = *c;
            }
        }
    }
    if let Some(w) = cw.get_mut(best.pos) {
        *w -= total;
    }
    best
}

/// GIE-style score, lower is better:
/// `w_q·o/max_o + w_kv·kv + w_t·tokens/max_tokens`, where `o` = outstanding requests (waiting
/// plus running) at the backend; unknown `o` and KV count as 1 (saturated, not idle); both are
/// estimated between scrapes from the gateway's own counts (dead reckoning).
fn least_load(env: &Env<'_>, local: &mut Local) -> Cand {
    let s = env.settings;
    let mut max_q = 0.0f64;
    let mut max_t = 0u64;
    for c in &local.cand {
        if let Some(q) = c.outstanding {
            max_q = max_q.max(q);
        }
        max_t = max_t.max(c.tokens);
    }
    let start = (local.rand() % local.cand.len() as u64) as usize;
    argmin(&local.cand, start, |c| {
        let (q, kv) = (c.outstanding, c.kv);
        let qn = match q {
            Some(q) if max_q > 0.0 => q / max_q,
            Some(_) => 0.0,
            None => 1.0,
        };
        let t = env
            .states
            .get(c.backend)
            .map_or(0, |st| st.inflight_tokens());
        let tn = if max_t > 0 {
            t as f64 / max_t as f64
        } else {
            0.0
        };
        s.weight_queue * qn + s.weight_kv * kv.unwrap_or(1.0) + s.weight_tokens * tn
    })
}

/// Prefix affinity bounded by load (SGLang's cache-aware rule on the gateway's own, fresh
/// in-flight counts, with a shared prefix table):
///
/// 1. Find the backend that most recently received the longest prefix of this prompt (`m` of
///    the prompt's `n` full blocks).
/// 2. If `m / n ≥ prefix_min_match` and that owner is not overloaded —
///    `inflight(owner) ≤ affinity_ratio · min_inflight + affinity_slack` over the candidates —
///    send it there (a cache hit at the backend).
/// 3. Otherwise (no useful match, or the owner is busier than the bound allows: a hot prefix
///    cannot pin one backend) pick the candidate with the least estimated tokens in flight,
///    plus the queue the backend reports beyond the gateway's own requests.
/// 4. Record the prompt's blocks under the chosen backend, so the next request with this
///    prefix follows it (and a spilled prefix follows its new home).
fn prefix_affinity(pool: &Pool, env: &Env<'_>, ask: &Ask<'_>, local: &mut Local) -> (Cand, u32) {
    let s = env.settings;
    block_hashes(
        ask.prompt,
        s.prefix_block_bytes,
        s.prefix_max_blocks,
        pool.seed,
        &mut local.hashes,
    );
    let n_blocks = local.hashes.len();
    let hit = env.prefix.longest(&local.hashes);
    let inflight = |c: &Cand| c.inflight;
    let owner = hit.and_then(|(m, id)| {
        let useful = n_blocks > 0 && (m as f64) >= s.prefix_min_match * n_blocks as f64;
        let c = local
            .cand
            .iter()
            .find(|c| env.states.get(c.backend).is_some_and(|st| st.id == id))?;
        useful.then_some((*c, m))
    });
    let chosen = match owner {
        Some((c, m)) => {
            let min = local.cand.iter().map(inflight).min().unwrap_or(0);
            let bound = s.affinity_ratio * f64::from(min) + f64::from(s.affinity_slack);
            (f64::from(inflight(&c)) <= bound).then_some((c, m as u32))
        }
        None => None,
    };
    let (chosen, matched) = match chosen {
        Some(x) => x,
        None => {
            let start = (local.rand() % local.cand.len() as u64) as usize;
            let c = argmin(&local.cand, start, |c| {
                let (t, r) = (c.tokens, c.inflight);
                // Requests the backend reports beyond the gateway's own (other gateways) cost
                // a mean request each.
                let mean = if r > 0 {
                    t / u64::from(r)
                } else {
                    ask.prompt_tokens + ask.output_tokens
                };
                let foreign_q = c.queue.map_or(0.0, |q| (q - f64::from(r)).max(0.0));
                t as f64 + foreign_q * mean as f64
            });
            (c, 0)
        }
    };
    if let Some(st) = env.states.get(chosen.backend) {
        env.prefix.record(&local.hashes, st.id);
    }
    (chosen, matched)
}
