//! What a backend's own metrics say about its load, normalised across kinds (routing.md §1.4).
//!
//! The control thread fills one [`Scraped`] per backend per scrape (see `adapter` for where each
//! field comes from per kind) and publishes them all at once in a [`LoadSnapshot`]; workers read
//! the snapshot with one atomic load. A value older than the staleness bound is *unknown*, never
//! idle: [`LoadSnapshot::fresh`] hides it.

/// Load signals scraped from one backend. `None` = the backend kind does not expose it (or the
/// scrape did not include it); policies treat a missing signal as unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scraped {
    /// Requests waiting for admission (vLLM `num_requests_waiting`, SGLang `num_queue_reqs`,
    /// MindIE `num_requests_waiting` / `waitingRequestNum`).
    pub queue: Option<f64>,
    /// Requests in the running batch.
    pub running: Option<f64>,
    /// KV cache usage 0..1 (vLLM `kv_cache_usage_perc`, SGLang `token_usage`, MindIE
    /// `npu_cache_usage_perc` or `1 - free/total` NPU blocks).
    pub kv_frac: Option<f64>,
    /// KV capacity in tokens, when the backend reports it.
    pub kv_capacity_tokens: Option<f64>,
    /// Prefix-cache hit rate 0..1 (vLLM: from the counters' deltas; SGLang/MindIE: gauge).
    pub prefix_hit: Option<f64>,
    /// Raw prefix-cache counters (vLLM queries/hits, MindIE all_radix_match_num /
    /// npu_radix_match_hit_num), kept to compute `prefix_hit` from deltas between scrapes.
    pub prefix_counters: Option<(f64, f64)>,
    /// Preemptions / retractions counter (cumulative).
    pub preemptions: Option<f64>,
}

/// One backend's entry in a [`LoadSnapshot`].
#[derive(Clone, Debug, Default)]
pub struct BackendLoad {
    /// Last successful scrape, if any.
    pub scraped: Option<Scraped>,
    /// When `scraped` was taken (router clock, ms).
    pub scraped_at_ms: u64,
    /// Last scrape error (for `/admin/backends`), if the last attempt failed.
    pub scrape_error: Option<String>,
    /// Active health probe: `Some(true)` passed, `Some(false)` failed, `None` not probed yet.
    pub probe_ok: Option<bool>,
    /// When the probe result was taken (router clock, ms).
    pub probed_at_ms: u64,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// Gateway in-flight requests to this backend when `scraped` was taken: the difference to
    /// the live count is what the gateway added or finished since, which the policies add to
    /// the scraped queue (dead reckoning between scrapes).
    pub inflight_at_scrape: u32,
    /// Gateway in-flight tokens at scrape time (same use, for KV usage).
    pub inflight_tokens_at_scrape: u64,
}

/// Every backend's scraped load, published by the control thread as one immutable value.
#[derive(Clone, Debug, Default)]
pub struct LoadSnapshot {
    /// Config generation whose backend indices `backends` follows.
    pub generation: u64,
    /// Indexed like the config's backends.
    pub backends: Vec<BackendLoad>,
    /// What a pick reads, packed (one 48-byte entry per backend); built by [`Self::seal`].
    pub compact: Vec<Compact>,
}

/// The pick-time view of one backend's scrape: plain numbers, NaN = unknown.
#[derive(Clone, Copy, Debug)]
pub struct Compact {
    /// Scraped queue (NaN = unknown).
    pub queue: f64,
    /// Scraped KV usage (NaN = unknown).
    pub kv: f64,
    /// Scraped running batch (NaN = unknown).
    pub running: f64,
    /// KV capacity in tokens (0 = unknown).
    pub capacity: f64,
    /// When scraped (router clock ms); `u64::MAX` = never.
    pub at_ms: u64,
    /// Gateway in-flight tokens at scrape time.
    pub tokens_at: u64,
    /// Gateway in-flight requests at scrape time.
    pub inflight_at: u32,
    /// The last active probe failed.
    pub probe_down: bool,
}

impl Compact {
    /// Pack one backend's entry.
    pub fn of(l: &BackendLoad) -> Compact {
        let s = l.scraped.as_ref();
        Compact {
            queue: s.and_then(|s| s.queue).unwrap_or(f64::NAN),
            kv: s.and_then(|s| s.kv_frac).unwrap_or(f64::NAN),
            running: s.and_then(|s| s.running).unwrap_or(f64::NAN),
            capacity: s.and_then(|s| s.kv_capacity_tokens).unwrap_or(0.0),
            at_ms: if s.is_some() {
                l.scraped_at_ms
            } else {
                u64::MAX
            },
            tokens_at: l.inflight_tokens_at_scrape,
            inflight_at: l.inflight_at_scrape,
            probe_down: l.probe_ok == Some(false),
        }
    }
}

impl LoadSnapshot {
    /// Build `compact` from `backends` (the publisher calls this once before publishing; an
    /// unsealed snapshot still works, each pick packs the entries it reads).
    pub fn seal(mut self) -> LoadSnapshot {
        self.compact = self.backends.iter().map(Compact::of).collect();
        self
    }

    /// The scraped signals of backend `b` if they are younger than `stale_after_ms` at `now_ms`;
    /// `None` (unknown) otherwise, or when this snapshot belongs to another config generation.
    pub fn fresh(
        &self,
        generation: u64,
        b: usize,
        now_ms: u64,
        stale_after_ms: u64,
    ) -> Option<(&Scraped, &BackendLoad)> {
        if self.generation != generation {
            return None;
        }
        let l = self.backends.get(b)?;
        let s = l.scraped.as_ref()?;
        if now_ms.saturating_sub(l.scraped_at_ms) > stale_after_ms {
            return None;
        }
        Some((s, l))
    }

    /// Whether the last active probe of `b` failed (a backend never probed is not down).
    pub fn probe_down(&self, generation: u64, b: usize) -> bool {
        self.generation == generation
            && self
                .backends
                .get(b)
                .is_some_and(|l| l.probe_ok == Some(false))
    }
}
