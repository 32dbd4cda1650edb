//! One run: scrape the backends, send the scenario's requests on its schedule, collect every
//! outcome, scrape again, and assemble the [`Report`].
//!
//! Phases, called in order from [`run`]:
//! 1. `prepare`: resolve the target, build the workload (shared texts), scrape "before".
//! 2. `dispatch` (a task): open loop — sleep until each scheduled send time and spawn the
//!    request; closed loop — `concurrency` tasks each sending back to back. Either stops at
//!    `duration_s` or `max_requests`, whichever comes first.
//! 3. `collect` (this task): fold outcomes into a [`Collector`] as they arrive, until every
//!    request has finished or the hard deadline (duration + timeout + grace) passes. Progress
//!    goes to stderr once a second; load gauges are sampled on their own timer.
//! 4. `finish`: scrape "after", compute deltas and imbalance.
//!
//! Each request generates its own body inside its task, so a slow generator delays that request
//! only, never the schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::client::{self, Endpoint, Pool};
use crate::exec::{Outcome, execute};
use crate::openai::chat_body;
use crate::prom::{self, BackendDelta, LoadPoint, Sample};
use crate::report::Report;
use crate::scenario::Plan;
use crate::stats::Collector;
use crate::workload::Workload;

/// Slack after `duration + timeout` before in-flight requests are abandoned.
const GRACE: Duration = Duration::from_secs(5);

/// Timeout of one `/metrics` scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// How to run a plan (everything that is not part of the scenario).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Base URL, e.g. `http://127.0.0.1:18080`.
    pub target: String,
    /// Model name; overrides the scenario's.
    pub model: Option<String>,
    /// Report label; default the scenario name.
    pub label: Option<String>,
    /// Backend `/metrics` URLs to scrape.
    pub backend_metrics: Vec<String>,
    /// Load-gauge sampling period (None: only before/after scrapes).
    pub scrape_interval: Option<Duration>,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Idle keep-alive connections kept.
    pub max_idle_conns: usize,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Request path.
    pub path: String,
    /// Extra request headers, each `Name: value`.
    pub headers: Vec<String>,
}

impl RunOptions {
    /// Defaults for a target: no scraping, progress on, chat completions.
    pub fn new(target: &str) -> RunOptions {
        RunOptions {
            target: target.to_string(),
            model: None,
            label: None,
            backend_metrics: Vec::new(),
            scrape_interval: Some(Duration::from_secs(1)),
            progress: true,
            max_idle_conns: 4096,
            connect_timeout: Duration::from_secs(5),
            path: "/v1/chat/completions".to_string(),
            headers: Vec::new(),
        }
    }
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
struct Live {
    sent: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    tokens: AtomicU64,
}

/// What every request task needs.
struct Ctx {
    pool: Pool,
    workload: Workload,
    model: String,
    path: String,
    stream: bool,
    ignore_eos: bool,
    timeout: Duration,
    run_start: Instant,
    live: Live,
}

/// Runs `plan` on a new tokio runtime with `threads` worker threads (1–2 is plenty: the client
/// costs a few µs per SSE event).
pub fn run_blocking(plan: &Plan, opts: &RunOptions, threads: usize) -> Result<Report, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(run(plan, opts))
}

