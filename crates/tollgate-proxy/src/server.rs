//! Starting and stopping the gateway: bind every listener (one SO_REUSEPORT socket per worker, so
//! the kernel spreads connections), start the workers, the admin thread and the access-log
//! thread, and own the control operations: reload (fallible prepare, infallible swap) and drain.
//! Used by the binary and, in-process, by the integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tollgate_config::{Config, IoDriver};

use crate::access_log;
use crate::metrics::SharedMetrics;
use crate::snapshot::{Snapshot, build_snapshot};

/// State shared by workers, the admin thread and the control side.
pub struct Shared {
    /// The snapshot in force.
    pub snapshot: ArcSwap<Snapshot>,
    /// Set on SIGTERM / shutdown(): workers stop accepting and drain.
    pub draining: AtomicBool,
    /// Tells the admin thread to exit.
    pub admin_stop: AtomicBool,
    /// Metrics slots and control counters.
    pub metrics: SharedMetrics,
    /// Routing state that outlives reloads (backend states, prefix table, scraped load).
    pub route: crate::routing::RouteShared,
    /// Limit counters (and the Redis lease thread in cluster mode); outlive reloads.
    pub quota: Arc<tollgate_quota::QuotaShared>,
    /// The usage ledger's sending side (each worker clones it), when `[ledger]` is configured.
    pub ledger: Option<tollgate_ledger::LedgerSink>,
    config_path: Option<PathBuf>,
    reloading: AtomicBool,
}

impl Shared {
    /// Prometheus text: worker metrics plus the process-wide quota and ledger state.
    pub fn metrics_text(&self) -> String {
        let mut out = self.metrics.render();
        crate::metrics::render_quota(&mut out, &self.quota.stats());
        if let Some(l) = &self.ledger {
            crate::metrics::render_ledger(&mut out, &l.stats());
        }
        out
    }

    /// Reload the config file: build a complete new snapshot off the data path and swap it in.
    /// On any error the old snapshot stays in force and the reason is returned.
    pub fn reload(&self) -> Result<u64, String> {
        if self.reloading.swap(true, Ordering::AcqRel) {
            return Err("a reload is already in progress".into());
        }
        let r = self.reload_inner();
        self.reloading.store(false, Ordering::Release);
        match &r {
            Ok(g) => {
                self.metrics.reload_ok.fetch_add(1, Ordering::Relaxed);
                self.metrics.generation.store(*g, Ordering::Relaxed);
                eprintln!("tollgate: config reloaded: generation {g}");
            }
            Err(e) => {
                self.metrics.reload_err.fetch_add(1, Ordering::Relaxed);
                eprintln!("tollgate: config reload rejected, keeping the running config: {e}");
            }
        }
        r
    }

    fn reload_inner(&self) -> Result<u64, String> {
        let path = self
            .config_path
            .as_ref()
            .ok_or("no config file to reload (started without --config)")?;
        let cfg = tollgate_config::load(path).map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let cur = self.snapshot.load();
        let old = &cur.config;
        if cfg.listen.http != old.listen.http
            || cfg.listen.https != old.listen.https
            || cfg.listen.admin != old.listen.admin
            || cfg.workers != old.workers
            || cfg.io_driver != old.io_driver
        {
            return Err(
                "listen addresses, workers and io_driver cannot change on reload; restart to change them"
                    .into(),
            );
        }
        if cfg.access_log != old.access_log {
            return Err("log.access_log cannot change on reload; restart to change it".into());
        }
        if cfg.governance.ledger != old.governance.ledger {
            return Err("[ledger] cannot change on reload; restart to change it".into());
        }
        let (a, b) = (&cfg.governance.cluster, &old.governance.cluster);
        let same_cluster = match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.url == b.url
                    && a.prefix == b.prefix
                    && a.lease_tokens == b.lease_tokens
                    && a.lease_requests == b.lease_requests
                    && a.timeout == b.timeout
                    && a.fallback_share == b.fallback_share
            }
            _ => false,
        };
        if !same_cluster {
            return Err(
                "quota.redis_* settings cannot change on reload; restart to change them".into(),
            );
        }
        let next = build_snapshot(cfg, cur.generation + 1, Some(&self.route))?;
        let g = next.generation;
        self.snapshot.store(Arc::new(next));
        Ok(g)
    }
}

/// A running gateway.
pub struct ServerHandle {
    /// Bound plain HTTP address.
    pub http_addr: Option<SocketAddr>,
    /// Bound HTTPS address.
    pub https_addr: Option<SocketAddr>,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    admin: Option<JoinHandle<()>>,
    control: Option<crate::control::Control>,
    log: Option<access_log::Writer>,
    ledger: Option<tollgate_ledger::Ledger>,
}

impl ServerHandle {
    /// Reload the config file (as SIGHUP and `POST /admin/reload` do).
    pub fn reload(&self) -> Result<u64, String> {
        self.shared.reload()
    }

