//! Phase 4, select: pick a backend for the model. In this version: round-robin over the model's
//! backends, skipping the ones already tried by this request (so a retry goes elsewhere). The
//! cursor is per worker (no shared counter) and starts at the worker index so workers spread out.
//! The router issue replaces this function; its contract is: given the snapshot, the model and
//! the backends already tried, return a backend index or `NoBackend`.

use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::{Error, ErrorKind, Side};

use crate::snapshot::Snapshot;
use crate::worker::Worker;

/// Pick a backend index for `model_idx`, excluding `tried`.
pub fn select(
    w: &Rc<Worker>,
    snap: &Arc<Snapshot>,
    model_idx: usize,
    tried: &[usize],
) -> Result<usize, Error> {
    let no_backend = || {
        Error::new(
            ErrorKind::NoBackend,
            Side::Upstream,
            "No backend available for this model",
        )
    };
    let model = snap.config.models.get(model_idx).ok_or_else(no_backend)?;
    let n = model.backends.len();
    if n == 0 {
        return Err(no_backend());
    }
    let name = snap
        .model_names
        .get(model_idx)
        .cloned()
        .unwrap_or_else(|| Arc::from(""));
    let mut rr = w.rr.borrow_mut();
    let cur = rr.entry(name).or_insert(w.id);
    for _ in 0..n {
        let b = model.backends[*cur % n];
        *cur = cur.wrapping_add(1);
        if !tried.contains(&b) {
            return Ok(b);
        }
    }
    Err(no_backend())
}
