//! One simulated backend's shared state, its listeners and accept loops.
//!
//! A [`Backend`] is shared (`Arc`) by its accept loops, connection tasks and model-mode driver.
//! Listeners are bound synchronously in [`Backend::bind`] so [`crate::Fleet::start`] can return
//! addresses; [`launch`] then spawns the tasks. `set_refusing` closes the listening sockets (so
//! connects get ECONNREFUSED, as from a dead server) and rebinds the same address to reopen.

mod conn;
mod driver;
mod http;
mod infer;
mod instant;
mod routes;
mod sse;
mod stream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::{BackendConfig, Mode};
use crate::engine::{Gauges, Personality};
use crate::fault::FaultSpec;
use crate::fleet::{BackendInfo, Recorder, open_record_file};

pub(crate) use driver::DriverMsg;

/// Which endpoints a listener serves. vLLM and SGLang serve everything on one port; MindIE
/// splits business, management and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every route (vLLM, SGLang).
    All,
    /// MindIE business port: inference and `/v1/models`.
    Business,
    /// MindIE management port: health and `/v1/status`.
    Management,
    /// MindIE metrics port: `/metrics`.
    Metrics,
}

/// Live counters, updated lock-free by connection tasks and the driver.
#[derive(Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// HTTP requests parsed.
    pub requests: AtomicU64,
    /// Inference responses in progress.
    pub active_streams: AtomicU64,
    /// Content tokens written.
    pub tokens_generated: AtomicU64,
    /// Clients gone mid-response.
    pub client_disconnects: AtomicU64,
    /// Inference requests answered completely with finish reason `length`.
    pub finished_length: AtomicU64,
    /// ... with finish reason `stop`.
    pub finished_stop: AtomicU64,
    /// Prompt tokens of inference requests (instant-mode metrics).
    pub prompt_tokens: AtomicU64,
}

/// The backend-wide fault and how often it applies.
struct FaultState {
    spec: Option<FaultSpec>,
    probability: f64,
    remaining: Option<u32>,
    rng: ChaCha8Rng,
}

/// gen_throughput is computed between scrapes; this remembers the previous scrape.
#[derive(Default)]
pub(crate) struct ThroughputSample {
    pub at_us: u64,
    pub tokens: u64,
    pub rate: f64,
}

/// One listener slot: its address and the bound socket until the accept loop takes it.
struct ListenerSlot {
    role: Role,
    addr: SocketAddr,
    socket: Mutex<Option<TcpListener>>,
}

/// A simulated backend: config, listeners, counters, faults, engine handle.
pub struct Backend {
    /// Its configuration.
    pub cfg: BackendConfig,
    /// Counters.
    pub stats: Stats,
    pub(crate) epoch: Instant,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) record_file: Option<Mutex<std::fs::File>>,
    /// Fleet-wide request numbering: `r<id>` is unique across backends, so a token seen twice
    /// (e.g. after a gateway retry on another backend) is still attributable.
    pub(crate) next_request: Arc<AtomicU64>,
    pub(crate) driver: Option<mpsc::UnboundedSender<DriverMsg>>,
    driver_rx: Mutex<Option<mpsc::UnboundedReceiver<DriverMsg>>>,
    pub(crate) gauges: Mutex<Gauges>,
    pub(crate) instant: Option<instant::Canned>,
    pub(crate) throughput: Mutex<ThroughputSample>,
    pub(crate) seed: u64,
    faults: Mutex<FaultState>,
    listeners: Vec<ListenerSlot>,
    refusing: watch::Sender<bool>,
    acks_tx: std_mpsc::Sender<bool>,
    acks_rx: Mutex<std_mpsc::Receiver<bool>>,
}

/// Fleet-wide connection numbering for records.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

