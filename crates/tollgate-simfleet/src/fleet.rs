//! The [`Fleet`]: starts every configured backend on its own OS thread + tokio runtime, and is
//! the handle tests, the demo and benchmarks use to read records and stats and to inject faults.
//!
//! The runtime lives on a dedicated thread so callers need not be async (benchmarks, plain
//! `#[test]`s) and so the fleet's own work is not scheduled on the caller's runtime, where it
//! would be measured as gateway overhead. `start` returns only after every listener is bound.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::FleetConfig;
use crate::engine::{Gauges, Personality};
use crate::fault::FaultSpec;
use crate::server::{self, Backend};

/// Records kept in memory; older ones are dropped first. 100k records of a few hundred bytes
/// each is tens of MiB at most; raise it and a long benchmark run costs that much more memory.
pub const MAX_RECORDS: usize = 100_000;

/// Request-body bytes kept in memory across all records; older records are dropped first. Long
/// prompts (a 20 KB body × 100k records = 2 GiB) hit this bound, not [`MAX_RECORDS`].
pub const MAX_RECORD_BODY_BYTES: usize = 128 << 20;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The full response was written.
    Completed,
    /// The client went away before the response was complete.
    ClientClosed,
    /// A fault was injected; the string is the spec label (e.g. `reset_after=3`).
    Fault(String),
}

/// The oracle's view of one request, as the backend saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Backend name.
    pub backend: String,
    /// `r<id>`, also sent as `x-simfleet-request-id` and embedded in every token.
    pub request_id: String,
    /// Fleet-wide TCP connection number.
    pub conn_id: u64,
    /// Nth request on that connection, from 1: keep-alive reuse is visible here.
    pub conn_seq: u32,
    /// Request method.
    pub method: String,
    /// Request path (with query string).
    pub path: String,
    /// Request headers, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Request body (lossy UTF-8).
    pub body: String,
    /// `"stream": true` was requested.
    pub stream: bool,
    /// `stream_options.include_usage` was requested.
    pub include_usage: bool,
    /// Prompt tokens as counted by the backend.
    pub prompt_tokens: u32,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: u32,
    /// Content tokens actually written to the client.
    pub tokens_emitted: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// Microseconds since fleet start when the request head was parsed.
    pub started_at_us: u64,
    /// When the first content token was written.
    pub first_token_at_us: Option<u64>,
    /// When the response ended (or the client was seen gone).
    pub ended_at_us: Option<u64>,
}

/// Where a backend listens.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// Backend name.
    pub name: String,
    /// Personality.
    pub personality: Personality,
    /// Model name served.
    pub model: String,
    /// API (business) address.
    pub api_addr: SocketAddr,
    /// MindIE management address.
    pub management_addr: Option<SocketAddr>,
    /// MindIE metrics address.
    pub metrics_addr: Option<SocketAddr>,
}

/// Counters for one backend since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// TCP connections accepted (all listeners).
    pub connections_accepted: u64,
    /// HTTP requests parsed (all endpoints).
    pub requests: u64,
    /// Inference responses currently being produced.
    pub active_streams: u64,
    /// Content tokens written to clients.
    pub tokens_generated: u64,
    /// Requests whose client went away mid-response.
    pub client_disconnects: u64,
}

/// The request log: bounded in memory, optionally mirrored to JSON-lines files.
#[derive(Default)]
pub struct Recorder {
    records: Mutex<Records>,
}

/// The kept records and the sum of their body lengths.
#[derive(Default)]
struct Records {
    q: VecDeque<RequestRecord>,
    body_bytes: usize,
}

impl Recorder {
    /// Stores a finished record, appending it to `file` when given.
    pub(crate) fn push(&self, rec: RequestRecord, file: Option<&Mutex<std::fs::File>>) {
        if let (Some(f), Ok(mut line)) = (file, serde_json::to_vec(&rec)) {
            line.push(b'\n');
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            // A full disk must not take the backend down; the in-memory copy survives.
            let _ = f.write_all(&line);
        }
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        r.body_bytes += rec.body.len();
        r.q.push_back(rec);
        while r.q.len() > MAX_RECORDS || (r.body_bytes > MAX_RECORD_BODY_BYTES && r.q.len() > 1) {
            match r.q.pop_front() {
                Some(old) => r.body_bytes -= old.body.len(),
                None => break,
            }
        }
    }

    fn snapshot(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .q
            .iter()
            .cloned()
            .collect()
    }

    fn clear(&self) {
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        r.q.clear();
        r.body_bytes = 0;
    }
}

/// Opens (appending) a record file.
pub(crate) fn open_record_file(p: &Path) -> std::io::Result<Mutex<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)?;
    Ok(Mutex::new(f))
}

