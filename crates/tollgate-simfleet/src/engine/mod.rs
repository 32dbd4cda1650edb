//! Iteration-level simulation of one inference server (vLLM-, SGLang- or MindIE-like).
//!
//! Why: tollgate's routing, benchmarks and fault tests need backends that queue, batch, fill
//! their KV cache, hit and miss the prefix cache and preempt like real GPU servers, with no GPU.
//! This module is the engine only: it is driven by a caller-supplied clock (microseconds), so the
//! same code serves the wall-clock HTTP fleet and the virtual-time library ([`VirtualFleet`]).
//!
//! # Model (routing.md §3.2 is authoritative)
//! - Continuous batching at iteration level. A step's duration comes from [`step_time_ms`]
//!   (α, W, β, γ, δ, ε; divided by `speed_factor`; optional seeded lognormal jitter), fixed when
//!   the step starts; its tokens are emitted when it ends.
//! - Every sequence is a token list (prompt, then one pseudo token per output). A step computes
//!   `n` new tokens of a sequence; when the sequence's computed tokens reach its length, a token is
//!   sampled and emitted. A decode is the `n = 1` case; a prefill chunk is any other; a preempted
//!   sequence re-prefills prompt + outputs (recompute) and resumes at the next `seq`.
//! - KV: `kv_capacity_tokens / block_size` blocks with a chain-hashed prefix cache and LRU eviction
//!   (`kv.rs`). On admission, cached tokens = `block_size` × leading cached blocks, at most
//!   `len − 1` (one token is always computed). Prefix counters are in tokens, counted once per
//!   request at first admission (vLLM semantics).
//! - Scheduling is per personality: `sched_vllm`, `sched_sglang`, `sched_mindie`.
//!
//! # Clock contract
//! Engine time only moves forward. A step is formed lazily at the first `advance` reaching its
//! start time, so requests submitted at the same instant share a batch; a request is never
//! scheduled before its own arrival time even if the caller submits before advancing.
//! [`Engine::next_event_time`] returns the end of the step in flight, or the instant a step is due
//! to start (call `advance` then; it produces no events but forms the batch), or `None` when idle.
//!
//! # Deviations from the real servers
//! - Requests that could never fit the KV cache are clamped at submit: the prompt is truncated and
//!   `max_tokens` lowered so that prompt + output fits (a real server would reject them with 400).
//! - Output tokens are pseudo ids unique to the request, so a later turn's prompt (tokenized from
//!   text) hits the cached prompt blocks of the previous turn but not its output blocks.

mod kv;
mod sched_mindie;
mod sched_sglang;
mod sched_vllm;
mod step;
#[cfg(test)]
mod tests;
pub mod virtual_time;

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use kv::{KvCache, U64Map};
pub use step::step_time_ms;
pub use virtual_time::{RequestResult, VirtualFleet, VirtualRouter};

/// Consecutive steps that schedule nothing while work is waiting before the head request is
/// dropped (finished with 0 tokens). Only a request that can never fit reaches it (submit-time
/// clamping should prevent that); raising it only delays the drop by that many α-long idle steps.
const MAX_EMPTY_STEPS: u32 = 3;

/// Which real server's scheduler and cache the engine imitates (routing.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Personality {
    /// vLLM V1: block 16, decodes then partial prefills then FCFS admission, recompute preemption.
    Vllm,
    /// SGLang: token-granular radix cache, prefill-first batches, LPM queue, retraction.
    Sglang,
    /// MindIE: block 128, prefill-prioritized batches of at most 50 prompts / 8192 tokens.
    Mindie,
}

impl Personality {
    /// KV block (page) size used when `EngineParams::block_size` is 0.
    pub fn default_block_size(self) -> u32 {
        match self {
            Personality::Vllm => 16,
            Personality::Sglang => 1,
            Personality::Mindie => 128,
        }
    }

    /// Maximum running sequences used when `EngineParams::max_num_seqs` is 0: vLLM's H100
    /// default, SGLang's `max_running_requests` for an 8B model on 80 GB, MindIE's `maxBatchSize`.
    pub fn default_max_num_seqs(self) -> u32 {
        match self {
            Personality::Vllm | Personality::Sglang => 1024,
            Personality::Mindie => 200,
        }
    }

