//! The routing runtime around tollgate-route: the per-snapshot view the pipeline picks from
//! ([`RouteRt`]), the process-wide pieces that outlive a reload ([`RouteShared`]: backend states
//! by identity, the prefix table, the scraped load), and the router clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use tollgate_config::Config;
use tollgate_route::{BackendState, LoadSnapshot, PrefixTable, Registry};

/// Milliseconds since the process's router clock started (monotonic). Scraped-load ages,
/// ejection deadlines and retry windows are all on this clock.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Routing state shared by every worker and the control thread, kept across reloads.
pub struct RouteShared {
    /// Backend states by identity; only the control side (start-up, reload) locks it.
    #[allow(clippy::disallowed_types)] // control side only: build_snapshot, never a request
    registry: std::sync::Mutex<Registry>,
    /// The prefix table (replaced only when its configured size changes).
    prefix: ArcSwap<PrefixTable>,
    /// The control thread's latest scrape of every backend.
    pub load: ArcSwap<LoadSnapshot>,
    /// Scrape rounds completed (metrics).
    pub scrape_rounds: AtomicU64,
}

impl RouteShared {
    /// Fresh state for `workers` workers.
    #[allow(clippy::disallowed_types)]
    pub fn new(workers: usize, prefix_slots: usize) -> RouteShared {
        RouteShared {
            registry: std::sync::Mutex::new(Registry::new(workers)),
            prefix: ArcSwap::from_pointee(PrefixTable::new(prefix_slots)),
            load: ArcSwap::from_pointee(LoadSnapshot::default()),
            scrape_rounds: AtomicU64::new(0),
        }
    }

    /// Build the routing view of `config` (control side).
    pub fn build(&self, config: &Config, pool_keys: &[Arc<str>]) -> RouteRt {
        let states: Vec<Arc<BackendState>> = match self.registry.lock() {
            Ok(mut r) => pool_keys.iter().map(|k| r.get_or_create(k)).collect(),
            // A poisoned registry can only come from a panic while creating a state; start
            // these backends afresh rather than refuse the config.
            Err(p) => {
                let mut r = p.into_inner();
                pool_keys.iter().map(|k| r.get_or_create(k)).collect()
            }
        };
        let want = config
            .routing
            .prefix_table_slots
            .max(1024)
            .next_power_of_two();
        if self.prefix.load().capacity() != want {
            self.prefix.store(Arc::new(PrefixTable::new(want)));
        }
        let mut pools_of = vec![Vec::new(); config.backends.len()];
        for (p, pool) in config.pools.iter().enumerate() {
            for m in pool.members() {
                if let Some(v) = pools_of.get_mut(m.backend) {
                    v.push(p);
                }
            }
        }
        RouteRt {
            caps: config.backends.iter().map(|b| b.max_inflight).collect(),
            states,
            prefix: self.prefix.load_full(),
            pools_of,
            pool_names: config
                .pools
                .iter()
                .map(|p| Arc::from(p.name.as_str()))
                .collect(),
        }
    }

    /// Inflight counters to stamp on a scrape (called by the control thread).
    pub fn stamp(rt: &RouteRt, b: usize) -> (u32, u64) {
        rt.states
            .get(b)
            .map_or((0, 0), |s| (s.inflight(), s.inflight_tokens()))
    }
}

/// The routing view of one config generation.
pub struct RouteRt {
    /// Backend states by config backend index.
    pub states: Vec<Arc<BackendState>>,
    /// `max_inflight` per backend.
    pub caps: Vec<u32>,
    /// The shared prefix table.
    pub prefix: Arc<PrefixTable>,
    /// Pools each backend belongs to (for the ejection cap).
    pub pools_of: Vec<Vec<usize>>,
    /// Pool names (metric labels).
    pub pool_names: Vec<Arc<str>>,
}

impl RouteRt {
    /// Whether ejecting backend `b` keeps every pool it belongs to within
    /// `max_ejected_percent` ejected members.
    pub fn may_eject(&self, config: &Config, b: usize, now: u64) -> bool {
        let pct = u64::from(config.routing.max_ejected_percent);
        self.pools_of.get(b).is_some_and(|pools| {
            pools.iter().all(|&p| {
                let Some(pool) = config.pools.get(p) else {
                    return false;
                };
                let ejected = pool
                    .members()
                    .filter(|m| m.backend != b)
                    .filter(|m| self.states.get(m.backend).is_some_and(|s| s.ejected(now)))
                    .count() as u64;
                (ejected + 1) * 100 <= pool.len() as u64 * pct
            })
        })
    }
}

