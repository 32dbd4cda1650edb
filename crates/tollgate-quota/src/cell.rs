//! The counter primitive: one shared cell per (rule, subject key), updated only with compare-and-
//! swap loops so that every worker thread can admit against it without a lock.
//!
//! # Layout
//!
//! A windowed cell packs its window and its usage into one `AtomicU64`, so "roll to a new window"
//! and "reserve" are a single atomic step and no reservation can land in a window that another
//! thread just reset:
//!
//! ```text
//!  63            40 39                         0
//! +----------------+----------------------------+
//! | window tag (24) | used in that window (40)   |
//! +----------------+----------------------------+
//! ```
//!
//! The tag is the window start in whole seconds modulo 2^24 (194 days). Windows are at least 1 s
//! long, so consecutive windows of a rule always have distinct tags; two windows 194 days apart
//! share one, which only matters for a cell that nobody touched for 194 days *and* that `gc` never
//! collected. Usage saturates at 2^40 − 2 (1.1 × 10^12 tokens); `u64::MAX` marks a cell retired by
//! `gc`, after which every operation fails and the worker fetches a fresh cell from the registry.
//!
//! A concurrency cell stores the number of requests in flight in the same word.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::cluster::Lease;

const USED_BITS: u32 = 40;
const USED_MASK: u64 = (1 << USED_BITS) - 1;
/// Largest usage a cell records; more saturates (keeps `u64::MAX` free for `RETIRED`).
pub(crate) const USED_MAX: u64 = USED_MASK - 1;
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Word value of a cell removed from the registry.
pub(crate) const RETIRED: u64 = u64::MAX;

/// Window tag for a window starting at `start_ms`.
pub(crate) fn tag_of(start_ms: i64) -> u32 {
    // `rem_euclid` keeps it in 0..2^24, so the conversion cannot fail.
    u32::try_from(start_ms.div_euclid(1000).rem_euclid(1 << TAG_BITS)).unwrap_or(0)
}

/// True when tag `a` is a later window than tag `b` (modular, within half the tag space).
pub(crate) fn tag_newer(a: u32, b: u32) -> bool {
    let d = (u64::from(a).wrapping_sub(u64::from(b))) & TAG_MASK;
    d != 0 && d < (1 << (TAG_BITS - 1))
}

/// Seconds from window-start tag `t` to `now_tag` (modular).
fn tag_age_s(now_tag: u32, t: u32) -> u64 {
    (u64::from(now_tag).wrapping_sub(u64::from(t))) & TAG_MASK
}

pub(crate) fn pack(tag: u32, used: u64) -> u64 {
    (u64::from(tag) << USED_BITS) | used.min(USED_MAX)
}

pub(crate) fn unpack(w: u64) -> (u32, u64) {
    (u32::try_from(w >> USED_BITS).unwrap_or(0), w & USED_MASK)
}

/// Why a cell operation did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The ceiling would be exceeded.
    Full,
    /// `gc` removed the cell; fetch a fresh one.
    Retired,
}

/// Which counter a cell holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Usage per window (requests or tokens).
    Window,
    /// Requests in flight.
    Concurrency,
}

/// One counter shared by all workers.
#[derive(Debug)]
pub(crate) struct Cell {
    word: AtomicU64,
    /// Last admission time (ms); concurrency cells use it to decide idleness.
    last_ms: AtomicI64,
    /// Nominal window length of the rule that created the cell (gc idleness).
    window_ms: i64,
    pub(crate) class: Class,
    /// Cluster lease state; `Some` only for shared cells when a cluster is configured.
    pub(crate) lease: Option<Lease>,
}

impl Cell {
    /// A fresh cell; `tag` is the creating worker's current window (ignored for concurrency).
    pub(crate) fn new(
        class: Class,
        window_ms: i64,
        tag: u32,
        now_ms: i64,
        lease: Option<Lease>,
    ) -> Cell {
        let word = match class {
            Class::Window => pack(tag, 0),
            Class::Concurrency => 0,
        };
        Cell {
            word: AtomicU64::new(word),
            last_ms: AtomicI64::new(now_ms),
            window_ms,
            class,
            lease,
        }
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.word.load(Ordering::Acquire) == RETIRED
    }

