//! Virtual-time fleet: N engines driven by a discrete-event loop instead of a clock.
//!
//! Why: routing-policy sweeps over minutes of traffic must run in seconds and be exactly
//! reproducible (routing.md §3.2 "Two clocks"). The loop jumps from event to event: the earliest
//! of the next arrival, every engine's [`Engine::next_event_time`] and the router's next tick. At
//! each instant, engines are advanced first and their events reported to the router (so a
//! request finishing at `t` no longer counts as in flight for an arrival at `t`), then a due tick
//! fires, then the arrivals of that instant are routed one by one, each seeing the gauges left by
//! the previous one.
//!
//! Two entry points: [`VirtualFleet::run`] takes a plain closure
//! `(&[Gauges], &SimRequest) -> backend index`; [`VirtualFleet::run_with`] takes a
//! [`VirtualRouter`], which also hears every token and finish (to keep gateway-side in-flight
//! counts) and can ask for periodic ticks (to model a control thread that scrapes the gauges on
//! its own schedule). An index out of range wraps modulo the number of engines.

use std::collections::HashMap;

use super::{Engine, EngineEvent, Gauges, SimRequest};

/// Outcome of one request in a [`VirtualFleet::run`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RequestResult {
    /// Request id.
    pub id: u64,
    /// Index of the engine the router chose.
    pub backend: usize,
    /// Arrival time (µs).
    pub arrival_us: u64,
    /// Time to first token (µs).
    pub ttft_us: u64,
    /// Arrival to last token (µs).
    pub e2e_us: u64,
    /// Mean inter-token latency (µs); 0 with fewer than two tokens.
    pub mean_itl_us: f64,
    /// 99th-percentile inter-token latency (µs, nearest rank); 0 with fewer than two tokens.
    pub p99_itl_us: u64,
    /// Prompt tokens (after clamping).
    pub prompt_tokens: u32,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: u32,
    /// Output tokens generated.
    pub completion_tokens: u32,
    /// Times the request was preempted / retracted.
    pub preempted: u32,
}

/// A router driven by a [`VirtualFleet`]: picks a backend per arrival and hears what happens to
/// the requests it routed. Every callback gets the virtual time; calls come in time order (all
/// events of one instant before the arrivals of that instant).
pub trait VirtualRouter {
    /// Picks the engine for `req`, arriving at `now_us`; `gauges` are every engine's, as of now.
    fn route(&mut self, now_us: u64, gauges: &[Gauges], req: &SimRequest) -> usize;

    /// Request `id` on `backend` produced its first token at `t_us` (once per request that
    /// produced any token).
    fn on_first_token(&mut self, _id: u64, _backend: usize, _t_us: u64) {}

    /// Request `id` on `backend` produced output token `seq` at `t_us` (every token, the first
    /// included, before `on_first_token` for it).
    fn on_token(&mut self, _id: u64, _backend: usize, _seq: u32, _t_us: u64) {}

    /// Request `id` on `backend` finished at `t_us` (exactly once per routed request; a request
    /// the engine dropped without a token finishes without a first token).
    fn on_finish(&mut self, _id: u64, _backend: usize, _t_us: u64) {}

    /// When the router next wants [`VirtualRouter::on_tick`] (µs), if ever. Ticks only fire while
    /// the run has work left (an arrival pending or an engine busy), so a periodic tick does not
    /// keep a finished run alive; a tick not after the previous one is moved to 1 µs after it.
    fn next_tick_us(&self) -> Option<u64> {
        None
    }

    /// A tick asked for by [`VirtualRouter::next_tick_us`]: `gauges` are every engine's at
    /// `now_us` (e.g. a control thread's scrape).
    fn on_tick(&mut self, _now_us: u64, _gauges: &[Gauges]) {}
}

/// A closure as a [`VirtualRouter`] that ignores time and callbacks ([`VirtualFleet::run`]).
struct FnRouter<F>(F);

impl<F: FnMut(&[Gauges], &SimRequest) -> usize> VirtualRouter for FnRouter<F> {
    fn route(&mut self, _now_us: u64, gauges: &[Gauges], req: &SimRequest) -> usize {
        (self.0)(gauges, req)
    }
}

/// A fleet of engines sharing one virtual clock.
#[derive(Debug)]
pub struct VirtualFleet {
    engines: Vec<Engine>,
}

/// Per-request bookkeeping during a run.
#[derive(Debug, Default)]
struct Track {
    backend: usize,
    arrival_us: u64,
    token_times: Vec<u64>,
    preempted: u32,
}

impl VirtualFleet {
    /// A fleet over `engines` (their clocks must not be ahead of the first arrival).
    pub fn new(engines: Vec<Engine>) -> Self {
        VirtualFleet { engines }
    }

