//! SGLang-like scheduler (routing.md §1.2 and §3.2).
//!
//! Why its own file: SGLang batches differently from vLLM. Each step is either a prefill batch or
//! a decode batch, never both (no `--enable-mixed-chunk`), and prefill wins whenever anything can
//! be admitted; decodes run when nothing can. Details mirrored from `schedule_policy.py` /
//! `scheduler.py`:
//! - waiting queue in longest-prefix-match order when it holds at most [`LPM_MAX_WAITING`]
//!   requests, else FCFS;
//! - admission (`PrefillAdder`): a request fits if `extend + min(max_new, 4096)` is below the free
//!   KV tokens minus the reserve: running requests reserve `new_token_ratio × min(max_new −
//!   generated, 4096)`, requests admitted in this batch reserve `extend + min(max_new, 4096)`;
//!   at most one request is chunked (to the `max_num_batched_tokens` budget), and it ends the
//!   batch;
//! - `new_token_ratio` starts at 0.7 and decays linearly to 0.098 over 600 decode steps;
//! - when a decode step lacks KV, decodes are retracted (recompute; counted as preemptions) fewest
//!   generated tokens first, until `20 × batch` tokens are free, and the ratio is re-estimated.
//!
//! With one-token pages, KV blocks are tokens and the hash chain over token positions behaves as
//! SGLang's radix tree (see `kv.rs`).

use super::{Engine, EngineEvent, Planned};

/// `SGLANG_INIT_NEW_TOKEN_RATIO`: initial share of the remaining output reserved per running
/// request. Higher = more conservative admission (fewer running, fewer retractions).
pub(super) const INIT_NEW_TOKEN_RATIO: f64 = 0.7;
/// Floor of the ratio: 0.7 × `SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR` (0.14).
const MIN_NEW_TOKEN_RATIO: f64 = INIT_NEW_TOKEN_RATIO * 0.14;
/// Decode steps over which the ratio decays to its floor (`SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS`).
/// Fewer steps = more aggressive admission sooner after a retraction.
const NEW_TOKEN_RATIO_DECAY_STEPS: f64 = 600.0;
/// `CLIP_MAX_NEW_TOKENS`: cap on the output length counted in admission reserves.
const CLIP_MAX_NEW_TOKENS: u32 = 4096;
/// Above this many waiting requests the queue falls back from LPM to FCFS (hard-coded in SGLang).
pub(super) const LPM_MAX_WAITING: usize = 128;
/// `retract_decode_steps`: retraction frees KV until this many tokens per remaining decode fit.
const RETRACT_DECODE_STEPS: u64 = 20;

impl Engine {
    /// Forms the batch for the step starting at `t`: prefill if anything fits, else decode.
    pub(super) fn schedule_sglang(&mut self, t: u64, out: &mut Vec<EngineEvent>) -> Vec<Planned> {
        let plan = self.sglang_prefill_batch(t);
        if !plan.is_empty() {
            return plan;
        }
        self.sglang_decode_batch(t, out)
    }

    fn sglang_prefill_batch(&mut self, t: u64) -> Vec<Planned> {
        let mut budget = self.params.max_num_batched_tokens;
        let mut plan = Vec::new();
        // Continue the chunked (partially prefilled) request first.
        let partial: Vec<u64> = self
            .running
            .iter()
            .copied()
            .filter(|id| self.seqs.get(id).is_some_and(|s| !s.is_decode()))
            .collect();
        for id in partial {
            let n = self.remaining(id).min(budget);
            if n == 0 || !self.grow(id, n) {
                continue;
            }
            let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
            plan.push(Planned { id, epoch, n });
            budget -= n;
            if n < self.remaining(id) {
                return plan; // still chunked: the batch is full
            }
        }

        let bs = u64::from(self.kv.block_size());
        let ratio = self.new_token_ratio;
        let reserve: f64 = self
            .running
            .iter()
            .filter_map(|id| self.seqs.get(id))
            .map(|s| {
                f64::from(
                    s.max_tokens
                        .saturating_sub(s.emitted)
                        .min(CLIP_MAX_NEW_TOKENS),
                ) * ratio
            })
            .sum();
        let mut rem_total = (self.kv.free_blocks() * bs) as f64 - reserve;

        for id in self.sglang_waiting_order(t) {
            if budget == 0 || self.running.len() as u32 >= self.params.max_num_seqs {
                break;
            }
            let matched = self.match_prefix(id);
            let cached = matched.len() as u32 * self.kv.block_size();
            let Some((len, clip)) = self.seqs.get(&id).map(|s| {
                (
                    s.len(),
                    s.max_tokens
                        .saturating_sub(s.emitted)
                        .min(CLIP_MAX_NEW_TOKENS),
                )
            }) else {
                continue;
            };
            let extend = len - cached;
            let total = f64::from(extend) + f64::from(clip);
            if total >= rem_total {
                break; // NO_TOKEN
            }
            let n = extend.min(budget);
            if n == 0 || !self.admit(id, &matched, n) {
                break;
            }
            if let Some(pos) = self.waiting.iter().position(|&w| w == id) {
                self.waiting.remove(pos);
            }
            let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
            plan.push(Planned { id, epoch, n });
            budget -= n;
            rem_total -= total;
            if n < extend {
                break; // this one is chunked: the batch is full
            }
        }
        plan
    }

