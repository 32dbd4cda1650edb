//! Live per-backend state shared by every worker: in-flight counters in per-worker padded slots,
//! and passive health (consecutive failures, ejection with backoff).
//!
//! A [`BackendState`] is keyed by the backend's identity (name + address), not by its index in a
//! config generation, so a reload keeps in-flight counts and ejections of unchanged backends —
//! a request that started on the old config still decrements the slot the new config reads.
//!
//! In-flight counters: worker `w` writes only `slots[w]` (one cache line of its own); a reader
//! sums the slots. No lock, no contended read-modify-write: an increment is an uncontended
//! `fetch_add` on a line only one core writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One worker's counters for one backend, alone on a cache line.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct Slot {
    /// Requests in flight from this worker.
    pub requests: AtomicU32,
    /// Estimated tokens (prompt + expected output) of those requests.
    pub tokens: AtomicU64,
}

/// Passive-health settings (`[routing]` in the config).
#[derive(Clone, Debug)]
pub struct EjectPolicy {
    /// Consecutive failures (connect errors, 5xx, timeouts, broken responses) that eject.
    pub consecutive_failures: u32,
    /// First ejection lasts this long; each further ejection doubles it.
    pub base_ms: u64,
    /// Longest ejection.
    pub max_ms: u64,
}

impl Default for EjectPolicy {
    fn default() -> Self {
        EjectPolicy {
            consecutive_failures: 5,
            base_ms: 5_000,
            max_ms: 60_000,
        }
    }
}

/// Shared state of one backend.
#[derive(Debug)]
pub struct BackendState {
    /// Stable small id (prefix table entries, `/admin/backends`).
    pub id: u16,
    /// Identity this state belongs to.
    pub key: Arc<str>,
    slots: Box<[Slot]>,
    consecutive: AtomicU32,
    ejected_until_ms: AtomicU64,
    backoff_level: AtomicU32,
    ejections: AtomicU64,
}

/// What a worker adds for a request while it is in flight; undone on drop.
#[derive(Debug)]
pub struct InflightGuard {
    state: Arc<BackendState>,
    worker: usize,
    tokens: u64,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Some(s) = self.state.slots.get(self.worker) {
            s.requests.fetch_sub(1, Ordering::Relaxed);
            s.tokens.fetch_sub(self.tokens, Ordering::Relaxed);
        }
    }
}

impl BackendState {
    /// State for `workers` workers.
    pub fn new(id: u16, key: Arc<str>, workers: usize) -> BackendState {
        BackendState {
            id,
            key,
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
            consecutive: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            backoff_level: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
        }
    }

    /// Count a request from `worker` carrying `tokens` estimated tokens until the guard drops.
    pub fn start(self: &Arc<Self>, worker: usize, tokens: u64) -> InflightGuard {
        let w = worker.min(self.slots.len() - 1);
        if let Some(s) = self.slots.get(w) {
            s.requests.fetch_add(1, Ordering::Relaxed);
            s.tokens.fetch_add(tokens, Ordering::Relaxed);
        }
        InflightGuard {
            state: Arc::clone(self),
            worker: w,
            tokens,
        }
    }

    /// In-flight requests and tokens over all workers, in one pass (each worker's two counters
    /// share a cache line).
    pub fn load(&self) -> (u32, u64) {
        self.slots.iter().fold((0u32, 0u64), |(r, t), s| {
            (
                r.wrapping_add(s.requests.load(Ordering::Relaxed)),
                t.wrapping_add(s.tokens.load(Ordering::Relaxed)),
            )
        })
    }

    /// In-flight requests over all workers.
    pub fn inflight(&self) -> u32 {
        self.slots
            .iter()
            .map(|s| s.requests.load(Ordering::Relaxed))
            .fold(0u32, u32::wrapping_add)
    }

