//! Virtual-time fleet: N engines driven by a discrete-event loop instead of a clock.
//!
//! Why: routing-policy sweeps over minutes of traffic must run in seconds and be exactly
//! reproducible (routing.md §3.2 "Two clocks"). The loop jumps from event to event: the earliest
//! of the next arrival and every engine's [`Engine::next_event_time`]. At each instant, engines are
//! advanced first (so the router sees gauges as of that instant), then the arrivals of that
//! instant are routed one by one, each seeing the gauges left by the previous one.
//!
//! The router is a plain closure `(&[Gauges], &SimRequest) -> backend index`; an index out of
//! range wraps modulo the number of engines.

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
        mut reqs: Vec<SimRequest>,
        mut route: impl FnMut(&[Gauges], &SimRequest) -> usize,
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
        loop {
            let next_arrival = pending.peek().map(|r| r.arrival_us);
            let next_engine = self
                .engines
                .iter()
                .filter_map(Engine::next_event_time)
                .min();
            let t = match (next_arrival, next_engine) {
                (Some(a), Some(e)) => a.min(e),
                (Some(a), None) => a,
                (None, Some(e)) => e,
                (None, None) => break,
            };
            for engine in &mut self.engines {
                events.clear();
                engine.advance(t, &mut events);
                for ev in &events {
                    record(ev, &mut tracks, &mut done);
                }
            }
            while let Some(req) = pending.next_if(|r| r.arrival_us <= t) {
                gauges.clear();
                gauges.extend(self.engines.iter().map(Engine::gauges));
                let b = route(&gauges, &req) % self.engines.len();
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

/// Folds one engine event into the per-request tracks.
fn record(
    ev: &EngineEvent,
    tracks: &mut HashMap<u64, Track>,
    done: &mut HashMap<u64, RequestResult>,
) {
    match *ev {
        EngineEvent::Token { id, t_us, .. } => {
            if let Some(tr) = tracks.get_mut(&id) {
                tr.token_times.push(t_us);
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