/// A running simulated fleet. Dropping it shuts everything down.
pub struct Fleet {
    backends: Vec<Arc<Backend>>,
    recorder: Arc<Recorder>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fleet {
    /// Binds every listener, starts the runtime thread and returns once all backends accept.
    pub fn start(cfg: FleetConfig) -> std::io::Result<Fleet> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        cfg.validate().map_err(invalid)?;
        let epoch = Instant::now();
        let recorder = Arc::new(Recorder::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads)
            .thread_name("simfleet")
            .enable_all()
            .build()?;
        let mut backends = Vec::new();
        let next_request = Arc::new(std::sync::atomic::AtomicU64::new(1));
        {
            // Listeners must be registered with this runtime's reactor.
            let _guard = rt.enter();
            for (i, bc) in cfg.backends.iter().enumerate() {
                let seed = cfg
                    .seed
                    .wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
                backends.push(Backend::bind(
                    bc.clone(),
                    seed,
                    epoch,
                    recorder.clone(),
                    next_request.clone(),
                )?);
            }
            for b in &backends {
                server::launch(b.clone());
            }
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("simfleet-rt".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Fleet {
            backends,
            recorder,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Every backend's name, personality and addresses, in config order.
    pub fn backends(&self) -> Vec<BackendInfo> {
        self.backends.iter().map(|b| b.info()).collect()
    }

    /// API address of the named backend.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.find(name).map(|b| b.info().api_addr)
    }

    /// All finished requests (oldest first), across backends.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.recorder.snapshot()
    }

    /// Forgets the in-memory records (files are left alone).
    pub fn clear_records(&self) {
        self.recorder.clear();
    }

    /// Counters of the named backend.
    pub fn stats(&self, name: &str) -> Option<BackendStats> {
        self.find(name).map(|b| {
            let s = &b.stats;
            BackendStats {
                connections_accepted: s.connections_accepted.load(Ordering::Relaxed),
                requests: s.requests.load(Ordering::Relaxed),
                active_streams: s.active_streams.load(Ordering::Relaxed),
                tokens_generated: s.tokens_generated.load(Ordering::Relaxed),
                client_disconnects: s.client_disconnects.load(Ordering::Relaxed),
            }
        })
    }

    /// Sets (or with `None` clears) the backend-wide fault; with `count`, only the next `count`
    /// inference requests get it.
    pub fn set_fault(
        &self,
        name: &str,
        spec: Option<&str>,
        count: Option<u32>,
    ) -> Result<(), String> {
        let b = self
            .find(name)
            .ok_or_else(|| format!("no backend named {name:?}"))?;
        let spec = spec.map(FaultSpec::parse).transpose()?;
        b.set_fault(spec, count);
        Ok(())
    }

    /// Closes (true) or reopens (false) the backend's listeners: while closed, connects get
    /// ECONNREFUSED. Returns once the change is in effect. Open connections are not touched.
    pub fn set_refusing(&self, name: &str, refusing: bool) {
        if let Some(b) = self.find(name) {
            b.set_refusing(refusing);
        }
    }

    /// Engine gauges (model mode), or a static capacity view with live counters (instant mode).
    pub fn gauges(&self, name: &str) -> Option<Gauges> {
        self.find(name).map(|b| b.gauges())
    }

    /// Stops every backend and joins the runtime thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn find(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.cfg.name == name)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64, body_len: usize) -> RequestRecord {
        RequestRecord {
            backend: "b".into(),
            request_id: format!("r{i}"),
            conn_id: i,
            conn_seq: 0,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            headers: Vec::new(),
            body: "x".repeat(body_len),
            stream: false,
            include_usage: false,
            prompt_tokens: 0,
            cached_tokens: 0,
            tokens_emitted: 0,
            outcome: Outcome::Completed,
            started_at_us: 0,
            first_token_at_us: None,
            ended_at_us: None,
        }
    }

    #[test]
    fn kept_records_are_bounded_by_count_and_by_body_bytes_newest_first() {
        let r = Recorder::default();
        // 300 bodies of 1 MiB: the byte bound (128 MiB) keeps the newest 128.
        for i in 0..300 {
            r.push(rec(i, 1 << 20), None);
        }
        let kept = r.snapshot();
        assert_eq!(kept.len(), MAX_RECORD_BODY_BYTES >> 20);
        assert_eq!(kept.last().map(|k| k.conn_id), Some(299));
        assert_eq!(
            kept.first().map(|k| k.conn_id),
            Some(300 - kept.len() as u64)
        );
        // A single body over the bound is still kept (the newest record always is).
        r.clear();
        r.push(rec(0, MAX_RECORD_BODY_BYTES + 1), None);
        assert_eq!(r.snapshot().len(), 1);
        // Small records: the count bound.
        r.clear();
        for i in 0..(MAX_RECORDS as u64 + 10) {
            r.push(rec(i, 0), None);
        }
        assert_eq!(r.snapshot().len(), MAX_RECORDS);
    }
}