    /// Arrived waiting requests in SGLang's order: longest prefix match first (stable), or FCFS
    /// when the queue is long.
    fn sglang_waiting_order(&mut self, t: u64) -> Vec<u64> {
        let ids: Vec<u64> = self
            .waiting
            .iter()
            .copied()
            .filter(|&id| self.arrived(id, t))
            .collect();
        if ids.len() <= 1 || self.waiting.len() > LPM_MAX_WAITING {
            return ids;
        }
        let mut keyed: Vec<(usize, u64)> = ids
            .into_iter()
            .map(|id| (self.match_prefix(id).len(), id))
            .collect();
        keyed.sort_by_key(|k| std::cmp::Reverse(k.0)); // stable: ties stay FCFS
        keyed.into_iter().map(|(_, id)| id).collect()
    }

    fn sglang_decode_batch(&mut self, t: u64, out: &mut Vec<EngineEvent>) -> Vec<Planned> {
        let mut batch: Vec<u64> = self
            .running
            .iter()
            .copied()
            .filter(|id| self.seqs.get(id).is_some_and(|s| s.is_decode()))
            .collect();
        if batch.is_empty() {
            return Vec::new();
        }
        let bs = u64::from(self.kv.block_size());
        let need: u64 = batch.iter().map(|&id| self.blocks_needed(id, 1)).sum();
        if self.kv.free_blocks() < need {
            // retract_decode: fewest generated first, longest prompt first among ties.
            batch.sort_by_key(|id| {
                self.seqs
                    .get(id)
                    .map(|s| (s.emitted, std::cmp::Reverse(s.prompt_len)))
            });
            batch.reverse(); // pop() takes the fewest-generated
            let mut first = true;
            while batch.len() > 1
                && (first || self.kv.free_blocks() * bs < RETRACT_DECODE_STEPS * batch.len() as u64)
            {
                first = false;
                if let Some(victim) = batch.pop() {
                    self.preempt(victim, t, out);
                }
            }
            // Re-estimate the ratio from the survivors' progress, as SGLang does.
            let (decoded, max_new) =
                batch
                    .iter()
                    .filter_map(|id| self.seqs.get(id))
                    .fold((0u64, 0u64), |acc, s| {
                        (
                            acc.0 + u64::from(s.emitted),
                            acc.1 + u64::from(s.max_tokens),
                        )
                    });
            let est = (decoded + RETRACT_DECODE_STEPS * batch.len() as u64) as f64
                / max_new.max(1) as f64;
            self.new_token_ratio = (est + 0.01).clamp(MIN_NEW_TOKEN_RATIO, 1.0);
            // keep admission order for the batch
            batch.sort_by_key(|id| self.seqs.get(id).map_or(0, |s| s.epoch));
        } else {
            let decay = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / NEW_TOKEN_RATIO_DECAY_STEPS;
            self.new_token_ratio = (self.new_token_ratio - decay).max(MIN_NEW_TOKEN_RATIO);
        }
        let mut plan = Vec::with_capacity(batch.len());
        for id in batch {
            if !self.grow(id, 1) {
                // a single survivor that still cannot grow: recompute it later
                self.preempt(id, t, out);
                continue;
            }
            let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
            plan.push(Planned { id, epoch, n: 1 });
        }
        plan
    }
}