    /// Estimated in-flight tokens over all workers.
    pub fn inflight_tokens(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.tokens.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Whether the backend is ejected at `now_ms`.
    pub fn ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// When the current ejection ends (0 = never ejected).
    pub fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// Ejections so far.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Consecutive failures now.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    /// A response from this backend went well: reset the failure run. Reads first so the common
    /// case (already 0) writes nothing shared. A backend that stays healthy for a whole base
    /// ejection period after returning has its backoff reset.
    pub fn record_success(&self, now_ms: u64, policy: &EjectPolicy) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        if self.backoff_level.load(Ordering::Relaxed) != 0 {
            let until = self.ejected_until_ms.load(Ordering::Relaxed);
            if now_ms >= until.saturating_add(policy.base_ms) {
                self.backoff_level.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A failure. Returns `true` when this call ejected the backend. `may_eject` says whether the
    /// pool can spare it (never more than half a pool ejected; the caller counts).
    pub fn record_failure(&self, now_ms: u64, policy: &EjectPolicy, may_eject: bool) -> bool {
        let n = self
            .consecutive
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n < policy.consecutive_failures || !may_eject {
            return false;
        }
        let cur = self.ejected_until_ms.load(Ordering::Relaxed);
        if now_ms < cur {
            return false; // already ejected
        }
        let level = self.backoff_level.load(Ordering::Relaxed).min(16);
        let dur = policy
            .base_ms
            .saturating_mul(1u64 << level)
            .min(policy.max_ms.max(policy.base_ms));
        // One worker wins the ejection; the others see it done.
        if self
            .ejected_until_ms
            .compare_exchange(
                cur,
                now_ms.saturating_add(dur),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        self.backoff_level.store(level + 1, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Every backend state ever created in this process, by identity; reloads look states up here
/// so unchanged backends keep theirs. Control side only (never touched by a request).
#[derive(Debug, Default)]
pub struct Registry {
    states: Vec<Arc<BackendState>>,
    workers: usize,
}

impl Registry {
    /// A registry for `workers` data-plane workers.
    pub fn new(workers: usize) -> Registry {
        Registry {
            states: Vec::new(),
            workers,
        }
    }

    /// The state for identity `key`, created on first sight. Ids wrap at 65 535 distinct
    /// identities, which only weakens prefix affinity (never correctness).
    pub fn get_or_create(&mut self, key: &str) -> Arc<BackendState> {
        if let Some(s) = self.states.iter().find(|s| &*s.key == key) {
            return Arc::clone(s);
        }
        let id = (self.states.len() % usize::from(u16::MAX)) as u16;
        let s = Arc::new(BackendState::new(id, Arc::from(key), self.workers));
        self.states.push(Arc::clone(&s));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_cache_line_padded() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }

    #[test]
    fn guards_count_across_workers_and_undo_on_drop() {
        let s = Arc::new(BackendState::new(0, Arc::from("a"), 2));
        let g1 = s.start(0, 100);
        let g2 = s.start(1, 50);
        assert_eq!((s.inflight(), s.inflight_tokens()), (2, 150));
        drop(g1);
        assert_eq!((s.inflight(), s.inflight_tokens()), (1, 50));
        drop(g2);
        assert_eq!((s.inflight(), s.inflight_tokens()), (0, 0));
    }

    #[test]
    fn ejection_after_consecutive_failures_with_doubling_backoff() {
        let p = EjectPolicy {
            consecutive_failures: 3,
            base_ms: 1000,
            max_ms: 3000,
        };
        let s = BackendState::new(0, Arc::from("a"), 1);
        assert!(!s.record_failure(0, &p, true));
        assert!(!s.record_failure(0, &p, true));
        s.record_success(0, &p); // a success breaks the run
        assert!(!s.record_failure(0, &p, true));
        assert!(!s.record_failure(0, &p, true));
        assert!(s.record_failure(10, &p, true));
        assert!(s.ejected(10) && s.ejected(1009) && !s.ejected(1010));
        // Comes back, fails again: twice as long.
        for _ in 0..2 {
            s.record_failure(1010, &p, true);
        }
        assert!(s.record_failure(1010, &p, true));
        assert_eq!(s.ejected_until_ms(), 3010);
        // Capped at max.
        for _ in 0..3 {
            s.record_failure(3010, &p, true);
        }
        assert_eq!(s.ejected_until_ms(), 6010);
        assert_eq!(s.ejections(), 3);
        // Healthy for a base period after the last ejection ended: backoff resets.
        s.record_success(6010 + 1000, &p);
        for _ in 0..3 {
            s.record_failure(8000, &p, true);
        }
        assert_eq!(s.ejected_until_ms(), 9000);
    }

    #[test]
    fn the_pool_cap_prevents_ejection() {
        let p = EjectPolicy {
            consecutive_failures: 1,
            ..EjectPolicy::default()
        };
        let s = BackendState::new(0, Arc::from("a"), 1);
        assert!(!s.record_failure(0, &p, false));
        assert!(!s.ejected(1));
    }

    #[test]
    fn registry_keeps_state_by_identity() {
        let mut r = Registry::new(2);
        let a = r.get_or_create("a|x");
        let b = r.get_or_create("b|y");
        assert_ne!(a.id, b.id);
        let _g = a.start(1, 5);
        assert_eq!(r.get_or_create("a|x").inflight(), 1);
    }
}
