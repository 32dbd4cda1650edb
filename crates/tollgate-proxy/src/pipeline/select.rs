//! Phase 4, select: resolve the virtual model to a pool (route rules: header, content, context
//! length; weighted splits), then pick a backend of that pool with its policy (tollgate-route),
//! from the control thread's load snapshot (one atomic load) and the per-worker in-flight slots.
//! Retries come back to `pick` with the backends already tried, and only before the first byte.

use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::{Error, ErrorKind, Side};
use tollgate_http::RequestHead;
use tollgate_route::{Ask, Env, Facts, InflightGuard};

use super::inspect::Inspected;
use crate::routing::now_ms;
use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// Header lookups for route rules.
struct HeadView<'a>(&'a RequestHead);

impl tollgate_route::Headers for HeadView<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.header(name)
    }
}

fn no_backend() -> Error {
    Error::new(
        ErrorKind::NoBackend,
        Side::Upstream,
        "No backend available for this model",
    )
}

/// The resolved target of a request.
pub struct Target {
    /// Pool index.
    pub pool: usize,
    /// Route rule that matched (`None` = the model's default).
    pub rule: Option<usize>,
    /// Prompt tokens, when a rule counted them.
    pub counted_tokens: Option<usize>,
}

/// Resolve the request's virtual model to a pool.
pub fn resolve(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    head: &RequestHead,
    req: &Inspected,
) -> Result<Target, Error> {
    let model = snap
        .config
        .models
        .get(req.model_idx)
        .ok_or_else(no_backend)?;
    // The common case — no rules, one pool — needs neither the request's facts nor a draw.
    if let ([], [(pool, _)]) = (
        &model.routing.routes[..],
        &model.routing.default.targets[..],
    ) {
        return Ok(Target {
            pool: *pool,
            rule: None,
            counted_tokens: None,
        });
    }
    let hv = HeadView(head);
    let facts = Facts::new(&hv, &req.body);
    let r = w.route.borrow_mut().rand();
    let res = tollgate_route::resolve::resolve(&model.routing, &facts, r).ok_or_else(no_backend)?;
    Ok(Target {
        pool: res.pool,
        rule: res.rule,
        counted_tokens: facts.counted_tokens(),
    })
}

/// A chosen backend and the in-flight accounting that lasts while the request runs.
pub struct Chosen {
    /// Backend index.
    pub backend: usize,
    /// Undoes the in-flight counts when dropped.
    pub guard: InflightGuard,
}

/// Pick a backend of `target.pool`, excluding `tried`.
pub fn select(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    target: &Target,
    req: &Inspected,
    tried: &[usize],
) -> Result<Chosen, Error> {
    let cfg = &snap.config;
    let pool = cfg.pools.get(target.pool).ok_or_else(no_backend)?;
    let load = w.shared.route.load.load();
    let env = Env {
        now_ms: now_ms(),
        generation: snap.generation,
        settings: &cfg.routing,
        states: &snap.route.states,
        caps: &snap.route.caps,
        load: &load,
        prefix: &snap.route.prefix,
    };
    let prompt_tokens = target.counted_tokens.map_or(
        req.prompt_raw.len() as u64 / tollgate_route::pick::BYTES_PER_TOKEN,
        |n| n as u64,
    );
    let output_tokens = req.max_tokens.unwrap_or(cfg.routing.default_output_tokens);
    let ask = Ask {
        tried,
        prompt: &req.prompt_raw,
        prompt_tokens,
        output_tokens,
    };
    let pick = {
        let mut local = w.route.borrow_mut();
        tollgate_route::pick(target.pool, pool, cfg.pools.len(), &env, &ask, &mut local)
    }
    .ok_or_else(no_backend)?;
    let state = snap.route.states.get(pick.backend).ok_or_else(no_backend)?;
    let guard = state.start(w.id, prompt_tokens + output_tokens);
    w.m(|m| {
        let pool_name = snap.route.pool_names.get(target.pool).cloned();
        let backend = snap.backend_names.get(pick.backend).cloned();
        if let (Some(p), Some(b)) = (pool_name, backend) {
            *m.picks.entry((p, b, pool.policy.as_str())).or_default() += 1;
        }
        if pick.matched_blocks > 0 {
            m.prefix_matched += 1;
        }
        if pick.tier > 0 {
            m.tier_fallbacks += 1;
        }
        if pick.fail_open {
            m.fail_open += 1;
        }
    });
    Ok(Chosen {
        backend: pick.backend,
        guard,
    })
}

/// Record the outcome of an attempt on backend `b` for passive health.
pub fn record_outcome(snap: &Snapshot, w: &Worker, b: usize, failed: bool) {
    let Some(state) = snap.route.states.get(b) else {
        return;
    };
    let now = now_ms();
    let eject = &snap.config.routing.eject;
    if !failed {
        state.record_success(now, eject);
        return;
    }
    let may = snap.route.may_eject(&snap.config, b, now);
    if state.record_failure(now, eject, may) {
        let name = snap.backend_names.get(b).map_or("?", |n| n);
        eprintln!(
            "tollgate: backend {name} ejected until +{} ms after {} consecutive failures",
            state.ejected_until_ms().saturating_sub(now),
            eject.consecutive_failures
        );
        w.m(|m| m.ejections += 1);
    }
}