/// Runs `plan` against `opts.target` (see the module docs for the phases).
pub async fn run(plan: &Plan, opts: &RunOptions) -> Result<Report, String> {
    let ctx = Arc::new(prepare(plan, opts).await?);
    let label = opts.label.clone().unwrap_or_else(|| plan.name.clone());
    let mut notes = Vec::new();
    let before = scrape_all(&opts.backend_metrics).await;
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let dispatcher = tokio::spawn(dispatch(ctx.clone(), plan.clone(), tx));
    let sampler = opts
        .scrape_interval
        .filter(|_| !opts.backend_metrics.is_empty())
        .map(|every| {
            tokio::spawn(sample_load(
                opts.backend_metrics.clone(),
                every,
                ctx.run_start,
                plan.warmup_s,
                plan.duration_s,
                stop.clone(),
            ))
        });
    let progress = opts
        .progress
        .then(|| tokio::spawn(print_progress(ctx.clone(), label.clone(), stop.clone())));

    let collector = collect(&ctx, plan, rx, &mut notes).await;

    stop.store(true, Ordering::Relaxed);
    dispatcher.abort();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let load = match sampler {
        Some(s) => s.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let after = scrape_all(&opts.backend_metrics).await;
    let (backends, imbalance) = finish(&opts.backend_metrics, before, after, &load, &mut notes);
    Ok(Report {
        tool: format!("tollgate-loadtest {}", env!("CARGO_PKG_VERSION")),
        label,
        target: opts.target.clone(),
        model: ctx.model.clone(),
        started_unix_s,
        plan: plan.clone(),
        stats: collector.finish(),
        backends,
        imbalance,
        notes,
    })
}

async fn prepare(plan: &Plan, opts: &RunOptions) -> Result<Ctx, String> {
    let ep = Endpoint::resolve(&opts.target)
        .await?
        .with_headers(&opts.headers)?;
    let model = opts
        .model
        .clone()
        .or_else(|| plan.model.clone())
        .ok_or("no model: give --model or `model = …` in the scenario")?;
    Ok(Ctx {
        pool: Pool::new(ep, opts.max_idle_conns, opts.connect_timeout),
        workload: Workload::build(&plan.workload, plan.seed),
        model,
        path: opts.path.clone(),
        stream: plan.stream,
        ignore_eos: plan.ignore_eos,
        timeout: Duration::from_secs_f64(plan.timeout_s),
        run_start: Instant::now(),
        live: Live::default(),
    })
}

/// Generates, sends and measures request `i`.
async fn one(ctx: &Ctx, i: u64) -> Outcome {
    let prompt = ctx.workload.request(i);
    let body = chat_body(&ctx.model, &prompt, ctx.stream, ctx.ignore_eos);
    let req = ctx
        .pool
        .endpoint()
        .request("POST", &ctx.path, "application/json", &body);
    ctx.live.sent.fetch_add(1, Ordering::Relaxed);
    let o = execute(&ctx.pool, &req, ctx.stream, ctx.timeout, i, ctx.run_start).await;
    ctx.live.done.fetch_add(1, Ordering::Relaxed);
    ctx.live
        .tokens
        .fetch_add(u64::from(o.content_events), Ordering::Relaxed);
    if o.error.is_some() {
        ctx.live.errors.fetch_add(1, Ordering::Relaxed);
    }
    o
}

async fn dispatch(ctx: Arc<Ctx>, plan: Plan, tx: mpsc::UnboundedSender<Outcome>) {
    let duration = Duration::from_secs_f64(plan.duration_s);
    match plan.arrival.schedule(plan.seed) {
        Some(schedule) => {
            for (i, t) in (0..plan.max_requests).zip(schedule) {
                if t >= plan.duration_s {
                    break;
                }
                tokio::time::sleep_until((ctx.run_start + Duration::from_secs_f64(t)).into()).await;
                let (ctx, tx) = (ctx.clone(), tx.clone());
                tokio::spawn(async move {
                    let o = one(&ctx, i).await;
                    let _ = tx.send(o);
                });
            }
        }
        None => {
            let concurrency = match plan.arrival {
                crate::arrival::ArrivalSpec::Closed { concurrency } => concurrency,
                _ => 1,
            };
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency {
                let (ctx, tx, next) = (ctx.clone(), tx.clone(), next.clone());
                let max = plan.max_requests;
                tokio::spawn(async move {
                    while ctx.run_start.elapsed() < duration {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= max {
                            break;
                        }
                        let o = one(&ctx, i).await;
                        if tx.send(o).is_err() {
                            break;
                        }
                    }
                });
            }
        }
    }
}

async fn collect(
    ctx: &Ctx,
    plan: &Plan,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    notes: &mut Vec<String>,
) -> Collector {
    let warmup_us = (plan.warmup_s * 1e6) as u64;
    let end_us = (plan.duration_s * 1e6) as u64;
    let mut col = Collector::new(warmup_us, end_us, plan.stream, plan.slo);
    let hard = ctx.run_start + Duration::from_secs_f64(plan.duration_s + plan.timeout_s) + GRACE;
    loop {
        tokio::select! {
            o = rx.recv() => match o {
                Some(o) => col.add(&o),
                None => break,
            },
            _ = tokio::time::sleep_until(hard.into()) => {
                let sent = ctx.live.sent.load(Ordering::Relaxed);
                let done = ctx.live.done.load(Ordering::Relaxed);
                notes.push(format!(
                    "hard deadline reached: {} request(s) still in flight were abandoned",
                    sent.saturating_sub(done)
                ));
                break;
            }
        }
    }
    col
}

async fn print_progress(ctx: Arc<Ctx>, label: String, stop: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_done, mut last_tok) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let l = &ctx.live;
        let (sent, done) = (
            l.sent.load(Ordering::Relaxed),
            l.done.load(Ordering::Relaxed),
        );
        let tok = l.tokens.load(Ordering::Relaxed);
        eprintln!(
            "[{label}] {:>6.1}s sent {sent} done {done} inflight {} err {} | {} req/s {} tok/s",
            ctx.run_start.elapsed().as_secs_f64(),
            sent.saturating_sub(done),
            l.errors.load(Ordering::Relaxed),
            done - last_done,
            tok - last_tok,
        );
        (last_done, last_tok) = (done, tok);
    }
}