    /// Reserve `amount` in window `cur_tag` under `limit` (`None` = no ceiling, used for overruns
    /// on `Allow` rules). Returns the tag actually charged: normally `cur_tag`, or a later window
    /// if another worker whose clock runs slightly ahead already rolled the cell.
    ///
    /// An exhausted budget (`used >= limit`) refuses even a zero reservation, so nothing is
    /// admitted once the budget is reported spent.
    pub(crate) fn reserve(
        &self,
        cur_tag: u32,
        amount: u64,
        limit: Option<u64>,
    ) -> Result<u32, Fail> {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w == RETIRED {
                return Err(Fail::Retired);
            }
            let (t, used) = unpack(w);
            let (tag, used) = if t == cur_tag || tag_newer(t, cur_tag) {
                (t, used)
            } else {
                (cur_tag, 0)
            };
            if let Some(limit) = limit
                && (used >= limit || used.saturating_add(amount) > limit)
            {
                return Err(Fail::Full);
            }
            let new = pack(tag, used.saturating_add(amount));
            match self
                .word
                .compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(tag),
                Err(cur) => w = cur,
            }
        }
    }

    /// Replace a reservation of `reserved` made in window `tag` by `actual`. Returns false (and
    /// changes nothing) if the window has rolled over or the cell was retired: the refund or extra
    /// charge then goes nowhere, because the window it belonged to is closed.
    pub(crate) fn settle(&self, tag: u32, reserved: u64, actual: u64) -> bool {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w == RETIRED {
                return false;
            }
            let (t, used) = unpack(w);
            if t != tag {
                return false;
            }
            let new = pack(t, used.saturating_sub(reserved).saturating_add(actual));
            match self
                .word
                .compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(cur) => w = cur,
            }
        }
    }

    /// Usage in window `tag` (0 if the cell is in another window).
    pub(crate) fn used_in(&self, tag: u32) -> u64 {
        let w = self.word.load(Ordering::Acquire);
        if w == RETIRED {
            return 0;
        }
        let (t, used) = unpack(w);
        if t == tag { used } else { 0 }
    }

    /// Take a concurrency slot if fewer than `limit` are in use.
    pub(crate) fn acquire(&self, limit: u64) -> Result<(), Fail> {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w == RETIRED {
                return Err(Fail::Retired);
            }
            if w >= limit {
                return Err(Fail::Full);
            }
            match self
                .word
                .compare_exchange_weak(w, w + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(cur) => w = cur,
            }
        }
    }

    /// Give a concurrency slot back.
    pub(crate) fn release(&self) {
        let mut w = self.word.load(Ordering::Acquire);
        // A cell holding a slot is never retired (gc only retires idle cells at 0), so the
        // RETIRED check is belt and braces.
        while w != RETIRED && w > 0 {
            match self
                .word
                .compare_exchange_weak(w, w - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(cur) => w = cur,
            }
        }
    }

    /// Record activity (concurrency idleness; cheap, relaxed).
    pub(crate) fn touch(&self, now_ms: i64) {
        self.last_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Retire the cell if it has been idle for more than two windows (and, for concurrency, holds
    /// no slot). Retirement is a CAS on the same word admissions use, so an admission racing with
    /// gc either lands first (and the cell is no longer idle) or sees `RETIRED` and moves on.
    pub(crate) fn try_retire(&self, now_ms: i64) -> bool {
        let w = self.word.load(Ordering::Acquire);
        if w == RETIRED {
            return true;
        }
        let window_s = u64::try_from(self.window_ms / 1000).unwrap_or(1).max(1);
        let idle = match self.class {
            Class::Window => {
                let (t, _) = unpack(w);
                let now_tag = tag_of(now_ms.div_euclid(1000) * 1000);
                tag_age_s(now_tag, t) >= window_s.saturating_mul(3)
            }
            Class::Concurrency => {
                w == 0
                    && now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed))
                        > self.window_ms.saturating_mul(2).max(60_000)
            }
        };
        let lease_idle = self
            .lease
            .as_ref()
            .is_none_or(|l| l.idle(now_ms, window_s.saturating_mul(3)));
        idle && lease_idle
            && self
                .word
                .compare_exchange(w, RETIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}