    /// The engines, e.g. to read final gauges after a run.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Runs `reqs` (arrival `arrival_us`, in any order; ties keep input order) through
    /// `route` to completion and returns one result per request, in arrival order.
    /// An empty fleet returns no results.
    pub fn run(
        &mut self,
        reqs: Vec<SimRequest>,
        route: impl FnMut(&[Gauges], &SimRequest) -> usize,
    ) -> Vec<RequestResult> {
        self.run_with(reqs, &mut FnRouter(route))
    }

    /// Like [`VirtualFleet::run`], with a [`VirtualRouter`] that also hears tokens and finishes
    /// and may tick on its own schedule.
    pub fn run_with(
        &mut self,
        mut reqs: Vec<SimRequest>,
        router: &mut impl VirtualRouter,
    ) -> Vec<RequestResult> {
        if self.engines.is_empty() {
            return Vec::new();
        }
        reqs.sort_by_key(|r| r.arrival_us);
        let order: Vec<u64> = reqs.iter().map(|r| r.id).collect();
        let mut tracks: HashMap<u64, Track> = HashMap::with_capacity(reqs.len());
        let mut done: HashMap<u64, RequestResult> = HashMap::with_capacity(reqs.len());
        let mut pending = reqs.into_iter().peekable();
        let mut events = Vec::new();
        let mut gauges: Vec<Gauges> = Vec::with_capacity(self.engines.len());
        // Last instant a tick fired: a tick at or before it waits for a later instant.
        let mut last_tick: Option<u64> = None;
        loop {
            let next_arrival = pending.peek().map(|r| r.arrival_us);
            let next_engine = self
                .engines
                .iter()
                .filter_map(Engine::next_event_time)
                .min();
            let work = match (next_arrival, next_engine) {
                (Some(a), Some(e)) => a.min(e),
                (Some(a), None) => a,
                (None, Some(e)) => e,
                (None, None) => break,
            };
            let tick = router
                .next_tick_us()
                .map(|k| last_tick.map_or(k, |l| k.max(l + 1)));
            let t = tick.map_or(work, |k| k.min(work));
            for (b, engine) in self.engines.iter_mut().enumerate() {
                events.clear();
                engine.advance(t, &mut events);
                for ev in &events {
                    record(ev, b, &mut tracks, &mut done, router);
                }
            }
            if tick.is_some_and(|k| k <= t) {
                last_tick = Some(t);
                gauges.clear();
                gauges.extend(self.engines.iter().map(Engine::gauges));
                router.on_tick(t, &gauges);
            }
            while let Some(req) = pending.next_if(|r| r.arrival_us <= t) {
                gauges.clear();
                gauges.extend(self.engines.iter().map(Engine::gauges));
                let b = router.route(t, &gauges, &req) % self.engines.len();
                tracks.insert(
                    req.id,
                    Track {
                        backend: b,
                        arrival_us: t,
                        ..Track::default()
                    },
                );
                self.engines[b].submit(t, req);
            }
        }
        order
            .into_iter()
            .filter_map(|id| done.remove(&id))
            .collect()
    }
}

/// Folds one engine event of engine `backend` into the per-request tracks and tells the router.
fn record(
    ev: &EngineEvent,
    backend: usize,
    tracks: &mut HashMap<u64, Track>,
    done: &mut HashMap<u64, RequestResult>,
    router: &mut impl VirtualRouter,
) {
    match *ev {
        EngineEvent::Token { id, seq, t_us } => {
            if let Some(tr) = tracks.get_mut(&id) {
                tr.token_times.push(t_us);
                router.on_token(id, backend, seq, t_us);
                if seq == 0 {
                    router.on_first_token(id, backend, t_us);
                }
            }
        }
        EngineEvent::Preempted { id, .. } => {
            if let Some(tr) = tracks.get_mut(&id) {
                tr.preempted += 1;
            }
        }
        EngineEvent::Finished {
            id,
            t_us,
            prompt_tokens,
            cached_tokens,
            completion_tokens,
            ..
        } => {
            let Some(tr) = tracks.remove(&id) else {
                return;
            };
            router.on_finish(id, backend, t_us);
            let first = tr.token_times.first().copied().unwrap_or(t_us);
            let mut itl: Vec<u64> = tr.token_times.windows(2).map(|w| w[1] - w[0]).collect();
            let mean_itl_us = if itl.is_empty() {
                0.0
            } else {
                itl.iter().sum::<u64>() as f64 / itl.len() as f64
            };
            itl.sort_unstable();
            let p99_itl_us = if itl.is_empty() {
                0
            } else {
                let rank = ((itl.len() as f64 * 0.99).ceil() as usize).clamp(1, itl.len());
                itl[rank - 1]
            };
            done.insert(
                id,
                RequestResult {
                    id,
                    backend: tr.backend,
                    arrival_us: tr.arrival_us,
                    ttft_us: first.saturating_sub(tr.arrival_us),
                    e2e_us: t_us.saturating_sub(tr.arrival_us),
                    mean_itl_us,
                    p99_itl_us,
                    prompt_tokens,
                    cached_tokens,
                    completion_tokens,
                    preempted: tr.preempted,
                },
            );
        }
    }
}
