//! vLLM-like scheduler (V1 engine, routing.md §1.1 and §3.2).
//!
//! Why its own file: the order of the three phases is the personality. Each step, with one
//! token budget (`max_num_batched_tokens`):
//! 1. every running decode gets its one token, then partial prefills continue (chunked);
//! 2. when a running request cannot get a KV block, the most recently admitted running request is
//!    preempted (recompute mode: KV freed, re-queued at the front, `preemptions += 1`); if the
//!    victim is the request itself, it stops there;
//! 3. only if nobody was preempted this step, waiting requests are admitted FCFS while budget,
//!    `max_num_seqs` and KV blocks last; the head of the queue blocks the rest (no skipping).

use super::{Engine, EngineEvent, Planned};

impl Engine {
    /// Forms the batch for the step starting at `t`.
    pub(super) fn schedule_vllm(&mut self, t: u64, out: &mut Vec<EngineEvent>) -> Vec<Planned> {
        let mut budget = self.params.max_num_batched_tokens;
        let mut plan: Vec<Planned> = Vec::new();
        let mut preempted = false;

        // Phase 1: decodes first, then partial prefills, each in admission order.
        let mut order: Vec<u64> = Vec::with_capacity(self.running.len());
        order.extend(
            self.running
                .iter()
                .copied()
                .filter(|id| self.seqs.get(id).is_some_and(|s| s.is_decode())),
        );
        order.extend(
            self.running
                .iter()
                .copied()
                .filter(|id| self.seqs.get(id).is_some_and(|s| !s.is_decode())),
        );
        for id in order {
            if budget == 0 {
                break;
            }
            if !self.running.contains(&id) {
                continue; // preempted as a victim earlier in this loop
            }
            let n = self.remaining(id).min(budget);
            if n == 0 {
                continue;
            }
            loop {
                if self.grow(id, n) {
                    let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
                    plan.push(Planned { id, epoch, n });
                    budget -= n;
                    break;
                }
                // Out of blocks: preempt the most recently admitted running request.
                let Some(&victim) = self.running.last() else {
                    break;
                };
                if let Some(pos) = plan.iter().position(|p| p.id == victim) {
                    budget += plan[pos].n;
                    plan.remove(pos);
                }
                self.preempt(victim, t, out);
                preempted = true;
                if victim == id {
                    break;
                }
            }
        }

        // Phase 3: admit FCFS, unless this step had to preempt.
        if preempted {
            return plan;
        }
        while budget > 0 && (self.running.len() as u32) < self.params.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            if !self.arrived(id, t) {
                break;
            }
            let matched = self.match_prefix(id);
            let cached = matched.len() as u32 * self.kv.block_size();
            let n = self
                .seqs
                .get(&id)
                .map_or(0, |s| s.len() - cached)
                .min(budget);
            if n == 0 || !self.admit(id, &matched, n) {
                break;
            }
            self.waiting.pop_front();
            let epoch = self.seqs.get(&id).map_or(0, |s| s.epoch);
            plan.push(Planned { id, epoch, n });
            budget -= n;
        }
        plan
    }
}
