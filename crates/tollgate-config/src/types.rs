//! The compiled configuration: units converted (`*_ms` → `Duration`), names resolved to indices,
//! addresses parsed and resolved. Immutable once built; the dataplane reads it through a snapshot.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A validated, compiled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of data-plane worker threads (one runtime per core).
    pub workers: usize,
    /// Which I/O driver the workers run.
    pub io_driver: IoDriver,
    /// Listener addresses and TLS material.
    pub listen: Listen,
    /// Downstream request limits and timeouts.
    pub limits: Limits,
    /// Upstream client settings.
    pub upstream: UpstreamSettings,
    /// How long in-flight requests may run after SIGTERM before connections are closed.
    pub drain_timeout: Duration,
    /// Where access log lines go.
    pub access_log: AccessLog,
    /// How often each worker publishes its metrics for the admin scrape.
    pub metrics_publish_interval: Duration,
    /// Compiled content-scanning rules (`[scan]`), shared by every worker; `None` = off.
    pub scan: Option<std::sync::Arc<tollgate_scan::RuleSet>>,
    /// `[routing]`: scraping, staleness, health and policy settings.
    pub routing: tollgate_route::Settings,
    /// Backends in file order; pools index into this.
    pub backends: Vec<Backend>,
    /// Pools in file order, then one implicit pool per model declared with `backends = [...]`.
    pub pools: Vec<tollgate_route::Pool>,
    /// Client-facing models in file order.
    pub models: Vec<Model>,
    /// `[auth]`, `[quota]`, `[ledger]`: API keys, IP rules, limits and the usage ledger.
    pub governance: crate::governance::Governance,
    pub(crate) model_index: HashMap<String, usize>,
}

impl Config {
    /// Rebuild the name → index map after `models` changed.
    pub(crate) fn reindex(mut self) -> Config {
        self.model_index = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        self
    }

    /// Look up a client-facing model by exact name.
    pub fn model(&self, name: &str) -> Option<(usize, &Model)> {
        let i = *self.model_index.get(name)?;
        self.models.get(i).map(|m| (i, m))
    }
}

/// I/O driver of the data-plane workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    /// io_uring; start-up fails where it is unavailable.
    IoUring,
    /// epoll (mio), even where io_uring is available.
    Epoll,
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Plain HTTP listener.
    pub http: Option<SocketAddr>,
    /// HTTPS listener (needs `tls`).
    pub https: Option<SocketAddr>,
    /// Certificate chain and key for the HTTPS listener.
    pub tls: Option<TlsFiles>,
    /// Admin listener (`/healthz`, `/metrics`, `/admin/*`).
    pub admin: SocketAddr,
}

/// PEM files for the HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Downstream limits. Each one says what moves when it moves in the README's reference.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line before 414.
    pub max_request_line_bytes: usize,
    /// Largest header section before 431.
    pub max_header_bytes: usize,
    /// Most header fields before 431.
    pub max_headers: usize,
    /// Largest request body before 413.
    pub max_body_bytes: u64,
    /// Deadline for a complete request head, from the first byte (408).
    pub header_read_timeout: Duration,
    /// Longest gap between body reads (408).
    pub body_idle_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub keepalive_timeout: Duration,
    /// Connections a worker accepts before it stops accepting.
    pub max_connections_per_worker: usize,
}

/// Upstream client settings.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// TCP (+TLS) connect deadline.
    pub connect_timeout: Duration,
    /// Deadline for the response head after the request was sent.
    pub first_byte_timeout: Duration,
    /// Longest gap between body reads; there is no total timeout on streams.
    pub idle_timeout: Duration,
    /// Idle keep-alive connections kept per backend per worker.
    pub pool_max_idle_per_backend: usize,
    /// Idle connections older than this are closed instead of reused.
    pub pool_idle_timeout: Duration,
    /// Largest non-streaming response body buffered.
    pub max_response_body_bytes: u64,
    /// Retries on a different backend before the first byte (0 or 1).
    pub retries: u32,
}

/// Access log destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log.
    Off,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to a file.
    File(PathBuf),
}

/// Kind of inference backend; decides request rewriting, quirks, and how load is read
/// (defined next to the load adapters in tollgate-route).
pub use tollgate_route::adapter::BackendKind;

/// URL scheme of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS.
    Https,
}

/// A configured backend.
#[derive(Clone)]
pub struct Backend {
    /// Unique name (metric label, access log).
    pub name: String,
    /// Backend kind.
    pub kind: BackendKind,
    /// http or https.
    pub scheme: Scheme,
    /// Host name (Host header, TLS SNI).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Addresses resolved at load time (the data path never does DNS).
    pub addrs: Vec<SocketAddr>,
    /// Path prefix prepended to the API path (`""` or e.g. `/openai`).
    pub base_path: String,
    /// Value of the Host header sent upstream.
    pub host_header: String,
    /// API key injected upstream as `Authorization: Bearer` (never the client's).
    pub api_key: Option<String>,
    /// Extra CA bundle for TLS to this backend.
    pub ca_file: Option<PathBuf>,
    /// Management listener (MindIE: health and `/v1/status`); `None` = the API listener.
    pub management: Option<Endpoint>,
    /// Metrics listener (MindIE: Prometheus `/metrics`); `None` = the API listener.
    pub metrics: Option<Endpoint>,
    /// In-flight requests at which the backend counts as saturated (0 = no cap).
    pub max_inflight: u32,
}

/// A secondary listener of a backend (MindIE's management and metrics ports).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// http or https.
    pub scheme: Scheme,
    /// Host name (Host header, TLS SNI).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Addresses resolved at load time.
    pub addrs: Vec<SocketAddr>,
    /// Path prefix.
    pub base_path: String,
    /// Host header value.
    pub host_header: String,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("addrs", &self.addrs)
            .field("base_path", &self.base_path)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("management", &self.management)
            .field("metrics", &self.metrics)
            .field("max_inflight", &self.max_inflight)
            .finish()
    }
}

/// A client-facing (virtual) model name and how its requests are routed to pools.
#[derive(Debug, Clone)]
pub struct Model {
    /// Name clients send in `model`.
    pub name: String,
    /// Route rules and the default split (indices into `Config::pools`).
    pub routing: tollgate_route::VirtualModel,
    /// `owned_by` in `/v1/models`.
    pub owned_by: String,
}
