//! The `tollgate-quota-sync` thread: the only code that talks to Redis. It takes leases when a
//! cell asks, applies overrun charges and lease returns, watches the connection (PING every
//! second when idle, reconnect every second when down), pushes the spend made on the fallback
//! share once Redis is back, and returns every unused lease on `stop()`.
//!
//! It waits with `Receiver::recv_timeout`, never `thread::sleep`, so a stop request is served at
//! once.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::resp::{self, Conn, Target};
use super::{KEY_MARGIN_MS, LeaseState, Link, Msg, key_for};
use crate::cell::{pack, tag_newer, tag_of, unpack};
use crate::shared::Registry;

/// Grants `min(want, limit - used)` on KEYS[1], refreshes its expiry, returns the grant.
const LEASE_SCRIPT: &str = "\
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = tonumber(ARGV[1]) - used
local want = tonumber(ARGV[2])
if grant > want then grant = want end
if grant < 0 then grant = 0 end
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return grant";

/// Adds ARGV[1] (may be negative) to KEYS[1]. A negative delta never creates a key (the window
/// it returns to has expired: nothing to give back); a new key gets expiry ARGV[2]; an existing
/// key keeps its expiry (a return must not shorten a long window's life).
const ADJUST_SCRIPT: &str = "\
local d = tonumber(ARGV[1])
if d < 0 and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('INCRBY', KEYS[1], d)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v";

/// Reconnect attempts while down, and PINGs while idle.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Longest the thread blocks on its queue; bounds how stale the fallback push can be.
const TICK: Duration = Duration::from_millis(100);
/// Adjustments kept while Redis is down (oldest dropped past this: memory stays bounded during a
/// long outage, at the cost of under-counting in Redis).
const BACKLOG_MAX: usize = 100_000;

struct Sync {
    link: Arc<Link>,
    registry: Arc<Registry>,
    target: Option<Target>,
    conn: Option<Conn>,
    next_try: Instant,
    last_io: Instant,
    /// Last fallback push. Pushed on its own clock, not only on idle heartbeats: an admission
    /// that saw Redis down while the link was coming back lands in the fallback counter after
    /// the reconnect push, and busy links (refills keep `last_io` fresh) never heartbeat.
    last_push: Instant,
    backlog: Vec<(String, i64, i64)>,
}