async fn scrape_all(urls: &[String]) -> Vec<Result<Sample, String>> {
    let mut out = Vec::with_capacity(urls.len());
    for u in urls {
        out.push(scrape(u).await);
    }
    out
}

async fn scrape(url: &str) -> Result<Sample, String> {
    let (status, body) = client::get(url, SCRAPE_TIMEOUT).await?;
    if status != 200 {
        return Err(format!("{url}: HTTP {status}"));
    }
    Ok(prom::parse(&String::from_utf8_lossy(&body)))
}

/// Samples load gauges of every backend each `every`, keeping samples inside the window.
async fn sample_load(
    urls: Vec<String>,
    every: Duration,
    run_start: Instant,
    warmup_s: f64,
    duration_s: f64,
    stop: Arc<AtomicBool>,
) -> Vec<Vec<LoadPoint>> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let t = run_start.elapsed().as_secs_f64();
        if t < warmup_s {
            continue;
        }
        if t > duration_s {
            break;
        }
        let mut points = Vec::with_capacity(urls.len());
        for r in scrape_all(&urls).await {
            match r {
                Ok(s) => points.push(prom::load_point(&s)),
                Err(_) => break,
            }
        }
        if points.len() == urls.len() {
            out.push(points);
        }
    }
    out
}

fn finish(
    urls: &[String],
    before: Vec<Result<Sample, String>>,
    after: Vec<Result<Sample, String>>,
    load: &[Vec<LoadPoint>],
    notes: &mut Vec<String>,
) -> (Vec<BackendDelta>, Option<prom::Imbalance>) {
    if urls.is_empty() {
        return (Vec::new(), None);
    }
    let mut ds: Vec<BackendDelta> = urls
        .iter()
        .zip(before.into_iter().zip(after))
        .map(|(u, (b, a))| match (b, a) {
            (Ok(b), Ok(a)) => prom::delta(u, &b, &a),
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!("scrape failed: {e}"));
                BackendDelta {
                    url: u.clone(),
                    scrape_error: Some(e),
                    ..BackendDelta::default()
                }
            }
        })
        .collect();
    let im = prom::imbalance(&mut ds, load);
    (ds, Some(im))
}
