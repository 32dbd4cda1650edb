//! Process-wide quota state: the registry of counter cells (which outlives config reloads), the
//! garbage collector that bounds its memory, stats, and the optional cluster link.
//!
//! The registry is only consulted on a worker cache miss (a subject/rule pair the worker has not
//! seen yet), so it is copy-on-write behind `arc-swap` rather than locked: readers never block,
//! and a writer clones one of [`SHARDS`] small maps instead of the whole registry.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::cell::Cell;
use crate::cluster::{self, ClusterConfig, Link};

/// Registry shards. Inserting a new cell clones one shard's map, so the cost of a miss is
/// `cells / SHARDS`; raising it makes misses cheaper and `stats`/`gc` walks slightly longer.
const SHARDS: usize = 64;

type Shard = ArcSwap<HashMap<Arc<str>, Arc<Cell>>>;

/// All cells, keyed by `rule name, class, subject key` (see `worker.rs`).
#[derive(Debug)]
pub(crate) struct Registry {
    shards: Box<[Shard]>,
    /// Bumped whenever gc removes cells; workers then prune their caches.
    epoch: AtomicU64,
}

impl Registry {
    fn new() -> Registry {
        Registry {
            shards: (0..SHARDS)
                .map(|_| ArcSwap::from_pointee(HashMap::new()))
                .collect(),
            epoch: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> Option<&Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        self.shards.get(i)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The live cell for `key`, creating it with `make` if absent or retired.
    pub(crate) fn get_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> Cell,
    ) -> Option<Arc<Cell>> {
        let shard = self.shard(key)?;
        let mut fresh: Option<Arc<Cell>> = None;
        let mut make = Some(make);
        loop {
            let cur = shard.load_full();
            if let Some(c) = cur.get(key)
                && !c.is_retired()
            {
                return Some(c.clone());
            }
            let cell = match &fresh {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(make.take()?());
                    fresh = Some(c.clone());
                    c
                }
            };
            let mut next = (*cur).clone();
            next.insert(Arc::from(key), cell.clone());
            let prev = shard.compare_and_swap(&cur, Arc::new(next));
            if Arc::ptr_eq(&prev, &cur) {
                return Some(cell);
            }
        }
    }

    /// Every live cell (cold path: stats, gc, cluster sync).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<str>, &Arc<Cell>)) {
        for s in self.shards.iter() {
            for (k, c) in s.load().iter() {
                f(k, c);
            }
        }
    }

    fn gc(&self, now_ms: i64) -> usize {
        let mut removed = 0;
        for s in self.shards.iter() {
            let mut retired = 0usize;
            for c in s.load().values() {
                if c.try_retire(now_ms) {
                    retired += 1;
                }
            }
            if retired == 0 {
                continue;
            }
            s.rcu(|cur| {
                let mut next = (**cur).clone();
                next.retain(|_, c| !c.is_retired());
                next
            });
            removed += 1;
        }
        if removed > 0 {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }
}

/// Counters one worker updates (uncontended) and `stats` sums.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    /// Tokens reserved by admissions not yet settled (summed over rules).
    pub(crate) reserved: AtomicI64,
    /// Concurrency slots held.
    pub(crate) slots: AtomicI64,
}

/// Process-wide quota state. `Send + Sync`; create once and share with every worker.
#[derive(Debug)]
pub struct QuotaShared {
    pub(crate) registry: Arc<Registry>,
    workers: ArcSwap<Vec<Arc<WorkerCounters>>>,
    pub(crate) link: Option<Arc<Link>>,
    last_gc_ms: AtomicI64,
}

/// A point-in-time view of the quota state, for metrics and health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaStats {
    /// Tokens reserved by admissions not yet settled (summed over rules; 0 when idle).
    pub reserved_tokens: i64,
    /// Concurrency slots in use.
    pub concurrency_in_use: i64,
    /// Live counter cells.
    pub cells: usize,
    /// Cluster configured.
    pub cluster: bool,
    /// Cluster store reachable (true when no cluster is configured).
    pub up: bool,
    /// Admissions made from the local fallback share while Redis was down.
    pub fallback_admissions: u64,
    /// Redis connection or protocol errors.
    pub redis_errors: u64,
    /// Leases granted by Redis (count of non-zero grants).
    pub leases_taken: u64,
    /// Lease returns sent to Redis.
    pub leases_returned: u64,
}

impl QuotaShared {
    /// Create the process-wide state. With `Some(cluster)`, also starts the `tollgate-quota-sync`
    /// thread that talks to Redis (it connects in the background; until it does, shared rules
    /// admit from the fallback share).
    pub fn new(cluster: Option<ClusterConfig>) -> Arc<QuotaShared> {
        let registry = Arc::new(Registry::new());
        let link = cluster.map(|cfg| cluster::start(cfg, registry.clone()));
        Arc::new(QuotaShared {
            registry,
            workers: ArcSwap::from_pointee(Vec::new()),
            link,
            last_gc_ms: AtomicI64::new(0),
        })
    }

    pub(crate) fn register_worker(&self) -> Arc<WorkerCounters> {
        let c = Arc::new(WorkerCounters::default());
        self.workers.rcu(|cur| {
            let mut next = (**cur).clone();
            next.push(c.clone());
            next
        });
        c
    }

    /// Remove cells idle for more than two windows (concurrency cells: no slot held and idle for
    /// two windows or a minute). Call every few seconds from a control thread; workers notice
    /// through an epoch and drop the cells from their caches on their next admission.
    pub fn gc(&self, now_ms: i64) {
        self.last_gc_ms.store(now_ms, Ordering::Relaxed);
        self.registry.gc(now_ms);
        // Forget counters of workers that are gone and whose admissions are all settled.
        self.workers.rcu(|cur| {
            let mut next = (**cur).clone();
            next.retain(|w| {
                Arc::strong_count(w) > 2
                    || w.reserved.load(Ordering::Relaxed) != 0
                    || w.slots.load(Ordering::Relaxed) != 0
            });
            next
        });
    }

    /// Current stats (walks the registry: call from a metrics thread, not per request).
    pub fn stats(&self) -> QuotaStats {
        let (mut reserved, mut slots) = (0, 0);
        for w in self.workers.load().iter() {
            reserved += w.reserved.load(Ordering::Relaxed);
            slots += w.slots.load(Ordering::Relaxed);
        }
        let mut cells = 0;
        self.registry.for_each(|_, _| cells += 1);
        let mut s = QuotaStats {
            reserved_tokens: reserved,
            concurrency_in_use: slots,
            cells,
            up: true,
            ..QuotaStats::default()
        };
        if let Some(l) = &self.link {
            l.fill_stats(&mut s);
        }
        s
    }

    /// Stop the sync thread (returning unused leases to Redis first). Shared cells then admit
    /// from the fallback share. No-op without a cluster. Blocks up to about twice the cluster
    /// timeout.
    pub fn stop(&self) {
        if let Some(l) = &self.link {
            l.stop();
        }
    }
}

impl Drop for QuotaShared {
    fn drop(&mut self) {
        self.stop();
    }
}
