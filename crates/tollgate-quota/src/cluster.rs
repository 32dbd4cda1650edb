//! Cluster mode: budgets shared between gateway instances through Redis, without a network call
//! on the data path.
//!
//! An instance does not own a shared budget; it holds a **lease** per cell — an amount Redis
//! granted it in the current window. Admission spends from the lease with a CAS (see [`Lease`]);
//! when the lease runs low the cell asks the `tollgate-quota-sync` thread (see `sync.rs`) for
//! another one. Only that thread talks to Redis. When Redis is unreachable every shared cell
//! falls back to a local share of its limit, and the spend made meanwhile is pushed to Redis once
//! it is back.
//!
//! Concurrency rules and `shared = false` rules stay local in cluster mode: a remote in-flight
//! count would leak slots forever whenever an instance crashed while holding them.

mod resp;
mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use crate::cell::{pack, tag_newer, tag_of, unpack};
use crate::shared::{QuotaStats, Registry};
use crate::worker::Clock;

/// Redis-shared budgets (`[quota.cluster]` in the config).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Key prefix: keys are `<prefix>:<rule>:<subject key>:<window start ms>`.
    pub prefix: String,
    /// Tokens taken per lease. Larger = fewer Redis calls, but more budget parked on one
    /// instance (another instance may be refused while this one holds unused lease).
    pub lease_tokens: u64,
    /// Requests taken per lease (same trade-off).
    pub lease_requests: u64,
    /// Connect/read/write timeout for Redis; past it Redis is marked down.
    pub timeout: Duration,
    /// Fraction of each limit this instance may use on its own while Redis is down
    /// (e.g. 1 / number of instances).
    pub fallback_share: f64,
}

/// Work for the sync thread.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Take a lease of up to `want` for `st` in the window `[start, end)`.
    Refill {
        st: Arc<LeaseState>,
        start: i64,
        end: i64,
        now_ms: i64,
        limit: u64,
        want: u64,
    },
    /// `INCRBY` (positive) or `DECRBY` (negative) a window key: settlement overruns beyond the
    /// lease, and unused lease returned.
    Adjust {
        key: String,
        delta: i64,
        ttl_ms: i64,
    },
    /// Return unused leases and exit; acknowledges on `ack`.
    Stop { ack: Sender<()> },
}

/// State shared by every cell of the cluster and the sync thread.
#[derive(Debug)]
pub(crate) struct Link {
    cfg: ClusterConfig,
    tx: Sender<Msg>,
    up: AtomicBool,
    stopped: AtomicBool,
    errors: AtomicU64,
    fallback: AtomicU64,
    taken: AtomicU64,
    returned: AtomicU64,
}

/// Start the sync thread. If the thread cannot be spawned the link stays down forever and shared
/// rules run on the fallback share (reported through `stats().up`).
pub(crate) fn start(cfg: ClusterConfig, registry: Arc<Registry>) -> Arc<Link> {
    let (tx, rx) = mpsc::channel();
    let link = Arc::new(Link {
        cfg,
        tx,
        up: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        fallback: AtomicU64::new(0),
        taken: AtomicU64::new(0),
        returned: AtomicU64::new(0),
    });
    let l = link.clone();
    let spawned = std::thread::Builder::new()
        .name("tollgate-quota-sync".into())
        .spawn(move || sync::run(l, registry, rx));
    if let Err(e) = spawned {
        eprintln!(
            "tollgate-quota: cannot start the sync thread ({e}); shared limits use the fallback share"
        );
        link.stopped.store(true, Ordering::Release);
    }
    link
}

impl Link {
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub(crate) fn fill_stats(&self, s: &mut QuotaStats) {
        s.cluster = true;
        s.up = self.is_up();
        s.fallback_admissions = self.fallback.load(Ordering::Relaxed);
        s.redis_errors = self.errors.load(Ordering::Relaxed);
        s.leases_taken = self.taken.load(Ordering::Relaxed);
        s.leases_returned = self.returned.load(Ordering::Relaxed);
    }

    pub(crate) fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ack, done) = mpsc::channel();
        if self.tx.send(Msg::Stop { ack }).is_ok() {
            // Returning leases is a handful of round-trips, each bounded by the timeout.
            let _ = done.recv_timeout(self.cfg.timeout.saturating_mul(4) + Duration::from_secs(1));
        }
        self.up.store(false, Ordering::Release);
    }

    fn send(&self, m: Msg) -> bool {
        !self.stopped.load(Ordering::Acquire) && self.tx.send(m).is_ok()
    }
}