    /// Start draining: stop accepting, finish in-flight requests (up to the drain timeout).
    pub fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }

    /// Current generation.
    pub fn generation(&self) -> u64 {
        self.shared.snapshot.load().generation
    }

    /// Prometheus text of the current metrics.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }

    /// Drain and wait for every thread to exit.
    pub fn join(mut self) {
        self.shutdown();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        if let Some(c) = self.control.take() {
            c.stop();
        }
        self.shared.admin_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.admin.take() {
            let _ = h.join();
        }
        // Every worker has finished its requests: commit the ledger, return unused leases.
        if let Some(l) = self.ledger.take() {
            l.stop();
        }
        self.shared.quota.stop();
        // Flush the access log and stop its thread.
        if let Some(w) = self.log.take() {
            w.stop.store(true, Ordering::Relaxed);
            let _ = w.handle.join();
        }
    }
}

fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Bind `n` SO_REUSEPORT sockets on `addr` (port 0 → the port the first one got).
fn bind_group(
    addr: SocketAddr,
    n: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind(addr, true)?;
    let actual = first.local_addr()?;
    let mut v = vec![first];
    for _ in 1..n {
        v.push(bind(actual, true)?);
    }
    Ok((actual, v))
}

/// Start the gateway with `config`. `config_path` is what reloads re-read.
pub fn start(config: Config, config_path: Option<PathBuf>) -> Result<ServerHandle, String> {
    let workers = config.workers.max(1);
    let uring_ok = monoio::utils::detect_uring();
    let force_epoll = match config.io_driver {
        IoDriver::Auto => false,
        IoDriver::Epoll => true,
        IoDriver::IoUring if uring_ok => false,
        IoDriver::IoUring => {
            return Err(
                "io_driver = \"io_uring\" but io_uring is unavailable on this kernel".into(),
            );
        }
    };
    let listen = config.listen.clone();
    let (logger, log_thread) =
        access_log::start(&config.access_log).map_err(|e| format!("log.access_log: {e}"))?;
    let route = crate::routing::RouteShared::new(workers, config.routing.prefix_table_slots);
    let (ledger, ledger_sink) = match &config.governance.ledger {
        None => (None, None),
        Some(l) => {
            let (lg, sink) = tollgate_ledger::Ledger::open(tollgate_ledger::LedgerConfig {
                dir: l.dir.clone(),
                commit_interval: l.commit_interval,
                fsync: l.fsync,
            })
            .map_err(|e| format!("ledger.dir {}: {e}", l.dir.display()))?;
            (Some(lg), Some(sink))
        }
    };
    let quota = tollgate_quota::QuotaShared::new(config.governance.cluster.clone());
    let snap = build_snapshot(config, 1, Some(&route))?;
    let mut per_worker: Vec<crate::worker::Listeners> = (0..workers).map(|_| Vec::new()).collect();
    let mut http_addr = None;
    let mut https_addr = None;
    if let Some(a) = listen.http {
        let (actual, ls) = bind_group(a, workers).map_err(|e| format!("listen.http {a}: {e}"))?;
        http_addr = Some(actual);
        for (i, l) in ls.into_iter().enumerate() {
            per_worker[i].push((l, false));
        }
    }
    if let Some(a) = listen.https {
        let (actual, ls) = bind_group(a, workers).map_err(|e| format!("listen.https {a}: {e}"))?;
        https_addr = Some(actual);
        for (i, l) in ls.into_iter().enumerate() {
            per_worker[i].push((l, true));
        }
    }
    let admin_l =
        bind(listen.admin, false).map_err(|e| format!("listen.admin {}: {e}", listen.admin))?;
    let admin_addr = admin_l.local_addr().map_err(|e| e.to_string())?;
    let uring = !force_epoll && uring_ok;
    let drivers: Vec<&'static str> = (0..workers)
        .map(|_| if uring { "io_uring" } else { "epoll" })
        .collect();
    let shared = Arc::new(Shared {
        snapshot: ArcSwap::from_pointee(snap),
        draining: AtomicBool::new(false),
        admin_stop: AtomicBool::new(false),
        metrics: SharedMetrics::new(&drivers),
        route,
        quota,
        ledger: ledger_sink,
        config_path,
        reloading: AtomicBool::new(false),
    });
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::new();
    for (i, ls) in per_worker.into_iter().enumerate() {
        let core = if cores.is_empty() {
            None
        } else {
            cores.get(i % cores.len()).copied()
        };
        let h = crate::worker::spawn(i, core, ls, shared.clone(), logger.clone(), force_epoll)
            .map_err(|e| format!("worker {i}: {e}"))?;
        handles.push(h);
    }
    drop(logger);
    let admin = crate::admin::spawn(admin_l, shared.clone()).map_err(|e| format!("admin: {e}"))?;
    let control =
        crate::control::spawn(shared.clone()).map_err(|e| format!("control thread: {e}"))?;
    Ok(ServerHandle {
        http_addr,
        https_addr,
        admin_addr,
        shared,
        workers: handles,
        admin: Some(admin),
        control: Some(control),
        log: log_thread,
        ledger,
    })
}