    /// Per-step token budget used when `EngineParams::max_num_batched_tokens` is 0: vLLM's H100
    /// default, SGLang's chunked-prefill size, MindIE's `maxPrefillTokens`.
    pub fn default_max_num_batched_tokens(self) -> u32 {
        8192
    }

    /// Lower-case name, as in configuration (`vllm`, `sglang`, `mindie`).
    pub fn as_str(self) -> &'static str {
        match self {
            Personality::Vllm => "vllm",
            Personality::Sglang => "sglang",
            Personality::Mindie => "mindie",
        }
    }
}

/// Latency-model and scheduler parameters. `Default` is Llama-3-8B BF16 on one H100-SXM-80GB
/// (routing.md §3.2). Zero in `block_size`, `max_num_seqs` or `max_num_batched_tokens` means
/// "the personality's default" (see [`EngineParams::resolved`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineParams {
    /// α: fixed launch + scheduler overhead per step (ms). Adds directly to every ITL and TTFT.
    pub alpha_ms: f64,
    /// W: time to stream the weights once (ms): the floor of every step, i.e. batch-1 ITL.
    pub weights_ms: f64,
    /// β: linear-layer compute per batched token (ms); dominates prefill (≈ 31k tok/s at 0.032).
    pub beta_ms_per_token: f64,
    /// γ: KV read per decode context token (ms); makes ITL grow with batch × context.
    pub gamma_ms_per_ctx_token: f64,
    /// δ: prefill attention per (query, key) pair (ms); the quadratic term of long prompts.
    pub delta_ms_per_pair: f64,
    /// ε: per-decode-sequence sampling and bookkeeping (ms).
    pub epsilon_ms_per_seq: f64,
    /// Step times are divided by this: 0.5 = twice as slow (e.g. an NPU), 2.0 = twice as fast.
    pub speed_factor: f64,
    /// KV cache size in tokens (≈ 430k for the default model and GPU). Smaller = earlier queueing,
    /// preemption and prefix-cache eviction.
    pub kv_capacity_tokens: u64,
    /// KV block / page size in tokens; 0 = personality default (vLLM 16, SGLang 1, MindIE 128).
    /// Larger blocks make prefix reuse coarser (a shared prefix shorter than a block is never hit).
    pub block_size: u32,
    /// Maximum running sequences; 0 = personality default (1024, 1024, 200).
    pub max_num_seqs: u32,
    /// Per-step token budget (prefill chunk size); 0 = personality default (8192). Larger = fewer
    /// prefill steps but longer ITL stalls for the decodes sharing the step.
    pub max_num_batched_tokens: u32,
    /// σ of the multiplicative lognormal step-time noise; 0.0 = deterministic, 0.05 ≈ ±5%.
    /// Seeded: same seed, same noise.
    pub jitter: f64,
}

impl Default for EngineParams {
    fn default() -> Self {
        EngineParams {
            alpha_ms: 0.5,
            weights_ms: 6.2,
            beta_ms_per_token: 0.032,
            gamma_ms_per_ctx_token: 5.0e-5,
            delta_ms_per_pair: 1.06e-6,
            epsilon_ms_per_seq: 0.02,
            speed_factor: 1.0,
            kv_capacity_tokens: 430_000,
            block_size: 0,
            max_num_seqs: 0,
            max_num_batched_tokens: 0,
            jitter: 0.0,
        }
    }
}

impl EngineParams {
    /// A copy with every "0 = personality default" field replaced by the personality's value.
    pub fn resolved(&self, personality: Personality) -> EngineParams {
        let mut p = self.clone();
        if p.block_size == 0 {
            p.block_size = personality.default_block_size();
        }
        if p.max_num_seqs == 0 {
            p.max_num_seqs = personality.default_max_num_seqs();
        }
        if p.max_num_batched_tokens == 0 {
            p.max_num_batched_tokens = personality.default_max_num_batched_tokens();
        }
        p
    }
}

