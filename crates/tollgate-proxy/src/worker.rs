//! One data-plane worker: a thread pinned to a core, running its own monoio runtime (io_uring,
//! or epoll where io_uring is unavailable) with its own SO_REUSEPORT listeners, upstream pools,
//! metrics and round-robin state. Nothing here is shared with another worker except immutable
//! snapshots (read with one atomic load) and the worker's own metrics publish slot.

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tollgate_core::RequestIdGen;

use crate::access_log::AccessLogger;
use crate::metrics::WorkerMetrics;
use crate::server::Shared;
use crate::shutdown::LocalShutdown;
use crate::snapshot::Snapshot;
use crate::upstream::Pool;

/// How often a worker checks the process-wide drain flag. Raising it delays the start of a
/// graceful shutdown by up to this much; it costs one timer wake-up per interval per worker.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Per-worker state, shared by every connection task on this core through `Rc`.
pub struct Worker {
    /// Worker index.
    pub id: usize,
    /// Process-wide shared pieces (snapshot cell, drain flag, metrics slots).
    pub shared: Arc<Shared>,
    /// Upstream keep-alive pool of this core.
    pub pool: Pool,
    /// Metrics of this core (published periodically).
    pub metrics: RefCell<WorkerMetrics>,
    /// Request id generator of this core.
    pub ids: RefCell<RequestIdGen>,
    /// This core's selection state (round-robin cursors, weights, random source, scratch).
    pub route: RefCell<tollgate_route::Local>,
    /// This core's retry budget window.
    pub retry_budget: RefCell<RetryBudget>,
    /// Access log sender.
    pub log: AccessLogger,
    /// Fires when the process starts draining.
    pub shutdown: Rc<LocalShutdown>,
    /// Open client connections on this core.
    pub active_conns: Cell<usize>,
    /// Content scanners of this core (scratch space per rule set): the current rules and, while
    /// streams that started before a reload finish, the previous ones — so a reload does not
    /// make old and new streams rebuild one scanner back and forth.
    pub scanners: RefCell<Vec<tollgate_scan::Scanner>>,
    /// This core's view of the limits (worker-local caches over shared atomic counters).
    pub quota: RefCell<tollgate_quota::WorkerQuota>,
    /// Usage-ledger sender of this core.
    pub ledger: Option<tollgate_ledger::LedgerSink>,
}

impl Worker {
    /// The snapshot in force now (one atomic load). A request keeps the `Arc` it started with.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Run `f` with this core's scanner for `rules` (built on first use and after a reload
    /// changed the rules). Synchronous: never held across an await.
    pub fn with_scanner<T>(
        &self,
        rules: &Arc<tollgate_scan::RuleSet>,
        f: impl FnOnce(&mut tollgate_scan::Scanner) -> T,
    ) -> Result<T, tollgate_core::Error> {
        let mut cell = self.scanners.borrow_mut();
        let i = match cell.iter().position(|s| Arc::ptr_eq(s.rules(), rules)) {
            Some(i) => i,
            None => {
                let sc = tollgate_scan::Scanner::new(Arc::clone(rules)).map_err(|e| {
                    tollgate_core::Error::new(
                        tollgate_core::ErrorKind::Internal,
                        tollgate_core::Side::Internal,
                        format!("content scanner unavailable: {e}"),
                    )
                })?;
                if cell.len() >= 2 {
                    cell.remove(0);
                }
                cell.push(sc);
                cell.len() - 1
            }
        };
        Ok(f(&mut cell[i]))
    }

    /// Run `f` on this worker's metrics.
    pub fn m<T>(&self, f: impl FnOnce(&mut WorkerMetrics) -> T) -> T {
        f(&mut self.metrics.borrow_mut())
    }
}

/// Retries allowed per one-second window: `min_per_sec + requests × percent / 100`, so a
/// failing backend cannot multiply the load on the others (Envoy/Finagle retry budgets).
#[derive(Debug, Default)]
pub struct RetryBudget {
    window_start_ms: u64,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    fn roll(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.requests = 0;
            self.retries = 0;
        }
    }

    /// Count a request.
    pub fn request(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.requests += 1;
    }

    /// Take a retry if the budget allows it.
    pub fn try_retry(&mut self, now_ms: u64, percent: u32, min_per_sec: u32) -> bool {
        self.roll(now_ms);
        let allowed = u64::from(min_per_sec) + self.requests * u64::from(percent) / 100;
        if self.retries < allowed {
            self.retries += 1;
            true
        } else {
            false
        }
    }
}

/// Listeners handed to a worker: (socket, is_tls).
pub type Listeners = Vec<(std::net::TcpListener, bool)>;

