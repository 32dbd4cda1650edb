//! [`KeyStore`]: the compiled keys file and the one hot-path call, [`KeyStore::authenticate`].
//!
//! A store is immutable; a reload builds a new one off the data path and swaps it in whole
//! (STYLE.md §4), so no locks are needed and a request finishes on the snapshot it started on.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use subtle::{Choice, ConstantTimeEq};

use crate::error::KeysError;
use crate::secret::{self, DUMMY_DIGEST, DUMMY_SALT, DUMMY_SECRET, ID_HEX_LEN, MAX_TOKEN_BYTES};
use crate::types::{AuthFailure, Authed, Consumer, Key};

/// Compiled keys file: consumers, keys and an id index. `Send + Sync`, cheap to share behind
/// an `Arc`.
pub struct KeyStore {
    pub(crate) consumers: Vec<Consumer>,
    pub(crate) keys: Vec<Key>,
    /// Id suffix (the 12 hex digits carried in the token) → index into `keys`.
    pub(crate) by_id: HashMap<[u8; ID_HEX_LEN], usize>,
}

impl KeyStore {
    /// Read and compile a keys file. On failure every error found is returned, not just the
    /// first (syntax and unknown-field errors from the TOML parser stop at the first, since
    /// nothing after them can be trusted).
    pub fn load(path: &Path) -> Result<KeyStore, Vec<KeysError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![KeysError::new(
                &file,
                0,
                0,
                "",
                format!("cannot read keys file: {e}"),
            )]
        })?;
        KeyStore::parse(&text, &file)
    }

    /// Compile keys-file text. `file` is used in error messages only.
    pub fn parse(text: &str, file: &str) -> Result<KeyStore, Vec<KeysError>> {
        let raw: crate::raw::RawKeysFile = toml::from_str(text).map_err(|e| {
            let (line, col, field) =
                tollgate_core::locate::position(text, e.span().map(|s| s.start));
            vec![KeysError::new(
                file,
                line,
                col,
                &field,
                e.message().trim().to_string(),
            )]
        })?;
        crate::compile::compile(raw, text, file)
    }

    /// A store with no keys: every credential fails as `Unknown` or `Malformed`.
    pub fn empty() -> KeyStore {
        KeyStore {
            consumers: Vec::new(),
            keys: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Check a credential (the raw bytes from [`extract_token`](crate::extract_token)).
    ///
    /// Outcomes, in order: not a well-formed token → `Malformed`; no key with that id, or a
    /// wrong secret → `Unknown`; key or consumer disabled → `Revoked`;
    /// `now_unix_s >= expires` → `Expired`. Model and IP checks are the caller's next steps
    /// ([`Key::models`], [`Consumer::ips`]).
    ///
    /// # Timing
    ///
    /// Every path before the outcome is known does the same work: at most a 512-byte length
    /// and ASCII scan, one hash-map probe, one SHA-256 over `salt || secret` (a fixed dummy
    /// salt and secret when the token is malformed or names no key) and one constant-time
    /// 32-byte compare. Tokens longer than 512 bytes are rejected by length alone. So response
    /// time says nothing about whether an id exists or how much of a secret was right.
    pub fn authenticate(&self, token: &[u8], now_unix_s: i64) -> Result<Authed, AuthFailure> {
        let parts = if token.len() <= MAX_TOKEN_BYTES && token.is_ascii() {
            secret::parse_token(token)
        } else {
            None
        };
        let (slot, secret) = match &parts {
            Some(p) => (self.by_id.get(&p.id).copied(), p.secret),
            None => (None, &DUMMY_SECRET[..]),
        };
        let (salt, expected) = match slot.and_then(|i| self.keys.get(i)) {
            Some(k) => (&k.hash.salt, &k.hash.digest),
            None => (&DUMMY_SALT, &DUMMY_DIGEST),
        };
        let digest = secret::digest(salt, secret);
        let matched: bool =
            (digest.ct_eq(expected) & Choice::from(u8::from(slot.is_some()))).into();
        let (true, Some(ki)) = (matched, slot) else {
            return Err(match parts {
                None => AuthFailure::Malformed,
                Some(_) => AuthFailure::Unknown,
            });
        };
        let Some(key) = self.keys.get(ki) else {
            return Err(AuthFailure::Unknown);
        };
        let consumer_enabled = self.consumers.get(key.consumer).is_some_and(|c| c.enabled);
        if !key.enabled || !consumer_enabled {
            return Err(AuthFailure::Revoked);
        }
        if key.expires.is_some_and(|exp| now_unix_s >= exp) {
            return Err(AuthFailure::Expired);
        }
        Ok(Authed {
            key: ki,
            consumer: key.consumer,
        })
    }

    /// Consumer by index (as in [`Authed::consumer`]). Panics if out of range.
    pub fn consumer(&self, i: usize) -> &Consumer {
        &self.consumers[i]
    }

    /// Key by index (as in [`Authed::key`]). Panics if out of range.
    pub fn key(&self, i: usize) -> &Key {
        &self.keys[i]
    }

    /// All consumers, in file order.
    pub fn consumers(&self) -> &[Consumer] {
        &self.consumers
    }

    /// All keys, in file order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Key index by public id (`k_…`), for the CLI and admin endpoints.
    pub fn key_by_id(&self, id: &str) -> Option<usize> {
        secret::id_suffix(id).and_then(|s| self.by_id.get(&s).copied())
    }

    /// Consumer index by name.
    pub fn consumer_by_name(&self, name: &str) -> Option<usize> {
        self.consumers.iter().position(|c| c.name == name)
    }
}

impl Default for KeyStore {
    fn default() -> KeyStore {
        KeyStore::empty()
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("consumers", &self.consumers)
            .field("keys", &self.keys)
            .finish()
    }
}