/// One generation request as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRequest {
    /// Caller-chosen id, unique among live requests of one engine (a duplicate replaces the
    /// live request silently).
    pub id: u64,
    /// Prompt token ids (see [`crate::tokenizer`]); drive prefix-cache hits.
    pub prompt_tokens: Vec<u32>,
    /// Output tokens to generate (at least 1 is generated); the request finishes with
    /// [`FinishReason::Length`] after exactly this many.
    pub max_tokens: u32,
    /// Arrival time (µs) recorded by the caller; [`Engine::submit`]'s `now_us` is authoritative
    /// for scheduling, this is for traces and [`VirtualFleet`].
    pub arrival_us: u64,
}

/// What happened to a request, in engine time.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// Output token number `seq` (0 = first token: TTFT = `t_us` − arrival) of request `id`.
    Token {
        /// Request id.
        id: u64,
        /// Output token index, 0-based, strictly increasing per request, never repeated.
        seq: u32,
        /// Time (µs) the step producing it ended.
        t_us: u64,
    },
    /// Request `id` is done; its KV blocks are released (and stay cached for prefix reuse).
    Finished {
        /// Request id.
        id: u64,
        /// Time (µs) of the last token.
        t_us: u64,
        /// Why it finished.
        reason: FinishReason,
        /// Prompt tokens (after submit-time clamping).
        prompt_tokens: u32,
        /// Prompt tokens served from the prefix cache at first admission.
        cached_tokens: u32,
        /// Output tokens generated.
        completion_tokens: u32,
    },
    /// Request `id` lost its KV (recompute preemption / SGLang retraction) and went back to the
    /// waiting queue; it resumes later without repeating tokens.
    Preempted {
        /// Request id.
        id: u64,
        /// Time (µs) of the scheduling decision.
        t_us: u64,
    },
}

/// Why a request finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// `max_tokens` reached (what the simulator always produces).
    Length,
    /// End of sequence (reserved; the simulator does not sample EOS).
    Stop,
}

/// Load snapshot, in the units of the real servers' metrics (routing.md §1.4).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Gauges {
    /// Requests in the running batch (`vllm:num_requests_running`).
    pub running: u32,
    /// Requests waiting, preempted ones included (`vllm:num_requests_waiting`).
    pub waiting: u32,
    /// Tokens of KV in use (used blocks × block size).
    pub kv_used_tokens: u64,
    /// Total KV tokens (blocks × block size).
    pub kv_capacity_tokens: u64,
    /// Fraction of KV blocks in use, 0..1 (`vllm:kv_cache_usage_perc`).
    pub kv_usage: f64,
    /// Counter: prompt tokens looked up in the prefix cache (`vllm:prefix_cache_queries`).
    pub prefix_queries_tokens: u64,
    /// Counter: prompt tokens found in the prefix cache (`vllm:prefix_cache_hits`).
    pub prefix_hits_tokens: u64,
    /// Counter: preemptions / retractions (`vllm:num_preemptions`).
    pub preemptions: u64,
    /// Counter: prompt tokens of requests that produced their first token.
    pub prompt_tokens_total: u64,
    /// Counter: output tokens generated.
    pub generation_tokens_total: u64,
    /// Counter: requests finished (cancelled ones excluded).
    pub requests_finished: u64,
    /// KV block (page) size in tokens.
    pub block_size: u32,
    /// Number of KV blocks.
    pub num_blocks: u64,
    /// Maximum running sequences.
    pub max_num_seqs: u32,
    /// Counter: engine steps run.
    pub steps: u64,
}

/// A live request inside the engine.
#[derive(Debug)]
struct Seq {
    id: u64,
    /// Prompt then generated pseudo tokens.
    tokens: Vec<u32>,
    prompt_len: u32,
    max_tokens: u32,
    arrival_us: u64,
    /// Output tokens emitted so far (= next `seq`).
    emitted: u32,
    /// Tokens whose KV is computed (or served from cache).
    computed: u32,
    /// KV blocks owned (referenced), in order.
    blocks: Vec<u32>,
    /// Chain hashes of the full blocks of `tokens`, computed lazily.
    hashes: Vec<u64>,
    /// Leading blocks already published in (or matched from) the prefix cache.
    registered: usize,
    /// Prompt tokens served from cache at first admission (`None` before it).
    cached_tokens: Option<u32>,
    /// Unique per admission: a batch entry only applies to the admission that planned it.
    epoch: u64,
}

impl Seq {
    fn len(&self) -> u32 {
        self.tokens.len() as u32
    }

