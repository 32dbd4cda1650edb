//! The per-worker admission path. Each proxy worker thread owns one [`WorkerQuota`]: a private
//! map from (rule, subject key) to the shared counter cell, plus a per-rule clock cache, so the
//! steady state touches only worker-local memory and the atomics of the cells involved.
//!
//! Order inside `admit`: rules are evaluated in configuration order and each one reserves
//! immediately; the first refusal rolls back everything reserved so far (all-or-nothing), so a
//! denied request never holds budget on another rule.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::admission::{Admission, Hold, Mode, What};
use crate::cell::{Cell, Class, Fail, tag_of};
use crate::cluster::{Lease, Spend};
use crate::rule::dim_value;
use crate::shared::{QuotaShared, WorkerCounters};
use crate::{Denied, Estimate, Kind, LimitRule, Overrun, Rules, Subject, TokenKind};

/// How many times admit re-fetches a cell that gc retired under it before failing closed.
/// Retirement needs two idle windows, so more than one retry means something is badly wrong.
const RETIRED_RETRIES: usize = 4;

/// A rule's window and ceiling, valid until `valid_until` (window end, or the next local minute
/// for scheduled rules).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) tag: u32,
    pub(crate) limit: u64,
    valid_until: i64,
}

impl Clock {
    pub(crate) fn compute(rule: &LimitRule, now_ms: i64) -> Clock {
        let (start, end) = rule.window_bounds(now_ms);
        let limit = rule.limit_at(now_ms);
        let valid_until = if rule.schedule.is_empty() {
            end
        } else {
            end.min(now_ms.saturating_add(rule.ms_to_next_local_minute(now_ms)))
        };
        Clock {
            start,
            end,
            tag: tag_of(start),
            limit,
            valid_until,
        }
    }

    pub(crate) fn retry_after_s(&self, now_ms: i64) -> u64 {
        let ms = self.end.saturating_sub(now_ms).max(1);
        u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
    }
}

/// Per-worker quota handle (one per worker thread; not shared).
#[derive(Debug)]
pub struct WorkerQuota {
    shared: Arc<QuotaShared>,
    counters: Arc<WorkerCounters>,
    cache: HashMap<Box<str>, Arc<Cell>>,
    epoch: u64,
    scratch: String,
    clocks: Vec<Clock>,
    clocks_for: Option<Arc<Rules>>,
}

impl WorkerQuota {
    /// A handle for one worker thread.
    pub fn new(shared: Arc<QuotaShared>) -> WorkerQuota {
        let counters = shared.register_worker();
        let epoch = shared.registry.epoch();
        WorkerQuota {
            shared,
            counters,
            cache: HashMap::new(),
            epoch,
            scratch: String::new(),
            clocks: Vec::new(),
            clocks_for: None,
        }
    }

    /// Admit a request against every applicable rule, reserving its estimate. All-or-nothing:
    /// on refusal nothing stays reserved. No lock, no network, no allocation on a cache hit
    /// beyond the returned admission's small hold list.
    pub fn admit(
        &mut self,
        rules: &Arc<Rules>,
        subj: &Subject<'_>,
        est: Estimate,
        now_ms: i64,
    ) -> Result<Admission, Denied> {
        if rules.is_empty() {
            return Ok(Admission::none());
        }
        self.sync_epoch();
        self.sync_clocks(rules);
        let mut holds: Vec<Hold> = Vec::new();
        for (i, rule) in rules.rules().iter().enumerate() {
            if !rule.filter.matches(subj) {
                continue;
            }
            let clock = self.clock(rule, i, now_ms);
            match self.hold(rules, i, rule, subj, est, clock, now_ms) {
                Ok(h) => holds.push(h),
                Err(d) => {
                    Admission::rollback(holds, &self.counters);
                    return Err(d);
                }
            }
        }
        Ok(Admission::new(
            rules.clone(),
            self.counters.clone(),
            holds,
            est,
        ))
    }