/// Spawn worker `id` on its own thread.
pub fn spawn(
    id: usize,
    core: Option<core_affinity::CoreId>,
    listeners: Listeners,
    shared: Arc<Shared>,
    log: AccessLogger,
    force_epoll: bool,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("tollgate-w{id}"))
        .spawn(move || {
            let pinned = core.map(core_affinity::set_for_current).unwrap_or(false);
            let uring = !force_epoll && monoio::utils::detect_uring();
            let driver = if uring { "io_uring" } else { "epoll" };
            eprintln!(
                "tollgate: worker {id} started: driver={driver} pinned={pinned} core={:?}",
                core.map(|c| c.id)
            );
            let boot = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
                >> 10) as u32;
            let make = move || {
                Rc::new(Worker {
                    id,
                    shared: shared.clone(),
                    pool: Pool::default(),
                    metrics: RefCell::new(WorkerMetrics::new(driver)),
                    ids: RefCell::new(RequestIdGen::new(boot, id as u16)),
                    route: RefCell::new(tollgate_route::Local::new(
                        (id as u64 + 1) ^ u64::from(boot),
                    )),
                    retry_budget: RefCell::new(RetryBudget::default()),
                    log,
                    shutdown: LocalShutdown::new(),
                    active_conns: Cell::new(0),
                    scanners: RefCell::new(Vec::new()),
                    quota: RefCell::new(tollgate_quota::WorkerQuota::new(shared.quota.clone())),
                    ledger: shared.ledger.clone(),
                })
            };
            let res = if uring {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .enable_timer()
                    .with_entries(4096)
                    .build()
                    .map(|mut rt| rt.block_on(worker_main(make(), listeners)))
            } else {
                monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .map(|mut rt| rt.block_on(worker_main(make(), listeners)))
            };
            if let Err(e) = res {
                eprintln!("tollgate: worker {id}: cannot build runtime: {e}");
            }
        })
}

async fn worker_main(w: Rc<Worker>, listeners: Listeners) {
    // Control task: publish metrics and watch the drain flag (no cross-thread wake-ups needed).
    let wc = w.clone();
    monoio::spawn(async move {
        let mut last_publish = Instant::now();
        loop {
            monoio::time::sleep(DRAIN_POLL).await;
            if wc.shared.draining.load(Ordering::Relaxed) {
                wc.shutdown.fire();
            }
            let snap = wc.snapshot();
            if last_publish.elapsed() >= snap.config.metrics_publish_interval {
                publish(&wc);
                last_publish = Instant::now();
            }
        }
    });
    for (l, tls) in listeners {
        match monoio::net::TcpListener::from_std(l) {
            Ok(l) => {
                monoio::spawn(accept_loop(w.clone(), l, tls));
            }
            Err(e) => eprintln!("tollgate: worker {}: listener: {e}", w.id),
        }
    }
    w.shutdown.wait().await;
    // Drain: in-flight requests finish (idle keep-alive connections close at once); after the
    // drain timeout the runtime is dropped and what is left is closed.
    let drain = w.snapshot().config.drain_timeout;
    let deadline = Instant::now() + drain;
    while w.active_conns.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    publish(&w);
}

fn publish(w: &Worker) {
    let copy = w.metrics.borrow().clone();
    if let Some(slot) = w.shared.metrics.slots.get(w.id) {
        slot.store(Arc::new(copy));
    }
}

async fn accept_loop(w: Rc<Worker>, listener: monoio::net::TcpListener, tls: bool) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = w.shutdown.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                eprintln!("tollgate: worker {}: accept: {e}", w.id);
                monoio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let snap = w.snapshot();
        if w.active_conns.get() >= snap.config.limits.max_connections_per_worker {
            drop(stream); // over the connection limit: refuse by closing at once
            continue;
        }
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let wc = w.clone();
        if tls {
            let Some(acceptor) = snap.tls_acceptor.clone() else {
                continue;
            };
            let deadline = snap.config.limits.header_read_timeout;
            monoio::spawn(async move {
                // The TLS handshake counts against the header-read deadline (slowloris on TLS).
                if let Ok(Ok(s)) = monoio::time::timeout(deadline, acceptor.accept(stream)).await {
                    crate::conn::serve(wc, s, fd, peer).await;
                }
            });
        } else {
            monoio::spawn(crate::conn::serve(wc, stream, fd, peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RetryBudget;

    #[test]
    fn retry_budget_allows_min_plus_percent_per_second() {
        let mut b = RetryBudget::default();
        for _ in 0..100 {
            b.request(1000);
        }
        // 3 + 100 × 20 % = 23 retries in this second, then none.
        let granted = (0..50).filter(|_| b.try_retry(1500, 20, 3)).count();
        assert_eq!(granted, 23);
        // A new window starts afresh.
        b.request(2100);
        assert!(b.try_retry(2100, 20, 3));
    }
}