    /// Whether the next step for this sequence is a one-token decode.
    fn is_decode(&self) -> bool {
        self.emitted > 0 && self.computed + 1 == self.len()
    }
}

/// One sequence's share of a step.
#[derive(Clone, Copy, Debug)]
struct Planned {
    id: u64,
    epoch: u64,
    /// New tokens computed this step.
    n: u32,
}

#[derive(Debug)]
enum StepState {
    Idle,
    /// A step is due to be formed at this time.
    Pending(u64),
    InFlight {
        end_us: u64,
        batch: Vec<Planned>,
    },
}

/// One simulated inference server. See the module docs for the model and clock contract.
#[derive(Debug)]
pub struct Engine {
    personality: Personality,
    params: EngineParams,
    rng: ChaCha8Rng,
    kv: KvCache,
    seqs: U64Map<Seq>,
    waiting: VecDeque<u64>,
    /// Running sequences in admission order (last = most recently admitted).
    running: Vec<u64>,
    state: StepState,
    /// Latest time seen (µs).
    clock_us: u64,
    next_epoch: u64,
    empty_steps: u32,
    /// SGLang admission reserve ratio (routing.md §1.2).
    new_token_ratio: f64,
    prefix_queries_tokens: u64,
    prefix_hits_tokens: u64,
    preemptions: u64,
    prompt_tokens_total: u64,
    generation_tokens_total: u64,
    requests_finished: u64,
    steps: u64,
}