pub(super) fn run(link: Arc<Link>, registry: Arc<Registry>, rx: Receiver<Msg>) {
    let target = match resp::parse_url(&link.cfg.url) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("tollgate-quota: {e}; shared limits use the fallback share");
            None
        }
    };
    let now = Instant::now();
    let mut s = Sync {
        link,
        registry,
        target,
        conn: None,
        next_try: now,
        last_io: now,
        last_push: now,
        backlog: Vec::new(),
    };
    loop {
        s.maintain();
        match rx.recv_timeout(TICK) {
            Ok(Msg::Stop { ack }) => {
                s.return_leases();
                s.set_up(false);
                let _ = ack.send(());
                return;
            }
            Ok(Msg::Refill {
                st,
                start,
                end,
                now_ms,
                limit,
                want,
            }) => s.refill(&st, start, end, now_ms, limit, want),
            Ok(Msg::Adjust { key, delta, ttl_ms }) => s.adjust(key, delta, ttl_ms),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Sync {
    fn set_up(&self, up: bool) {
        if self.link.up.swap(up, Ordering::AcqRel) != up {
            if up {
                eprintln!("tollgate-quota: redis is up, shared limits use leases");
            } else {
                eprintln!(
                    "tollgate-quota: redis is down, shared limits use the local fallback share"
                );
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        self.link.errors.fetch_add(1, Ordering::Relaxed);
        self.conn = None;
        self.next_try = Instant::now() + HEARTBEAT;
        if self.link.is_up() {
            eprintln!("tollgate-quota: redis error: {e}");
        }
        self.set_up(false);
    }

    /// Reconnect when down (every second), PING when idle, push fallback spend when up.
    fn maintain(&mut self) {
        let now = Instant::now();
        if self.conn.is_none() {
            if now < self.next_try {
                return;
            }
            let Some(t) = &self.target else { return };
            match Conn::open(t, self.link.cfg.timeout) {
                Ok(c) => {
                    self.conn = Some(c);
                    self.last_io = now;
                    if self
                        .flush_backlog()
                        .and_then(|()| self.push_fallback())
                        .is_ok()
                    {
                        self.set_up(true);
                    }
                }
                Err(e) => self.fail(&e),
            }
            return;
        }
        if now.duration_since(self.last_io) >= HEARTBEAT {
            self.last_io = now;
            let r = match &mut self.conn {
                Some(c) => c.ok(&[b"PING"]).map(|_| ()),
                None => Ok(()),
            };
            if let Err(e) = r {
                self.fail(&e);
                return;
            }
        }
        if now.duration_since(self.last_push) >= TICK {
            self.last_push = now;
            if let Err(e) = self.push_fallback() {
                self.fail(&e);
            }
        }
    }

    fn conn(&mut self) -> io::Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "redis not connected"))
    }

    fn refill(
        &mut self,
        st: &Arc<LeaseState>,
        start: i64,
        end: i64,
        now_ms: i64,
        limit: u64,
        want: u64,
    ) {
        let key = key_for(&st.base, start);
        let ttl = end.saturating_sub(now_ms).max(0) + KEY_MARGIN_MS;
        let r = self.conn().and_then(|c| {
            c.int(&[
                b"EVAL",
                LEASE_SCRIPT.as_bytes(),
                b"1",
                key.as_bytes(),
                limit.min(i64::MAX as u64).to_string().as_bytes(),
                want.to_string().as_bytes(),
                ttl.to_string().as_bytes(),
            ])
        });
        match r {
            Ok(grant) => {
                self.last_io = Instant::now();
                let grant = u64::try_from(grant).unwrap_or(0);
                if grant > 0 {
                    self.link.taken.fetch_add(1, Ordering::Relaxed);
                    self.deposit(st, start, end, grant, ttl);
                }
                let tag = u64::from(tag_of(start));
                if grant < want {
                    st.exhausted.store(tag, Ordering::Release);
                } else {
                    let _ = st.exhausted.compare_exchange(
                        tag,
                        u64::MAX,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
            Err(e) => {
                if self.conn.is_some() {
                    self.fail(&e);
                }
            }
        }
        st.inflight.store(false, Ordering::Release);
    }

    /// Add a grant to the lease (rolling it to the grant's window if that is newer; returning
    /// it at once if the lease has already moved past that window).
    fn deposit(&mut self, st: &LeaseState, start: i64, end: i64, grant: u64, ttl: i64) {
        let tag = tag_of(start);
        let mut w = st.word.load(Ordering::Acquire);
        loop {
            let (t, rem) = unpack(w);
            let (new, give_back) = if t == tag {
                (pack(t, rem.saturating_add(grant)), None)
            } else if tag_newer(tag, t) {
                (
                    pack(tag, grant),
                    Some((st.start.load(Ordering::Acquire), t, rem)),
                )
            } else {
                self.adjust(
                    key_for(&st.base, start),
                    -i64::try_from(grant).unwrap_or(0),
                    ttl,
                );
                return;
            };
            st.start.store(start, Ordering::Release);
            st.end.store(end, Ordering::Release);
            match st
                .word
                .compare_exchange(w, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if let Some((old_start, old_tag, rem)) = give_back
                        && rem > 0
                        && tag_of(old_start) == old_tag
                    {
                        self.adjust(
                            key_for(&st.base, old_start),
                            -i64::try_from(rem).unwrap_or(0),
                            KEY_MARGIN_MS,
                        );
                    }
                    return;
                }
                Err(cur) => w = cur,
            }
        }
    }

    fn adjust(&mut self, key: String, delta: i64, ttl_ms: i64) {
        if delta == 0 {
            return;
        }
        if self.conn.is_none() {
            if self.backlog.len() >= BACKLOG_MAX {
                self.backlog.remove(0);
            }
            self.backlog.push((key, delta, ttl_ms));
            return;
        }
        if let Err(e) = self.apply(&key, delta, ttl_ms) {
            self.fail(&e);
            self.backlog.push((key, delta, ttl_ms));
        }
    }

    fn apply(&mut self, key: &str, delta: i64, ttl_ms: i64) -> io::Result<()> {
        let c = self.conn()?;
        c.int(&[
            b"EVAL",
            ADJUST_SCRIPT.as_bytes(),
            b"1",
            key.as_bytes(),
            delta.to_string().as_bytes(),
            ttl_ms.max(1).to_string().as_bytes(),
        ])?;
        self.last_io = Instant::now();
        if delta < 0 {
            self.link.returned.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush_backlog(&mut self) -> io::Result<()> {
        while let Some((key, delta, ttl)) = self.backlog.first().cloned() {
            self.apply(&key, delta, ttl)?;
            self.backlog.remove(0);
        }
        Ok(())
    }

    /// Push spend made on the fallback share (the cell's own counter) that Redis has not seen.
    fn push_fallback(&mut self) -> io::Result<()> {
        let mut todo: Vec<(String, i64, i64, Arc<LeaseState>, u64)> = Vec::new();
        self.registry.for_each(|_, cell| {
            let Some(lease) = &cell.lease else { return };
            let st = &lease.st;
            let start = st.fallback_start.load(Ordering::Acquire);
            if start == i64::MIN {
                return;
            }
            let tag = tag_of(start);
            let used = cell.used_in(tag);
            let (pt, pushed) = unpack(st.fallback_pushed.load(Ordering::Acquire));
            let pushed = if pt == tag { pushed } else { 0 };
            if used != pushed {
                let delta = i64::try_from(used).unwrap_or(0) - i64::try_from(pushed).unwrap_or(0);
                let ttl =
                    st.end.load(Ordering::Acquire).saturating_sub(start).max(0) + KEY_MARGIN_MS;
                todo.push((
                    key_for(&st.base, start),
                    delta,
                    ttl,
                    st.clone(),
                    pack(tag, used),
                ));
            }
        });
        for (key, delta, ttl, st, mark) in todo {
            self.apply(&key, delta, ttl)?;
            st.fallback_pushed.store(mark, Ordering::Release);
        }
        Ok(())
    }

    /// Hand every unused lease back (stop).
    fn return_leases(&mut self) {
        let mut todo: Vec<(String, i64)> = Vec::new();
        self.registry.for_each(|_, cell| {
            let Some(lease) = &cell.lease else { return };
            let st = &lease.st;
            let w = st.word.swap(pack(0, 0), Ordering::AcqRel);
            let (t, rem) = unpack(w);
            let start = st.start.load(Ordering::Acquire);
            if rem > 0 && start != i64::MIN && tag_of(start) == t {
                todo.push((key_for(&st.base, start), -i64::try_from(rem).unwrap_or(0)));
            }
        });
        if self.conn.is_none() {
            return;
        }
        let _ = self.flush_backlog();
        let _ = self.push_fallback();
        for (key, delta) in todo {
            if let Err(e) = self.apply(&key, delta, KEY_MARGIN_MS) {
                self.fail(&e);
                return;
            }
        }
    }
}
