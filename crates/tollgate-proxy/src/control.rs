//! The routing control thread: every `routing.scrape_interval_ms` it scrapes every backend's
//! load (per kind: Prometheus `/metrics`, SGLang `/v1/loads`, MindIE `/v1/status` on its
//! management port — see tollgate-route's `adapter`), every `routing.probe_interval_ms` it
//! probes each kind's health endpoint, and it publishes everything as one immutable
//! [`LoadSnapshot`] that workers read with one atomic load. Scrapes of one round run in parallel
//! (one short-lived thread per backend), each bounded by `routing.scrape_timeout_ms`, so a hung
//! backend delays nobody else. Never on the data path.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tollgate_config::Scheme;
use tollgate_route::{BackendLoad, LoadSnapshot, Scraped};

use crate::routing::{RouteShared, now_ms};
use crate::scrape::{Endpoint, ScrapeTarget};
use crate::server::Shared;
use crate::snapshot::Snapshot;

/// Stops the control thread when dropped or told.
pub struct Control {
    stop: Sender<()>,
    handle: Option<JoinHandle<()>>,
}

impl Control {
    /// Stop and join.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Start the control thread.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<Control> {
    let (tx, rx) = channel();
    let handle = std::thread::Builder::new()
        .name("tollgate-control".into())
        .spawn(move || run(&shared, &rx))?;
    Ok(Control {
        stop: tx,
        handle: Some(handle),
    })
}

fn endpoint(
    addrs: &[std::net::SocketAddr],
    host: &str,
    host_header: &str,
    base_path: &str,
    scheme: Scheme,
    ca: Option<&std::path::Path>,
) -> Result<Endpoint, String> {
    let addr = *addrs.first().ok_or("no resolved address")?;
    let tls = match scheme {
        Scheme::Http => None,
        Scheme::Https => {
            let cfg = crate::tls::client_config(ca)?;
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| format!("bad TLS server name: {e}"))?;
            Some((cfg, name))
        }
    };
    Ok(Endpoint {
        addr,
        host_header: host_header.to_string(),
        base_path: base_path.to_string(),
        tls,
        bearer: None,
    })
}

/// Scrape targets of a snapshot's backends (`None` where the address or TLS set-up failed).
fn targets(snap: &Snapshot) -> Vec<Result<ScrapeTarget, String>> {
    snap.config
        .backends
        .iter()
        .map(|b| {
            let ca = b.ca_file.as_deref();
            let mut api = endpoint(
                &b.addrs,
                &b.host,
                &b.host_header,
                &b.base_path,
                b.scheme,
                ca,
            )?;
            api.bearer = b.api_key.clone();
            let sec = |e: &Option<tollgate_config::Endpoint>| -> Result<Option<Endpoint>, String> {
                match e {
                    None => Ok(None),
                    Some(e) => endpoint(
                        &e.addrs,
                        &e.host,
                        &e.host_header,
                        &e.base_path,
                        e.scheme,
                        ca,
                    )
                    .map(Some),
                }
            };
            Ok(ScrapeTarget {
                kind: b.kind,
                api,
                management: sec(&b.management)?,
                metrics: sec(&b.metrics)?,
            })
        })
        .collect()
}

fn run(shared: &Shared, stop: &Receiver<()>) {
    let mut generation = 0;
    let mut tg: Vec<Result<ScrapeTarget, String>> = Vec::new();
    let mut last_probe_ms: Option<u64> = None;
    loop {
        let snap = shared.snapshot.load_full();
        if snap.generation != generation {
            tg = targets(&snap);
            generation = snap.generation;
        }
        let settings = &snap.config.routing;
        let now = now_ms();
        let probe_due =
            last_probe_ms.is_none_or(|t| now.saturating_sub(t) >= settings.probe_interval_ms);
        if probe_due {
            last_probe_ms = Some(now);
        }
        let prev = shared.route.load.load_full();
        let next = round(&snap, &tg, &prev, probe_due);
        shared.route.load.store(Arc::new(next));
        crate::routing::bump(&shared.route.scrape_rounds);
        // Forget limit counters idle for two windows (bounded memory with many subjects).
        shared.quota.gc(crate::pipeline::unix_now_ms());
        let interval = Duration::from_millis(settings.scrape_interval_ms);
        let spent = Duration::from_millis(now_ms().saturating_sub(now));
        match stop.recv_timeout(interval.saturating_sub(spent).max(Duration::from_millis(1))) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One backend's round: scrape result, probe result (when due), and when the scrape finished.
type RoundResult = (
    Option<Result<Scraped, String>>,
    Option<Result<(), String>>,
    u64,
);

/// One scrape (and maybe probe) round over every backend, in parallel.
fn round(
    snap: &Snapshot,
    tg: &[Result<ScrapeTarget, String>],
    prev: &LoadSnapshot,
    probe: bool,
) -> LoadSnapshot {
    let s = &snap.config.routing;
    let timeout = Duration::from_millis(s.scrape_timeout_ms);
    // The previous entry of the same backend: by index within a generation, by name across one.
    let prev_of = |b: usize| -> Option<&BackendLoad> {
        if prev.generation == snap.generation {
            prev.backends.get(b)
        } else {
            None
        }
    };
    let results: Vec<RoundResult> = std::thread::scope(|sc| {
        let handles: Vec<_> = tg
            .iter()
            .enumerate()
            .map(|(b, t)| {
                let prev_scraped = prev_of(b).and_then(|l| l.scraped.clone());
                sc.spawn(move || match t {
                    Err(e) => (
                        Some(Err(e.clone())),
                        probe.then(|| Err(e.clone())),
                        now_ms(),
                    ),
                    Ok(t) => {
                        let sc = Some(crate::scrape::scrape(t, prev_scraped.as_ref(), timeout));
                        let at = now_ms();
                        let pr = if probe {
                            crate::scrape::probe(t, timeout)
                        } else {
                            None
                        };
                        (sc, pr, at)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((None, None, now_ms())))
            .collect()
    });
    let mut out = LoadSnapshot {
        generation: snap.generation,
        backends: Vec::with_capacity(results.len()),
        compact: Vec::new(),
    };
    for (b, (sc, pr, at)) in results.into_iter().enumerate() {
        let mut l = prev_of(b).cloned().unwrap_or_default();
        match sc {
            Some(Ok(s)) => {
                let (r, t) = RouteShared::stamp(&snap.route, b);
                l.scraped = Some(s);
                l.scraped_at_ms = at;
                l.scrape_error = None;
                l.inflight_at_scrape = r;
                l.inflight_tokens_at_scrape = t;
            }
            // Kinds with nothing to scrape (OpenAI cloud) return an empty result: stay unknown.
            Some(Err(e)) => l.scrape_error = Some(e),
            None => {}
        }
        match pr {
            Some(Ok(())) => {
                l.probe_failures = 0;
                l.probe_ok = Some(true);
                l.probed_at_ms = at;
            }
            Some(Err(e)) => {
                l.probe_failures = l.probe_failures.saturating_add(1);
                if l.probe_failures >= s.probe_failures_down {
                    if l.probe_ok != Some(false) {
                        let name = snap.backend_names.get(b).map_or("?", |n| n);
                        eprintln!("tollgate: backend {name} is down (health probe: {e})");
                    }
                    l.probe_ok = Some(false);
                }
                l.probed_at_ms = at;
            }
            None => {}
        }
        out.backends.push(l);
    }
    out.seal()
}
