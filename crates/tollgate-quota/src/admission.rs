//! What an admitted request holds until it ends: its reservations on each applicable rule, and
//! the two ways to end them — [`Admission::settle`] with actual usage, or dropping the admission
//! (the request never reached a backend: tokens are refunded, requests-per-window stay counted).
//!
//! Settlement replaces each reservation by the actual usage *in the window the reservation was
//! made in*. If that window has closed since admission, the refund or extra charge goes nowhere:
//! the closed window's count is final and the new window starts clean.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cell::Cell;
use crate::shared::WorkerCounters;
use crate::worker::{Clock, token_amount};
use crate::{Estimate, Rules, Settled, TokenKind, Usage};

/// Where a windowed reservation was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The cell's own counter (local rule).
    Local,
    /// The cell's counter as the local fallback share (cluster rule, Redis down).
    Fallback,
    /// The cluster lease for the window starting at `start`.
    Lease { start: i64 },
}

#[derive(Debug)]
pub(crate) enum What {
    Slot,
    Requests {
        tag: u32,
        mode: Mode,
    },
    Tokens {
        kind: TokenKind,
        cut: bool,
        tag: u32,
        /// Reserved in window `tag` (estimate plus extensions).
        reserved: u64,
        /// Charged to earlier windows (a stream extended across a window boundary).
        prior: u64,
        mode: Mode,
    },
}

/// One reservation on one rule.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) rule: usize,
    pub(crate) cell: Arc<Cell>,
    pub(crate) what: What,
}

impl Hold {
    /// Add (`sign = 1`) or remove (`-1`) this hold from the worker's outstanding counters.
    pub(crate) fn count(&self, c: &WorkerCounters, sign: i64) {
        match &self.what {
            What::Slot => {
                c.slots.fetch_add(sign, Ordering::Relaxed);
            }
            What::Tokens { reserved, .. } => {
                let r = i64::try_from(*reserved).unwrap_or(i64::MAX);
                c.reserved.fetch_add(sign * r, Ordering::Relaxed);
            }
            What::Requests { .. } => {}
        }
    }

    /// Replace the reservation by `actual` (tokens) and release slots. `refund_requests` undoes a
    /// requests-per-window reservation too (rollback of a refused admission).
    fn finish(&self, actual: Usage, refund_requests: bool, now_ms: i64) {
        match &self.what {
            What::Slot => self.cell.release(),
            What::Requests { tag, mode } => {
                if refund_requests {
                    self.apply(*mode, *tag, 1, 0, now_ms);
                }
            }
            What::Tokens {
                kind,
                tag,
                reserved,
                prior,
                mode,
                ..
            } => {
                let a =
                    token_amount(*kind, actual.prompt, actual.completion).saturating_sub(*prior);
                self.apply(*mode, *tag, *reserved, a, now_ms);
            }
        }
    }

    fn apply(&self, mode: Mode, tag: u32, reserved: u64, actual: u64, now_ms: i64) {
        match (mode, &self.cell.lease) {
            (Mode::Lease { start }, Some(lease)) => {
                lease.settle(start, tag, reserved, actual, now_ms)
            }
            _ => {
                self.cell.settle(tag, reserved, actual);
            }
        }
    }
}

/// An admitted request's reservations. Settle it with actual usage when the request ends;
/// dropping it instead releases everything as if zero tokens were used (requests per window stay
/// counted: the request was admitted).
#[derive(Debug)]
pub struct Admission {
    inner: Option<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Arc<Rules>,
    counters: Arc<WorkerCounters>,
    holds: Vec<Hold>,
    est: Estimate,
    extended: u64,
}

impl Admission {
    /// No rule applied.
    pub(crate) fn none() -> Admission {
        Admission { inner: None }
    }

    pub(crate) fn new(
        rules: Arc<Rules>,
        counters: Arc<WorkerCounters>,
        holds: Vec<Hold>,
        est: Estimate,
    ) -> Admission {
        if holds.is_empty() {
            return Admission::none();
        }
        Admission {
            inner: Some(Inner {
                rules,
                counters,
                holds,
                est,
                extended: 0,
            }),
        }
    }

    /// Undo a partially built admission (a later rule refused): everything is released,
    /// requests-per-window included.
    pub(crate) fn rollback(holds: Vec<Hold>, counters: &WorkerCounters) {
        for h in holds {
            h.count(counters, -1);
            // No clock here: i64::MIN tells lease bookkeeping to use the window start.
            h.finish(Usage::default(), true, i64::MIN);
        }
    }