impl Backend {
    /// Binds the listeners (must run inside the fleet runtime's context).
    pub(crate) fn bind(
        cfg: BackendConfig,
        seed: u64,
        epoch: Instant,
        recorder: Arc<Recorder>,
        next_request: Arc<AtomicU64>,
    ) -> std::io::Result<Arc<Backend>> {
        let mut listeners = Vec::new();
        let mut add = |role: Role, addr: &str| -> std::io::Result<()> {
            let addr: SocketAddr = addr.parse().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr:?}: {e}"))
            })?;
            let l = bind_listener(addr)?;
            let addr = l.local_addr()?;
            listeners.push(ListenerSlot {
                role,
                addr,
                socket: Mutex::new(Some(l)),
            });
            Ok(())
        };
        if cfg.personality == Personality::Mindie {
            add(Role::Business, &cfg.listen)?;
            add(
                Role::Management,
                cfg.management_listen.as_deref().unwrap_or("127.0.0.1:0"),
            )?;
            add(
                Role::Metrics,
                cfg.metrics_listen.as_deref().unwrap_or("127.0.0.1:0"),
            )?;
        } else {
            add(Role::All, &cfg.listen)?;
        }
        let spec = cfg
            .faults
            .as_deref()
            .map(FaultSpec::parse)
            .transpose()
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{}.faults: {e}", cfg.name),
                )
            })?;
        let record_file = cfg
            .record_path
            .as_deref()
            .map(open_record_file)
            .transpose()?;
        let (driver, driver_rx) = match cfg.mode {
            Mode::Model => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            Mode::Instant => (None, None),
        };
        let instant = (cfg.mode == Mode::Instant).then(|| instant::Canned::build(&cfg));
        let gauges = driver::static_gauges(&cfg);
        let (refusing, _) = watch::channel(false);
        let (acks_tx, acks_rx) = std_mpsc::channel();
        Ok(Arc::new(Backend {
            faults: Mutex::new(FaultState {
                spec,
                probability: cfg.fault_probability,
                remaining: None,
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17),
            }),
            cfg,
            stats: Stats::default(),
            epoch,
            recorder,
            record_file,
            next_request,
            driver,
            driver_rx: Mutex::new(driver_rx),
            gauges: Mutex::new(gauges),
            instant,
            throughput: Mutex::new(ThroughputSample::default()),
            seed,
            listeners,
            refusing,
            acks_tx,
            acks_rx: Mutex::new(acks_rx),
        }))
    }

    /// Microseconds since fleet start: the clock of records and engine arrivals.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Names and addresses.
    pub fn info(&self) -> BackendInfo {
        let find = |r: Role| self.listeners.iter().find(|l| l.role == r).map(|l| l.addr);
        BackendInfo {
            name: self.cfg.name.clone(),
            personality: self.cfg.personality,
            model: self.cfg.model.clone(),
            api_addr: find(Role::All)
                .or_else(|| find(Role::Business))
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            management_addr: find(Role::Management),
            metrics_addr: find(Role::Metrics),
        }
    }

    /// Replaces the backend-wide fault.
    pub(crate) fn set_fault(&self, spec: Option<FaultSpec>, count: Option<u32>) {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.spec = spec;
        f.remaining = count;
    }

    /// The fault for the next inference request: the header's if given (it wins and does not
    /// consume `count`), else the backend-wide one subject to probability and count.
    pub(crate) fn pick_fault(&self, header: Option<FaultSpec>) -> Option<FaultSpec> {
        if header.is_some() {
            return header;
        }
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let spec = f.spec.clone()?;
        if f.remaining == Some(0) {
            return None;
        }
        let p = f.probability;
        if p < 1.0 && !f.rng.random_bool(p.max(0.0)) {
            return None;
        }
        if let Some(r) = f.remaining.as_mut() {
            *r -= 1;
            if *r == 0 {
                f.spec = None;
            }
        }
        Some(spec)
    }

    /// True when the backend-wide fault marks health endpoints unhealthy (count not consumed).
    pub(crate) fn unhealthy(&self) -> bool {
        let f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.spec.as_ref().is_some_and(|s| s.unhealthy) && f.remaining != Some(0)
    }

    /// Latest gauges.
    pub(crate) fn gauges(&self) -> Gauges {
        let mut g = self
            .gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if self.cfg.mode == Mode::Instant {
            let s = &self.stats;
            g.running = s.active_streams.load(Ordering::Relaxed) as u32;
            g.prompt_tokens_total = s.prompt_tokens.load(Ordering::Relaxed);
            g.generation_tokens_total = s.tokens_generated.load(Ordering::Relaxed);
            g.requests_finished =
                s.finished_length.load(Ordering::Relaxed) + s.finished_stop.load(Ordering::Relaxed);
        }
        g
    }

    /// Closes or reopens every listener, waiting (up to 2 s) until each accept loop confirms.
    pub(crate) fn set_refusing(&self, refusing: bool) {
        let acks = self.acks_rx.lock().unwrap_or_else(|e| e.into_inner());
        while acks.try_recv().is_ok() {}
        self.refusing.send_replace(refusing);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < self.listeners.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match acks.recv_timeout(left) {
                Ok(state) if state == refusing => got += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// Binds with SO_REUSEADDR so a refused listener can be reopened on the same port at once.
fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    // 1024: deep enough for benchmark connection bursts; the kernel caps it at somaxconn.
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// Spawns the accept loops and (model mode) the engine driver.
pub(crate) fn launch(b: Arc<Backend>) {
    if let Some(rx) = b.driver_rx.lock().unwrap_or_else(|e| e.into_inner()).take() {
        tokio::spawn(driver::run(b.clone(), rx));
    }
    for i in 0..b.listeners.len() {
        // Subscribe here, not in the task: a set_refusing issued before the task first runs must
        // still be seen as a change.
        let rx = b.refusing.subscribe();
        tokio::spawn(accept_loop(b.clone(), i, rx));
    }
}

async fn accept_loop(b: Arc<Backend>, idx: usize, mut refusing_rx: watch::Receiver<bool>) {
    let Some(slot) = b.listeners.get(idx) else {
        return;
    };
    let mut listener = slot.socket.lock().unwrap_or_else(|e| e.into_inner()).take();
    loop {
        let Some(l) = listener.as_ref() else {
            // Refusing: wait until told to reopen, then rebind the same address.
            if refusing_rx.changed().await.is_err() {
                return;
            }
            let want = *refusing_rx.borrow_and_update();
            if !want {
                loop {
                    match bind_listener(slot.addr) {
                        Ok(l) => {
                            listener = Some(l);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
            let _ = b.acks_tx.send(want);
            continue;
        };
        let mut applied = None;
        tokio::select! {
            r = l.accept() => match r {
                Ok((stream, _)) => {
                    b.stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(conn::serve(b.clone(), slot.role, stream, conn_id));
                }
                // EMFILE and friends: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            ch = refusing_rx.changed() => {
                if ch.is_err() {
                    return;
                }
                applied = Some(*refusing_rx.borrow_and_update());
            }
        }
        if let Some(want) = applied {
            if want {
                listener = None;
            }
            // Acknowledge only after the socket is really closed, so set_refusing's caller sees
            // ECONNREFUSED on its very next connect.
            let _ = b.acks_tx.send(want);
        }
    }
}