/// Result of spending from a lease.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Spend {
    /// Spent in the window with this tag.
    Ok(u32),
    /// The lease cannot cover it and a refill is in flight: retry in a moment.
    Pending,
    /// Redis said the global budget is spent for this window.
    Exhausted,
    /// Redis is down: use the fallback share.
    Down,
}

/// Lease state the sync thread deposits into (behind an `Arc` so refill messages can carry it).
#[derive(Debug)]
pub(crate) struct LeaseState {
    /// `<prefix>:<rule>:<subject key>`; the window start is appended per window.
    pub(crate) base: String,
    /// `(tag, remaining)` packed like a cell word.
    pub(crate) word: AtomicU64,
    /// Start (ms) of the window the current lease belongs to.
    pub(crate) start: AtomicI64,
    /// End (ms) of that window.
    pub(crate) end: AtomicI64,
    pub(crate) inflight: AtomicBool,
    /// Tag of a window Redis reported exhausted (`u64::MAX` = none).
    pub(crate) exhausted: AtomicU64,
    /// Window start of the latest fallback spend, and how much of it was pushed to Redis.
    pub(crate) fallback_start: AtomicI64,
    pub(crate) fallback_pushed: AtomicU64,
}

/// Per-cell lease handle.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) link: Arc<Link>,
    pub(crate) st: Arc<LeaseState>,
    size: u64,
}

/// Expiry margin past the window end for window keys, so late settlements still find the key.
pub(crate) const KEY_MARGIN_MS: i64 = 60_000;

pub(crate) fn key_for(base: &str, start: i64) -> String {
    format!("{base}:{start}")
}

impl Lease {
    pub(crate) fn new(link: Arc<Link>, rule: &str, subject: &str, tokens: bool) -> Lease {
        let size = if tokens {
            link.cfg.lease_tokens
        } else {
            link.cfg.lease_requests
        }
        .max(1);
        let base = format!("{}:{rule}:{subject}", link.cfg.prefix);
        Lease {
            link,
            size,
            st: Arc::new(LeaseState {
                base,
                word: AtomicU64::new(pack(0, 0)),
                start: AtomicI64::new(i64::MIN),
                end: AtomicI64::new(i64::MIN),
                inflight: AtomicBool::new(false),
                exhausted: AtomicU64::new(u64::MAX),
                fallback_start: AtomicI64::new(i64::MIN),
                fallback_pushed: AtomicU64::new(0),
            }),
        }
    }