/// A process-wide counter helper.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Per-backend routing gauges in Prometheus text (appended to `/metrics` by the admin thread).
pub fn render_backends(snap: &crate::snapshot::Snapshot, load: &LoadSnapshot, out: &mut String) {
    use std::fmt::Write;
    let now = now_ms();
    let cfg = &snap.config;
    let series: [(&str, &str, &str); 8] = [
        (
            "tollgate_backend_up",
            "gauge",
            "1 unless the backend is ejected or its health probe fails.",
        ),
        (
            "tollgate_backend_ejected",
            "gauge",
            "1 while the backend is ejected by passive health.",
        ),
        (
            "tollgate_backend_ejections",
            "counter",
            "Ejections of this backend since start (kept across reloads).",
        ),
        (
            "tollgate_backend_inflight_requests",
            "gauge",
            "Requests in flight from the gateway to the backend (all workers).",
        ),
        (
            "tollgate_backend_inflight_tokens",
            "gauge",
            "Estimated tokens (prompt + expected output) in flight to the backend.",
        ),
        (
            "tollgate_backend_queue",
            "gauge",
            "Waiting requests the backend reported in its last scrape (NaN = unknown).",
        ),
        (
            "tollgate_backend_kv_usage",
            "gauge",
            "KV-cache usage 0..1 the backend reported in its last scrape (NaN = unknown).",
        ),
        (
            "tollgate_load_snapshot_age_seconds",
            "gauge",
            "Age of the backend's last successful load scrape (+Inf = never).",
        ),
    ];
    for (i, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (b, be) in cfg.backends.iter().enumerate() {
            let st = snap.route.states.get(b);
            let l = (load.generation == snap.generation)
                .then(|| load.backends.get(b))
                .flatten();
            let ejected = st.is_some_and(|s| s.ejected(now));
            let v: f64 = match i {
                0 => f64::from(u8::from(!ejected && !load.probe_down(snap.generation, b))),
                1 => f64::from(u8::from(ejected)),
                2 => st.map_or(0.0, |s| s.ejections() as f64),
                3 => st.map_or(0.0, |s| f64::from(s.inflight())),
                4 => st.map_or(0.0, |s| s.inflight_tokens() as f64),
                5 => l
                    .and_then(|l| l.scraped.as_ref()?.queue)
                    .unwrap_or(f64::NAN),
                6 => l
                    .and_then(|l| l.scraped.as_ref()?.kv_frac)
                    .unwrap_or(f64::NAN),
                _ => match l {
                    Some(l) if l.scraped.is_some() => {
                        now.saturating_sub(l.scraped_at_ms) as f64 / 1e3
                    }
                    _ => f64::INFINITY,
                },
            };
            let v = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                "+Inf".to_string()
            } else {
                v.to_string()
            };
            let _ = writeln!(
                out,
                "{name}{{backend=\"{}\",kind=\"{}\"}} {v}",
                be.name,
                be.kind.as_str()
            );
        }
    }
}

/// `GET /admin/backends`: health, load, snapshot age and ejections per backend, and the pools.
pub fn backends_json(snap: &crate::snapshot::Snapshot, load: &LoadSnapshot) -> serde_json::Value {
    use serde_json::json;
    let now = now_ms();
    let cfg = &snap.config;
    let same_gen = load.generation == snap.generation;
    let backends: Vec<serde_json::Value> = cfg
        .backends
        .iter()
        .enumerate()
        .map(|(b, be)| {
            let st = snap.route.states.get(b);
            let l = same_gen.then(|| load.backends.get(b)).flatten();
            let s = l.and_then(|l| l.scraped.as_ref());
            let age = l.filter(|l| l.scraped.is_some()).map(|l| now.saturating_sub(l.scraped_at_ms));
            let stale = age.is_none_or(|a| a > cfg.routing.stale_after_ms);
            let ejected = st.is_some_and(|s| s.ejected(now));
            json!({
                "name": be.name,
                "kind": be.kind.as_str(),
                "url": format!("{}://{}{}", if be.scheme == tollgate_config::Scheme::Https { "https" } else { "http" }, be.host_header, be.base_path),
                "pools": snap.route.pools_of.get(b).map(|ps| ps.iter().filter_map(|&p| cfg.pools.get(p).map(|p| p.name.clone())).collect::<Vec<_>>()),
                "health": {
                    "up": !ejected && !load.probe_down(snap.generation, b),
                    "ejected": ejected,
                    "ejected_for_ms": st.map(|s| s.ejected_until_ms().saturating_sub(now)).filter(|_| ejected),
                    "ejections": st.map(|s| s.ejections()),
                    "consecutive_failures": st.map(|s| s.consecutive_failures()),
                    "probe_ok": l.and_then(|l| l.probe_ok),
                    "probe_age_ms": l.filter(|l| l.probe_ok.is_some()).map(|l| now.saturating_sub(l.probed_at_ms)),
                    "probe_failures": l.map(|l| l.probe_failures),
                },
                "load": {
                    "age_ms": age,
                    "stale": stale,
                    "queue": s.and_then(|s| s.queue),
                    "running": s.and_then(|s| s.running),
                    "kv_usage": s.and_then(|s| s.kv_frac),
                    "kv_capacity_tokens": s.and_then(|s| s.kv_capacity_tokens),
                    "prefix_hit_rate": s.and_then(|s| s.prefix_hit),
                    "scrape_error": l.and_then(|l| l.scrape_error.clone()),
                },
                "inflight": {
                    "requests": st.map(|s| s.inflight()),
                    "tokens": st.map(|s| s.inflight_tokens()),
                },
                "max_inflight": be.max_inflight,
            })
        })
        .collect();
    let pools: Vec<serde_json::Value> = cfg
        .pools
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "policy": p.policy.as_str(),
                "model": p.model,
                "tiers": p.tiers.iter().map(|t| t.iter().filter_map(|m| cfg.backends.get(m.backend).map(|b| json!({"backend": b.name, "weight": m.weight}))).collect::<Vec<_>>()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "generation": snap.generation,
        "load_generation": load.generation,
        "scrape_interval_ms": cfg.routing.scrape_interval_ms,
        "stale_after_ms": cfg.routing.stale_after_ms,
        "backends": backends,
        "pools": pools,
    })
}