    /// Tokens this admission holds: the largest reservation over the applicable token rules
    /// (a Total rule holds prompt + completion, a Prompt rule only the prompt), including
    /// extensions. This is "what the request may cost", what a ledger records as reserved; it is
    /// not a sum over rules (two rules counting the same tokens do not double the cost).
    pub fn reserved_tokens(&self) -> u64 {
        let Some(inner) = &self.inner else { return 0 };
        inner
            .holds
            .iter()
            .filter_map(|h| match &h.what {
                What::Tokens {
                    reserved, prior, ..
                } => Some(reserved.saturating_add(*prior)),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Tokens of completion still covered by the reservation on every applicable Cut rule (None
    /// if no Cut rule counting completion applies): the estimate's completion plus every
    /// successful [`extend_completion`](Self::extend_completion). The proxy compares it with the
    /// completion tokens streamed so far.
    pub fn completion_allowance(&self) -> Option<u64> {
        let inner = self.inner.as_ref()?;
        let cut = inner.holds.iter().any(|h| {
            matches!(
                h.what,
                What::Tokens {
                    cut: true,
                    kind: TokenKind::Completion | TokenKind::Total,
                    ..
                }
            )
        });
        cut.then(|| inner.est.completion.saturating_add(inner.extended))
    }

    /// Try to reserve `more` completion tokens on every applicable token rule counting completion
    /// (used while a stream runs past its reservation). Returns false — and reserves nothing — if
    /// a Cut rule cannot cover it; the proxy then ends the stream with an SSE error event. Allow
    /// rules always take the extra, even past their limit (that overrun is the reported drift).
    /// If the window rolled over since admission, the extra is charged to the new window.
    pub fn extend_completion(&mut self, more: u64, now_ms: i64) -> bool {
        let Some(inner) = &mut self.inner else {
            return true;
        };
        let mut taken: Vec<(usize, u32, Mode)> = Vec::new();
        // Cut rules first, so a refusal is found before Allow rules record anything.
        for pass_cut in [true, false] {
            for (n, h) in inner.holds.iter().enumerate() {
                let What::Tokens {
                    kind: TokenKind::Completion | TokenKind::Total,
                    cut,
                    mode,
                    ..
                } = h.what
                else {
                    continue;
                };
                if cut != pass_cut {
                    continue;
                }
                let Some(rule) = inner.rules.rules().get(h.rule) else {
                    continue;
                };
                let clock = Clock::compute(rule, now_ms);
                match extend_one(h, mode, &clock, more, cut, now_ms) {
                    Some((tag, mode)) => taken.push((n, tag, mode)),
                    None => {
                        for (n, tag, mode) in taken {
                            if let Some(h) = inner.holds.get(n) {
                                h.apply(mode, tag, more, 0, now_ms);
                            }
                        }
                        return false;
                    }
                }
            }
        }
        for (n, new_tag, new_mode) in taken {
            let Some(h) = inner.holds.get_mut(n) else {
                continue;
            };
            let mut delta = i64::try_from(more).unwrap_or(i64::MAX);
            if let What::Tokens {
                tag,
                reserved,
                prior,
                mode,
                ..
            } = &mut h.what
            {
                if *tag == new_tag && *mode == new_mode {
                    *reserved = reserved.saturating_add(more);
                } else {
                    // The old window's reservation is final (its window closed); only the new
                    // window's part stays outstanding.
                    delta -= i64::try_from(*reserved).unwrap_or(i64::MAX);
                    *prior = prior.saturating_add(*reserved);
                    *reserved = more;
                    *tag = new_tag;
                    *mode = new_mode;
                }
            }
            inner.counters.reserved.fetch_add(delta, Ordering::Relaxed);
        }
        inner.extended = inner.extended.saturating_add(more);
        true
    }

    /// End the request with its actual usage: each token reservation is replaced by the actual
    /// count in the window it was made in (refund when lower, extra charge when higher — which may
    /// push usage above the limit), concurrency slots are released. Returns reserved vs actual
    /// tokens (same counting as [`reserved_tokens`](Self::reserved_tokens)) for drift metrics.
    pub fn settle(mut self, actual: Usage, now_ms: i64) -> Settled {
        let Some(inner) = self.inner.take() else {
            return Settled::default();
        };
        let mut settled = Settled::default();
        for h in &inner.holds {
            if let What::Tokens {
                kind,
                reserved,
                prior,
                ..
            } = &h.what
            {
                let r = reserved.saturating_add(*prior);
                if r >= settled.reserved {
                    settled.reserved = r;
                    settled.actual = token_amount(*kind, actual.prompt, actual.completion);
                }
            }
            h.count(&inner.counters, -1);
            h.finish(actual, false, now_ms);
        }
        settled
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            for h in &inner.holds {
                h.count(&inner.counters, -1);
                h.finish(Usage::default(), false, i64::MIN);
            }
        }
    }
}

/// Reserve `more` on one hold's cell in the current window. `None` = a Cut rule refused.
fn extend_one(
    h: &Hold,
    mode: Mode,
    clock: &Clock,
    more: u64,
    cut: bool,
    now_ms: i64,
) -> Option<(u32, Mode)> {
    let limit = if cut { Some(clock.limit) } else { None };
    match (mode, &h.cell.lease) {
        (Mode::Lease { .. }, Some(lease)) => lease
            .extend(clock, more, cut, now_ms)
            .map(|t| (t, Mode::Lease { start: clock.start })),
        (Mode::Fallback, Some(lease)) => {
            let limit = limit.map(|l| lease.fallback_limit(l));
            let r = h.cell.reserve(clock.tag, more, limit).ok();
            if r.is_some() {
                lease.count_fallback(clock.start);
            }
            r.map(|t| (t, Mode::Fallback))
        }
        _ => h
            .cell
            .reserve(clock.tag, more, limit)
            .ok()
            .map(|t| (t, Mode::Local)),
    }
}
