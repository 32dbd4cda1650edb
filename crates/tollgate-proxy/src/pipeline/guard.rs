//! Phase 2b, guard (part of admit, before the body is read): the client address against the
//! global IP rules, then the API key (`Authorization: Bearer` or `x-api-key`), then the
//! consumer's own IP rules. A rejected caller costs no body read, no JSON parse and no scan.
//! After inspect, [`check_model`] applies the key's model permissions to the model the client
//! named.
//!
//! Secret hygiene: the credential is only ever passed to `KeyStore::authenticate` (salted hash,
//! constant-time compare). Logs, metrics and the ledger see the public key id; error bodies for
//! a missing, malformed, unknown or revoked key are byte-identical.

use std::sync::Arc;

use tollgate_auth::AuthFailure;
use tollgate_core::{Error, ErrorKind};
use tollgate_http::RequestHead;

use super::ReqCtx;
use super::admit::Route;
use crate::snapshot::Snapshot;

/// Who is calling: resolved once per request, cheap to clone into logs and metrics.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Key index in the snapshot's key store.
    pub key: usize,
    /// Consumer index in the snapshot's key store.
    pub consumer: usize,
    /// Public key id (never the key).
    pub key_id: Arc<str>,
    /// Consumer name.
    pub consumer_name: Arc<str>,
    /// Tenant of the consumer.
    pub tenant: Arc<str>,
    /// Project of the consumer.
    pub project: Arc<str>,
}

/// One message for every credential we refuse without saying why: an attacker probing keys
/// learns nothing from the body (the access log and metrics carry the reason).
const BAD_KEY: &str =
    "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.";

fn unauthorized(f: AuthFailure) -> Error {
    match f {
        AuthFailure::Expired => Error::client(ErrorKind::Unauthorized, "The API key has expired")
            .with_code("expired_api_key"),
        AuthFailure::Missing
        | AuthFailure::Malformed
        | AuthFailure::Unknown
        | AuthFailure::Revoked => Error::client(ErrorKind::Unauthorized, BAD_KEY),
    }
}

fn ip_denied() -> Error {
    Error::client(
        ErrorKind::Forbidden,
        "Requests from this address are not allowed",
    )
    .with_code("ip_not_allowed")
}

/// Seconds since the Unix epoch (key expiry).
fn unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The credential headers. A repeated `Authorization` or `x-api-key` field is malformed: two
/// credentials must not be resolved "first here, last somewhere else".
fn credential(head: &RequestHead) -> Result<&[u8], AuthFailure> {
    let h = &head.headers;
    if h.get_all("authorization").nth(1).is_some() || h.get_all("x-api-key").nth(1).is_some() {
        return Err(AuthFailure::Malformed);
    }
    tollgate_auth::extract_token(h.get("authorization"), h.get("x-api-key"))
}

/// IP rules and authentication, before the body is read. Sets `rq.principal` on success and
/// `rq.denied` (metric reason) on refusal.
pub fn guard(
    snap: &Arc<Snapshot>,
    head: &RequestHead,
    rq: &mut ReqCtx,
    route: &Route,
) -> Result<(), Error> {
    let g = &snap.config.governance;
    let ip = rq.peer.ip();
    if !g.ips.allows(ip) {
        rq.denied = Some("ip_denied");
        return Err(ip_denied());
    }
    // `/health` is for load balancers and probes: address rules apply, keys do not.
    if !g.auth_required() || matches!(route, Route::Health) {
        return Ok(());
    }
    let authed = credential(head).and_then(|t| g.keys.authenticate(t, unix_s()));
    let a = match authed {
        Ok(a) => a,
        Err(f) => {
            rq.denied = Some(match f {
                AuthFailure::Missing => "missing_key",
                AuthFailure::Malformed | AuthFailure::Unknown => "invalid_key",
                AuthFailure::Expired => "expired_key",
                AuthFailure::Revoked => "revoked_key",
            });
            return Err(unauthorized(f));
        }
    };
    let (Some(labels), Some(key_id)) = (
        snap.consumer_labels.get(a.consumer),
        snap.key_ids.get(a.key),
    ) else {
        return Err(Error::internal("key store and snapshot disagree"));
    };
    rq.principal = Some(Principal {
        key: a.key,
        consumer: a.consumer,
        key_id: key_id.clone(),
        consumer_name: labels.name.clone(),
        tenant: labels.tenant.clone(),
        project: labels.project.clone(),
    });
    if !g.keys.consumer(a.consumer).ips.allows(ip) {
        rq.denied = Some("ip_denied");
        return Err(ip_denied());
    }
    Ok(())
}

/// Whether the caller's key may use `model` (always true when auth is off).
pub fn may_use(snap: &Snapshot, rq: &ReqCtx, model: &str) -> bool {
    match &rq.principal {
        None => true,
        Some(p) => snap.config.governance.keys.key(p.key).models.allows(model),
    }
}

/// 403 when the key may not use the model the client named (the virtual model: what a pool
/// serves it as is the operator's business, not the caller's).
pub fn check_model(snap: &Snapshot, rq: &mut ReqCtx, model: &str) -> Result<(), Error> {
    if may_use(snap, rq, model) {
        return Ok(());
    }
    rq.denied = Some("model_not_allowed");
    Err(Error::client(
        ErrorKind::Forbidden,
        "This API key is not allowed to use the requested model",
    )
    .with_code("model_not_allowed"))
}
