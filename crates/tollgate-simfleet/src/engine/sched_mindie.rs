//! MindIE-like scheduler (routing.md §1.3 and §3.2).
//!
//! Why its own file: MindIE's defaults (`ScheduleConfig`) batch differently from both vLLM and
//! SGLang. With `supportSelectBatch=false` a step is a prefill batch whenever a waiting request
//! fits, else a decode batch of every running request:
//! - prefill batches hold at most [`MAX_PREFILL_BATCH_SIZE`] whole prompts (no chunked prefill)
//!   and `max_num_batched_tokens` (`maxPrefillTokens`, 8192) uncached tokens; a single longer
//!   prompt is admitted alone; admission is FCFS and stops at the first request that does not fit;
//! - `max_num_seqs` is `maxBatchSize` (200); blocks are 128 tokens, so prefix reuse is coarse;
//! - a decode lacking a block preempts the most recently admitted running request (recompute).

use super::{Engine, EngineEvent, Planned};

/// `maxPrefillBatchSize`: prompts per prefill step. Larger = fewer prefill steps under bursts but
/// longer decode stalls.
const MAX_PREFILL_BATCH_SIZE: usize = 50;

impl Engine {
    /// Forms the batch for the step starting at `t`.
    pub(super) fn schedule_mindie(&mut self, t: u64, out: &mut Vec<EngineEvent>) -> Vec<Planned> {
        let plan = self.mindie_prefill_batch(t);
        if !plan.is_empty() {
            return plan;
        }
        self.mindie_decode_batch(t, out)
    }

    fn mindie_prefill_batch(&mut self, t: u64) -> Vec<Planned> {
        let mut plan: Vec<Planned> = Vec::new();
        let mut tokens = 0u32;
        while plan.len() < MAX_PREFILL_BATCH_SIZE
            && (self.running.len() as u32) < self.params.max_num_seqs
        {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            if !self.arrived(id, t) {
                break;
            }
            let matched = self.match_prefix(id);
            let cached = matched.len() as u32 * self.kv.block_size();
            let n = self.seqs.get(&id).map_or(0, |s| s.len() - cached);
            if n == 0 || (!plan.is_empty() && tokens + n > self.params.max_num_batched_tokens) {
                break;
            }
            if !self.admit(id, &matched, n) {
                break;
            }
            self.waiting.pop_front();
            let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
            plan.push(Planned { id, epoch, n });
            tokens += n;
        }
        plan
    }

    fn mindie_decode_batch(&mut self, t: u64, out: &mut Vec<EngineEvent>) -> Vec<Planned> {
        let order: Vec<u64> = self.running.clone();
        let mut plan: Vec<Planned> = Vec::with_capacity(order.len());
        for id in order {
            if !self.running.contains(&id) {
                continue; // preempted as a victim
            }
            let n = self.remaining(id);
            if n == 0 {
                continue;
            }
            loop {
                if self.grow(id, n) {
                    let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
                    plan.push(Planned { id, epoch, n });
                    break;
                }
                let Some(&victim) = self.running.last() else {
                    break;
                };
                if let Some(pos) = plan.iter().position(|p| p.id == victim) {
                    plan.remove(pos);
                }
                self.preempt(victim, t, out);
                if victim == id {
                    break;
                }
            }
        }
        plan
    }
}