    /// Reserve on one rule, re-fetching the cell if gc retired it under us.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        rules: &Arc<Rules>,
        i: usize,
        rule: &LimitRule,
        subj: &Subject<'_>,
        est: Estimate,
        clock: Clock,
        now_ms: i64,
    ) -> Result<Hold, Denied> {
        let throttled = |retry_after_s| Denied::Throttled {
            rule: rules.name(i),
            kind: rule.kind,
            retry_after_s,
        };
        for _ in 0..RETIRED_RETRIES {
            let cell = self.cell(rule, subj, clock.tag, now_ms);
            let res = match rule.kind {
                Kind::Concurrency => cell
                    .acquire(clock.limit)
                    .map(|()| What::Slot)
                    .map_err(Denial::Fail),
                Kind::Requests => reserve_window(&cell, &clock, 1, now_ms)
                    .map(|(tag, mode)| What::Requests { tag, mode }),
                Kind::Tokens(kind) => {
                    let amount = token_amount(kind, est.prompt, est.completion);
                    reserve_window(&cell, &clock, amount, now_ms).map(|(tag, mode)| What::Tokens {
                        kind,
                        cut: rule.stream_overrun == Overrun::Cut,
                        tag,
                        reserved: amount,
                        prior: 0,
                        mode,
                    })
                }
            };
            match res {
                Ok(what) => {
                    cell.touch(now_ms);
                    let hold = Hold {
                        rule: i,
                        cell,
                        what,
                    };
                    hold.count(&self.counters, 1);
                    return Ok(hold);
                }
                Err(Denial::Pending) => return Err(Denied::Pending),
                Err(Denial::Fail(Fail::Full)) => {
                    let retry = match rule.kind {
                        Kind::Concurrency => 1,
                        _ => clock.retry_after_s(now_ms),
                    };
                    return Err(throttled(retry));
                }
                Err(Denial::Fail(Fail::Retired)) => {
                    self.build_key(rule, subj);
                    self.cache.remove(self.scratch.as_str());
                }
            }
        }
        Err(throttled(1))
    }

    fn sync_epoch(&mut self) {
        let e = self.shared.registry.epoch();
        if e != self.epoch {
            self.epoch = e;
            self.cache.retain(|_, c| !c.is_retired());
        }
    }

    fn sync_clocks(&mut self, rules: &Arc<Rules>) {
        let same = self
            .clocks_for
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, rules));
        if !same {
            self.clocks_for = Some(rules.clone());
            self.clocks.clear();
            // valid_until = 0 forces a compute on first use.
            self.clocks.resize(rules.rules().len(), Clock::default());
        }
    }

    fn clock(&mut self, rule: &LimitRule, i: usize, now_ms: i64) -> Clock {
        match self.clocks.get_mut(i) {
            Some(c) if now_ms >= c.start && now_ms < c.valid_until => *c,
            Some(c) => {
                *c = Clock::compute(rule, now_ms);
                *c
            }
            None => Clock::compute(rule, now_ms),
        }
    }

    /// Write the cache key for (rule, subject) into `scratch`; returns where the subject part
    /// starts. Layout: `name \0 class shared \0 subject`, where the subject is the `per` values
    /// joined by `|` with `%`, `|` and `:` percent-escaped, so distinct tuples never collide and
    /// the subject part can go into a Redis key as is.
    fn build_key(&mut self, rule: &LimitRule, subj: &Subject<'_>) -> usize {
        let s = &mut self.scratch;
        s.clear();
        s.push_str(&rule.name);
        s.push('\0');
        s.push(match rule.kind {
            Kind::Concurrency => 'c',
            _ => 'w',
        });
        s.push(if rule.shared { 's' } else { 'l' });
        s.push('\0');
        let at = s.len();
        for (n, d) in rule.per.iter().enumerate() {
            if n > 0 {
                s.push('|');
            }
            escape_into(s, dim_value(subj, *d));
        }
        at
    }

    fn cell(&mut self, rule: &LimitRule, subj: &Subject<'_>, tag: u32, now_ms: i64) -> Arc<Cell> {
        let at = self.build_key(rule, subj);
        if let Some(c) = self.cache.get(self.scratch.as_str()) {
            return c.clone();
        }
        let class = match rule.kind {
            Kind::Concurrency => Class::Concurrency,
            _ => Class::Window,
        };
        let lease = match (&self.shared.link, class) {
            (Some(link), Class::Window) if rule.shared => {
                let subject = self.scratch.get(at..).unwrap_or("");
                Some(Lease::new(
                    link.clone(),
                    &rule.name,
                    subject,
                    matches!(rule.kind, Kind::Tokens(_)),
                ))
            }
            _ => None,
        };
        let window_ms = rule.window_ms();
        let key = self.scratch.as_str();
        let make = || Cell::new(class, window_ms, tag, now_ms, lease);
        let cell = match self.shared.registry.get_or_insert(key, make) {
            Some(c) => c,
            // Only if the shard table were empty; keep the request working on a private cell.
            None => Arc::new(Cell::new(class, window_ms, tag, now_ms, None)),
        };
        self.cache.insert(Box::from(key), cell.clone());
        cell
    }
}

/// Why a windowed reservation failed.
pub(crate) enum Denial {
    Fail(Fail),
    Pending,
}

/// Reserve `amount` in the cell's current window: locally, from the cluster lease, or (Redis
/// down) from the local fallback share.
pub(crate) fn reserve_window(
    cell: &Cell,
    clock: &Clock,
    amount: u64,
    now_ms: i64,
) -> Result<(u32, Mode), Denial> {
    let Some(lease) = &cell.lease else {
        return cell
            .reserve(clock.tag, amount, Some(clock.limit))
            .map(|t| (t, Mode::Local))
            .map_err(Denial::Fail);
    };
    if cell.is_retired() {
        return Err(Denial::Fail(Fail::Retired));
    }
    match lease.spend(clock, amount, now_ms) {
        Spend::Ok(tag) => Ok((tag, Mode::Lease { start: clock.start })),
        Spend::Pending => Err(Denial::Pending),
        Spend::Exhausted => Err(Denial::Fail(Fail::Full)),
        Spend::Down => {
            let limit = lease.fallback_limit(clock.limit);
            let r = cell
                .reserve(clock.tag, amount, Some(limit))
                .map(|t| (t, Mode::Fallback))
                .map_err(Denial::Fail);
            if r.is_ok() {
                lease.count_fallback(clock.start);
            }
            r
        }
    }
}

pub(crate) fn token_amount(kind: TokenKind, prompt: u64, completion: u64) -> u64 {
    match kind {
        TokenKind::Prompt => prompt,
        TokenKind::Completion => completion,
        TokenKind::Total => prompt.saturating_add(completion),
    }
}

fn escape_into(s: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'%' | b'|' | b':')) {
        s.push_str(v);
        return;
    }
    for ch in v.chars() {
        match ch {
            '%' | '|' | ':' => {
                let _ = write!(s, "%{:02X}", u32::from(ch));
            }
            _ => s.push(ch),
        }
    }
}
