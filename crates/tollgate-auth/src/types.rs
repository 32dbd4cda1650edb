//! The compiled, immutable view of a keys file that the proxy holds on the data path, and the
//! outcome types of a check. Indices (`Authed::key`, `Key::consumer`) point into the owning
//! [`KeyStore`](crate::KeyStore), so a snapshot is a few flat vectors.

use std::fmt;

use crate::ip::IpRules;
use crate::models::ModelMatcher;
use crate::secret::KeyHash;

/// Who is calling. `tenant` and `project` are billing dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Unique name, `[A-Za-z0-9._-]{1,64}`.
    pub name: String,
    /// Tenant (billing), same charset.
    pub tenant: String,
    /// Project (billing), same charset; `"default"` when not given.
    pub project: String,
    /// `false` revokes every key of this consumer.
    pub enabled: bool,
    /// Which peer addresses may use this consumer's keys.
    pub ips: IpRules,
}

/// One API key. Holds only the salted hash of its secret, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Public id, `k_` + 12 lowercase hex; appears in logs and the ledger.
    pub id: String,
    /// Index of the owning consumer in [`KeyStore::consumers`](crate::KeyStore::consumers).
    pub consumer: usize,
    /// Models this key may call.
    pub models: ModelMatcher,
    /// `false` = revoked.
    pub enabled: bool,
    /// Expiry, unix seconds; the key is expired from this second on.
    pub expires: Option<i64>,
    /// Creation time, unix seconds (informational).
    pub created: Option<i64>,
    /// Free-text note (informational).
    pub note: Option<String>,
    pub(crate) hash: KeyHash,
}

impl fmt::Debug for Key {
    /// Everything but the hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("consumer", &self.consumer)
            .field("models", &self.models.patterns())
            .field("enabled", &self.enabled)
            .field("expires", &self.expires)
            .field("created", &self.created)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

/// A successful check: indices of the key and its consumer in the store that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authed {
    /// Index into [`KeyStore::keys`](crate::KeyStore::keys).
    pub key: usize,
    /// Index into [`KeyStore::consumers`](crate::KeyStore::consumers).
    pub consumer: usize,
}

/// Why a request was not authenticated. The proxy answers `Missing`, `Malformed` and
/// `Unknown` with the same 401 body (no hint whether an id exists); the distinction is for
/// metrics and logs only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential header at all.
    Missing,
    /// A credential that is not a well-formed token (or conflicting headers).
    Malformed,
    /// Well-formed, but no key with that id and that secret.
    Unknown,
    /// Right secret, but past the key's `expires`.
    Expired,
    /// Right secret, but the key or its consumer is disabled.
    Revoked,
}

impl AuthFailure {
    /// Metric label: `missing`, `malformed`, `unknown`, `expired` or `revoked`.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for AuthFailure {}