    /// Idle for gc: no refill in flight and the lease window is old.
    pub(crate) fn idle(&self, now_ms: i64, age_s: u64) -> bool {
        let age_ms = i64::try_from(age_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        !self.st.inflight.load(Ordering::Acquire)
            && now_ms.saturating_sub(self.st.start.load(Ordering::Acquire)) >= age_ms
    }

    pub(crate) fn fallback_limit(&self, limit: u64) -> u64 {
        let share = self.link.cfg.fallback_share.clamp(0.0, 1.0);
        // Float → int: `as` saturates, which is what we want for huge limits.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let l = (limit as f64 * share).floor() as u64;
        l
    }

    /// A fallback admission happened in the window starting at `start`.
    pub(crate) fn count_fallback(&self, start: i64) {
        self.link.fallback.fetch_add(1, Ordering::Relaxed);
        self.st.fallback_start.store(start, Ordering::Release);
    }

    fn ask(&self, clock: &Clock, now_ms: i64, want: u64) {
        if self
            .st
            .inflight
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let sent = self.link.send(Msg::Refill {
            st: self.st.clone(),
            start: clock.start,
            end: clock.end,
            now_ms,
            limit: clock.limit,
            want: want.max(self.size),
        });
        if !sent {
            self.st.inflight.store(false, Ordering::Release);
        }
    }

    /// Spend `amount` from the lease for `clock`'s window (no network: at most a channel send
    /// asking the sync thread for a refill).
    pub(crate) fn spend(&self, clock: &Clock, amount: u64, now_ms: i64) -> Spend {
        if !self.link.is_up() {
            return Spend::Down;
        }
        let st = &self.st;
        let mut w = st.word.load(Ordering::Acquire);
        loop {
            let (t, rem) = unpack(w);
            if t != clock.tag && !tag_newer(t, clock.tag) {
                // A new window: the old lease's remainder goes back to Redis.
                let old_start = st.start.load(Ordering::Acquire);
                match st.word.compare_exchange(
                    w,
                    pack(clock.tag, 0),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        if rem > 0 && tag_of(old_start) == t {
                            self.give_back(old_start, rem, now_ms);
                        }
                        w = pack(clock.tag, 0);
                    }
                    Err(cur) => w = cur,
                }
                continue;
            }
            if rem < amount || (amount == 0 && rem == 0) {
                let exhausted = st.exhausted.load(Ordering::Acquire) == u64::from(t);
                // Keep asking in the background even when exhausted: other instances may return
                // leases. At most one request per cell is in flight.
                self.ask(clock, now_ms, amount.saturating_sub(rem));
                return if exhausted {
                    Spend::Exhausted
                } else {
                    Spend::Pending
                };
            }
            match st.word.compare_exchange_weak(
                w,
                pack(t, rem - amount),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if rem - amount < self.size / 2 {
                        self.ask(clock, now_ms, self.size);
                    }
                    return Spend::Ok(t);
                }
                Err(cur) => w = cur,
            }
        }
    }

    /// Extend a lease-mode reservation. Cut: only from the lease (a lease that cannot cover it
    /// refuses, even if a refill is in flight). Allow: from the lease if possible, else charged
    /// to Redis directly.
    pub(crate) fn extend(&self, clock: &Clock, more: u64, cut: bool, now_ms: i64) -> Option<u32> {
        match self.spend(clock, more, now_ms) {
            Spend::Ok(t) => Some(t),
            _ if cut => None,
            _ => {
                self.charge(
                    clock.start,
                    clock.end,
                    i64::try_from(more).unwrap_or(i64::MAX),
                    now_ms,
                );
                Some(clock.tag)
            }
        }
    }

    /// Replace a lease-mode reservation of `reserved` (window `start`, tag `tag`) by `actual`.
    pub(crate) fn settle(&self, start: i64, tag: u32, reserved: u64, actual: u64, now_ms: i64) {
        let st = &self.st;
        if actual <= reserved {
            let refund = reserved - actual;
            let mut w = st.word.load(Ordering::Acquire);
            loop {
                let (t, rem) = unpack(w);
                if t != tag || refund == 0 {
                    // Window closed: the refund goes nowhere (Redis keeps the reserved amount).
                    return;
                }
                let rem2 = rem.saturating_add(refund);
                // Too much parked here: hand the excess back so other instances can use it.
                let excess = if rem2 > self.size.saturating_mul(2) {
                    rem2 - self.size
                } else {
                    0
                };
                match st.word.compare_exchange_weak(
                    w,
                    pack(t, rem2 - excess),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        if excess > 0 {
                            self.give_back(start, excess, now_ms);
                        }
                        return;
                    }
                    Err(cur) => w = cur,
                }
            }
        }
        // Overrun: take what the lease still holds, charge the rest to Redis.
        let mut extra = actual - reserved;
        let mut w = st.word.load(Ordering::Acquire);
        loop {
            let (t, rem) = unpack(w);
            if t != tag {
                if tag_newer(t, tag) {
                    return; // the window closed: the extra goes nowhere
                }
                break;
            }
            let take = rem.min(extra);
            match st.word.compare_exchange_weak(
                w,
                pack(t, rem - take),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    extra -= take;
                    break;
                }
                Err(cur) => w = cur,
            }
        }
        if extra > 0 {
            let end = st.end.load(Ordering::Acquire).max(start);
            self.charge(start, end, i64::try_from(extra).unwrap_or(i64::MAX), now_ms);
        }
    }

    fn give_back(&self, start: i64, amount: u64, now_ms: i64) {
        let end = self.st.end.load(Ordering::Acquire).max(start);
        self.charge(
            start,
            end,
            -i64::try_from(amount).unwrap_or(i64::MAX),
            now_ms,
        );
    }

    fn charge(&self, start: i64, end: i64, delta: i64, now_ms: i64) {
        // Drop/rollback have no clock: count the expiry from the window start instead.
        let now_ms = if now_ms == i64::MIN { start } else { now_ms };
        let ttl_ms = end.saturating_sub(now_ms).max(0) + KEY_MARGIN_MS;
        self.link.send(Msg::Adjust {
            key: key_for(&self.st.base, start),
            delta,
            ttl_ms,
        });
    }
}