impl Engine {
    /// A fresh, idle engine; `seed` drives the jitter (the only randomness).
    pub fn new(personality: Personality, params: EngineParams, seed: u64) -> Engine {
        let params = params.resolved(personality);
        let blocks = (params.kv_capacity_tokens / u64::from(params.block_size))
            .clamp(1, u64::from(u32::MAX));
        Engine {
            personality,
            kv: KvCache::new(blocks as u32, params.block_size),
            params,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seqs: U64Map::default(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            state: StepState::Idle,
            clock_us: 0,
            next_epoch: 0,
            empty_steps: 0,
            new_token_ratio: sched_sglang::INIT_NEW_TOKEN_RATIO,
            prefix_queries_tokens: 0,
            prefix_hits_tokens: 0,
            preemptions: 0,
            prompt_tokens_total: 0,
            generation_tokens_total: 0,
            requests_finished: 0,
            steps: 0,
        }
    }

    /// The personality this engine imitates.
    pub fn personality(&self) -> Personality {
        self.personality
    }

    /// The parameters in force (personality defaults resolved).
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    /// Enqueues `req`, arriving at `now_us`. An idle engine starts a step at `now_us` (formed at
    /// the next `advance`). Prompts that could never fit are clamped (see the module docs).
    pub fn submit(&mut self, now_us: u64, req: SimRequest) {
        let now_us = now_us.max(self.clock_us);
        self.clock_us = now_us;
        if self.seqs.contains_key(&req.id) {
            self.remove_seq(req.id);
        }
        // Clamp so prompt + output fit in all but one block: one request alone never deadlocks.
        let cap = (u64::from(self.kv.num_blocks()).saturating_sub(1)
            * u64::from(self.kv.block_size()))
        .clamp(2, u64::from(u32::MAX)) as usize;
        let mut tokens = req.prompt_tokens;
        if tokens.is_empty() {
            tokens.push(0);
        }
        tokens.truncate(cap - 1);
        let max_tokens = req.max_tokens.clamp(1, (cap - tokens.len()) as u32);
        let seq = Seq {
            id: req.id,
            prompt_len: tokens.len() as u32,
            tokens,
            max_tokens,
            arrival_us: now_us,
            emitted: 0,
            computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            registered: 0,
            cached_tokens: None,
            epoch: 0,
        };
        self.seqs.insert(req.id, seq);
        self.waiting.push_back(req.id);
        match self.state {
            StepState::Idle => self.state = StepState::Pending(now_us),
            StepState::Pending(t) if t > now_us => self.state = StepState::Pending(now_us),
            _ => {}
        }
    }

    /// Aborts request `id` (client went away): its KV is released (cached blocks stay reusable)
    /// and no further event is emitted for it. Unknown ids are ignored.
    pub fn cancel(&mut self, now_us: u64, id: u64) {
        self.clock_us = self.clock_us.max(now_us);
        self.remove_seq(id);
    }

    /// End of the step in flight, or the time a step is due to start, or `None` when idle.
    pub fn next_event_time(&self) -> Option<u64> {
        match &self.state {
            StepState::Idle => None,
            StepState::Pending(t) => Some(*t),
            StepState::InFlight { end_us, .. } => Some(*end_us),
        }
    }

    /// Runs every step completing at or before `now_us`, appending their events in time order,
    /// and forms the next step if one is due.
    pub fn advance(&mut self, now_us: u64, out: &mut Vec<EngineEvent>) {
        loop {
            match self.state {
                StepState::InFlight { end_us, .. } if end_us <= now_us => {
                    let StepState::InFlight { end_us, batch } =
                        std::mem::replace(&mut self.state, StepState::Idle)
                    else {
                        break;
                    };
                    self.clock_us = self.clock_us.max(end_us);
                    self.complete_step(end_us, &batch, out);
                    self.state = self.next_state(end_us);
                }
                StepState::Pending(t) if t <= now_us => {
                    self.clock_us = self.clock_us.max(t);
                    self.start_step(t, out);
                }
                _ => break,
            }
        }
        self.clock_us = self.clock_us.max(now_us);
    }

    /// Current load snapshot.
    pub fn gauges(&self) -> Gauges {
        let bs = u64::from(self.kv.block_size());
        let num_blocks = u64::from(self.kv.num_blocks());
        let used = self.kv.used_blocks();
        Gauges {
            running: self.running.len() as u32,
            waiting: self.waiting.len() as u32,
            kv_used_tokens: used * bs,
            kv_capacity_tokens: num_blocks * bs,
            kv_usage: used as f64 / num_blocks as f64,
            prefix_queries_tokens: self.prefix_queries_tokens,
            prefix_hits_tokens: self.prefix_hits_tokens,
            preemptions: self.preemptions,
            prompt_tokens_total: self.prompt_tokens_total,
            generation_tokens_total: self.generation_tokens_total,
            requests_finished: self.requests_finished,
            block_size: self.kv.block_size(),
            num_blocks,
            max_num_seqs: self.params.max_num_seqs,
            steps: self.steps,
        }
    }

    /// Wipes the prefix cache (backend restart, SGLang `/flush_cache`); running requests keep
    /// their KV.
    pub fn reset_cache(&mut self) {
        self.kv.reset();
    }

    /// What follows a step ending (or nothing being schedulable) at `t`.
    fn next_state(&self, t: u64) -> StepState {
        if !self.running.is_empty() {
            return StepState::Pending(t);
        }
        let first_arrival = self
            .waiting
            .iter()
            .filter_map(|id| self.seqs.get(id))
            .map(|s| s.arrival_us)
            .min();
        match first_arrival {
            Some(a) => StepState::Pending(a.max(t)),
            None => StepState::Idle,
        }
    }

    /// Forms the batch due at `t` and puts it in flight.
    fn start_step(&mut self, t: u64, out: &mut Vec<EngineEvent>) {
        let batch = match self.personality {
            Personality::Vllm => self.schedule_vllm(t, out),
            Personality::Sglang => self.schedule_sglang(t, out),
            Personality::Mindie => self.schedule_mindie(t, out),
        };
        let mut decode_ctx = Vec::new();
        let mut prefill = Vec::new();
        for p in &batch {
            if let Some(s) = self.seqs.get(&p.id) {
                if p.n == 1 && s.is_decode() {
                    decode_ctx.push(s.computed + 1);
                } else {
                    prefill.push((p.n, s.computed));
                }
            }
        }
        if batch.is_empty() && self.running.is_empty() {
            // Nothing arrived yet (or nothing at all): sleep until the next arrival.
            let next = self.next_state(t);
            if !matches!(next, StepState::Pending(a) if a <= t) {
                self.state = next;
                return;
            }
        }
        let ms = if batch.is_empty() {
            self.on_empty_step(t, out);
            self.params.alpha_ms.max(0.001)
        } else {
            self.empty_steps = 0;
            step_time_ms(&self.params, &decode_ctx, &prefill)
                * step::jitter_factor(&mut self.rng, self.params.jitter)
        };
        let dur_us = ((ms * 1000.0).round() as u64).max(1);
        self.steps += u64::from(!batch.is_empty());
        self.state = StepState::InFlight {
            end_us: t + dur_us,
            batch,
        };
    }

    /// Nothing could be scheduled: after [`MAX_EMPTY_STEPS`] in a row, drop the head request.
    fn on_empty_step(&mut self, t: u64, out: &mut Vec<EngineEvent>) {
        self.empty_steps += 1;
        if self.empty_steps < MAX_EMPTY_STEPS || !self.running.is_empty() {
            return;
        }
        let head = self
            .waiting
            .iter()
            .copied()
            .find(|id| self.seqs.get(id).is_some_and(|s| s.arrival_us <= t));
        if let Some(id) = head {
            if let Some(s) = self.seqs.get(&id) {
                out.push(EngineEvent::Finished {
                    id,
                    t_us: t,
                    reason: FinishReason::Length,
                    prompt_tokens: s.prompt_len,
                    cached_tokens: s.cached_tokens.unwrap_or(0),
                    completion_tokens: s.emitted,
                });
            }
            self.remove_seq(id);
            self.requests_finished += 1;
            self.empty_steps = 0;
        }
    }

    /// Applies a finished step: progress, sampling, finishing.
    fn complete_step(&mut self, t: u64, batch: &[Planned], out: &mut Vec<EngineEvent>) {
        for p in batch {
            let Some(seq) = self.seqs.get_mut(&p.id) else {
                continue;
            };
            if seq.epoch != p.epoch || seq.blocks.is_empty() {
                continue;
            }
            seq.computed = (seq.computed + p.n).min(seq.len());
            publish_full_blocks(&mut self.kv, seq);
            if seq.computed < seq.len() {
                continue;
            }
            out.push(EngineEvent::Token {
                id: p.id,
                seq: seq.emitted,
                t_us: t,
            });
            if seq.emitted == 0 {
                self.prompt_tokens_total += u64::from(seq.prompt_len);
            }
            self.generation_tokens_total += 1;
            seq.emitted += 1;
            let pseudo = kv::mix64(seq.id ^ u64::from(seq.emitted).rotate_left(40)) as u32;
            seq.tokens.push(pseudo);
            if seq.emitted >= seq.max_tokens {
                out.push(EngineEvent::Finished {
                    id: p.id,
                    t_us: t,
                    reason: FinishReason::Length,
                    prompt_tokens: seq.prompt_len,
                    cached_tokens: seq.cached_tokens.unwrap_or(0),
                    completion_tokens: seq.emitted,
                });
                self.requests_finished += 1;
                self.remove_seq(p.id);
            }
        }
    }

    /// Drops a request wherever it is, releasing its KV.
    fn remove_seq(&mut self, id: u64) {
        if let Some(seq) = self.seqs.remove(&id) {
            self.kv.release(&seq.blocks);
            if let Some(pos) = self.running.iter().position(|&r| r == id) {
                self.running.remove(pos);
            } else if let Some(pos) = self.waiting.iter().position(|&r| r == id) {
                self.waiting.remove(pos);
            }
        }
    }

    /// Leading prefix-cache blocks of waiting request `id` (never all of its tokens: at least
    /// one is computed). Read-only on the cache; computes and memoizes the chain hashes.
    fn match_prefix(&mut self, id: u64) -> Vec<u32> {
        let bs = self.kv.block_size() as usize;
        let Some(seq) = self.seqs.get_mut(&id) else {
            return Vec::new();
        };
        let max_blocks = (seq.tokens.len().saturating_sub(1)) / bs;
        ensure_hashes(seq, max_blocks, bs);
        let mut out = Vec::new();
        for &h in &seq.hashes[..max_blocks] {
            match self.kv.lookup(h) {
                Some(b) => out.push(b),
                None => break,
            }
        }
        out
    }

    /// Moves waiting request `id` into the running batch with `matched` cached blocks and
    /// blocks for `n` new tokens. Returns false (and changes nothing) if KV is short.
    /// Does not touch the waiting queue; the caller removes `id` from it on success.
    fn admit(&mut self, id: u64, matched: &[u32], n: u32) -> bool {
        let bs = u64::from(self.kv.block_size());
        let cached = matched.len() as u64 * bs;
        let need = (cached + u64::from(n))
            .div_ceil(bs)
            .saturating_sub(matched.len() as u64);
        if !self.kv.can_allocate_after(matched, need) {
            return false;
        }
        let Some(seq) = self.seqs.get_mut(&id) else {
            return false;
        };
        self.kv.acquire(matched);
        seq.blocks.clear();
        seq.blocks.extend_from_slice(matched);
        if !self.kv.allocate(need, &mut seq.blocks) {
            // unreachable after can_allocate_after; undo the references
            self.kv.release(&seq.blocks);
            seq.blocks.clear();
            return false;
        }
        seq.computed = cached as u32;
        seq.registered = matched.len();
        if seq.cached_tokens.is_none() {
            seq.cached_tokens = Some(cached as u32);
            self.prefix_queries_tokens += u64::from(seq.len());
            self.prefix_hits_tokens += cached;
        }
        seq.epoch = self.next_epoch;
        self.next_epoch += 1;
        self.running.push(id);
        true
    }

    /// Allocates the blocks running request `id` needs to compute `n` more tokens.
    fn grow(&mut self, id: u64, n: u32) -> bool {
        let bs = u64::from(self.kv.block_size());
        let Some(seq) = self.seqs.get_mut(&id) else {
            return false;
        };
        let need = (u64::from(seq.computed) + u64::from(n))
            .div_ceil(bs)
            .saturating_sub(seq.blocks.len() as u64);
        need == 0 || self.kv.allocate(need, &mut seq.blocks)
    }

    /// Blocks running request `id` would need to compute `n` more tokens.
    fn blocks_needed(&self, id: u64, n: u32) -> u64 {
        let bs = u64::from(self.kv.block_size());
        self.seqs.get(&id).map_or(0, |s| {
            (u64::from(s.computed) + u64::from(n))
                .div_ceil(bs)
                .saturating_sub(s.blocks.len() as u64)
        })
    }

    /// Recompute preemption: frees `id`'s KV and puts it at the front of the waiting queue.
    fn preempt(&mut self, id: u64, t: u64, out: &mut Vec<EngineEvent>) {
        let Some(seq) = self.seqs.get_mut(&id) else {
            return;
        };
        self.kv.release(&seq.blocks);
        seq.blocks.clear();
        seq.computed = 0;
        seq.registered = 0;
        if let Some(pos) = self.running.iter().position(|&r| r == id) {
            self.running.remove(pos);
        }
        self.waiting.push_front(id);
        self.preemptions += 1;
        out.push(EngineEvent::Preempted { id, t_us: t });
    }

    /// Tokens still to compute before `id` samples its next token.
    fn remaining(&self, id: u64) -> u32 {
        self.seqs.get(&id).map_or(0, |s| s.len() - s.computed)
    }

    /// Whether request `id` has arrived by `t`.
    fn arrived(&self, id: u64, t: u64) -> bool {
        self.seqs.get(&id).is_some_and(|s| s.arrival_us <= t)
    }
}

/// Computes chain hashes for the first `blocks` full blocks of `seq` (memoized).
fn ensure_hashes(seq: &mut Seq, blocks: usize, bs: usize) {
    let blocks = blocks.min(seq.tokens.len() / bs);
    while seq.hashes.len() < blocks {
        let k = seq.hashes.len();
        let parent = if k == 0 { 0 } else { seq.hashes[k - 1] };
        seq.hashes
            .push(kv::chain_hash(parent, &seq.tokens[k * bs..(k + 1) * bs]));
    }
}

/// Publishes the newly completed full blocks of `seq` in the prefix cache.
fn publish_full_blocks(kv: &mut KvCache, seq: &mut Seq) {
    let bs = kv.block_size() as usize;
    let full = (seq.computed as usize / bs).min(seq.blocks.len());
    if full <= seq.registered {
        return;
    }
    ensure_hashes(seq, full, bs);
    for k in seq.registered..full.min(seq.hashes.len()) {
        kv.register(seq.blocks[k], seq.hashes[k]);
    }
    seq.registered = full;
}
