//! Model mode's engine driver: one task per backend owns the [`Engine`] and maps engine time to
//! wall-clock time (µs since fleet start).
//!
//! The task sleeps until `next_event_time()` or a new message, calls `advance(now)` and fans the
//! events out to the per-request channels. Tokio timers have ~1 ms resolution, small next to the
//! ≥ 6 ms steps of the default model; a late wake-up delays delivery, never reorders events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::BackendConfig;
use crate::engine::{Engine, EngineEvent, FinishReason, Gauges, SimRequest};

use super::Backend;

/// Messages from connection tasks to the driver.
pub enum DriverMsg {
    /// Start generating; events go to `tx`.
    Submit {
        /// The request.
        req: SimRequest,
        /// Where its events go.
        tx: mpsc::UnboundedSender<EngineEvent>,
    },
    /// The client went away (or a fault ended the response): drop the request.
    Cancel {
        /// Request id.
        id: u64,
    },
}

/// Gauges of an idle engine with this config: what instant mode reports.
pub fn static_gauges(cfg: &BackendConfig) -> Gauges {
    Engine::new(cfg.personality, cfg.engine.clone(), 0).gauges()
}

/// Runs the engine until every sender is gone (fleet shutdown).
pub async fn run(b: Arc<Backend>, mut rx: mpsc::UnboundedReceiver<DriverMsg>) {
    let mut engine = Engine::new(b.cfg.personality, b.cfg.engine.clone(), b.seed);
    let mut subs: HashMap<u64, mpsc::UnboundedSender<EngineEvent>> = HashMap::new();
    let mut out = Vec::new();
    loop {
        let msg = match engine.next_event_time() {
            Some(t) => {
                let at = tokio::time::Instant::from_std(b.epoch + Duration::from_micros(t));
                tokio::select! {
                    m = rx.recv() => Some(m),
                    _ = tokio::time::sleep_until(at) => None,
                }
            }
            None => Some(rx.recv().await),
        };
        let mut apply = |m: DriverMsg, engine: &mut Engine| match m {
            DriverMsg::Submit { req, tx } => {
                subs.insert(req.id, tx);
                engine.submit(b.now_us(), req);
            }
            DriverMsg::Cancel { id } => {
                subs.remove(&id);
                engine.cancel(b.now_us(), id);
            }
        };
        match msg {
            Some(None) => return,
            Some(Some(m)) => apply(m, &mut engine),
            None => {}
        }
        while let Ok(m) = rx.try_recv() {
            apply(m, &mut engine);
        }
        engine.advance(b.now_us(), &mut out);
        for ev in out.drain(..) {
            let id = match &ev {
                EngineEvent::Token { id, .. } | EngineEvent::Preempted { id, .. } => *id,
                EngineEvent::Finished { id, reason, .. } => {
                    let c = match reason {
                        FinishReason::Length => &b.stats.finished_length,
                        FinishReason::Stop => &b.stats.finished_stop,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    *id
                }
            };
            let done = matches!(ev, EngineEvent::Finished { .. });
            if let Some(tx) = subs.get(&id)
                && tx.send(ev).is_err()
            {
                // Receiver dropped without a Cancel (should not happen): stop generating.
                subs.remove(&id);
                engine.cancel(b.now_us(), id);
                continue;
            }
            if done {
                subs.remove(&id);
            }
        }
        *b.gauges.lock().unwrap_or_else(|e| e.into_inner()) = engine.gauges();
    }
}
