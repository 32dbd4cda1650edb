//! API-key authentication for tollgate, runtime-free (no async, no network): the keys file
//! (consumers, salted key hashes, per-key model permissions, IP rules), constant-time
//! verification, header extraction, and the library side of `tollgate keys add|revoke|list`.
//! See `README.md` in this crate for the keys-file reference.
//!
//! # Example
//!
//! ```
//! use tollgate_auth::{AuthFailure, KeyStore, extract_token, generate_key};
//!
//! let (key, hash) = generate_key()?; // normally: `tollgate keys add`
//! let text = format!(
//!     "[[consumer]]\nname = \"alice\"\ntenant = \"acme\"\n\n\
//!      [[key]]\nid = \"{}\"\nconsumer = \"alice\"\nhash = \"{hash}\"\nmodels = [\"qwen-*\"]\n",
//!     key.id
//! );
//! let store = KeyStore::parse(&text, "keys.toml").map_err(|e| format!("{e:?}"))?;
//!
//! let header = format!("Bearer {}", key.token);
//! let token = extract_token(Some(header.as_bytes()), None)?;
//! let who = store.authenticate(token, 1_800_000_000)?;
//! assert_eq!(store.consumer(who.consumer).tenant, "acme");
//! assert!(store.key(who.key).models.allows("qwen-7b"));
//! assert!(store.consumer(who.consumer).ips.allows("192.0.2.1".parse()?));
//! assert_eq!(store.authenticate(b"tgk_nope", 0), Err(AuthFailure::Malformed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Token format
//!
//! A key handed to a client is `tgk_<12 lowercase hex>_<secret>`, e.g.
//! `tgk_3f9a2c1d8e7b_Zq…` (60 characters). The 12 hex digits are the key id without its `k_`
//! prefix (the file stores `id = "k_3f9a2c1d8e7b"`), so verification needs one hash-map probe,
//! not a scan. The secret is 43 characters drawn uniformly from base62 (`[0-9A-Za-z]`) with
//! `getrandom`: 256 bits of entropy, and the whole token selects with one double-click.
//! Verification also accepts base64url secrets (`-`, `_`) of 43–256 characters.
//!
//! # Hashing
//!
//! The file stores `sha256$<32 hex salt>$<64 hex SHA-256(salt || secret)>` with a fresh
//! 16-byte salt per key. A fast hash is the right tool here: the secrets are 256-bit random
//! strings, so a stolen file cannot be brute-forced at any hash rate, while a slow password
//! KDF (argon2, scrypt) would add milliseconds of CPU to every request for no gain.
//!
//! # Timing
//!
//! [`KeyStore::authenticate`] does the same work whether the token is malformed, names an
//! unknown id, or has a wrong secret: one SHA-256 (over a fixed dummy salt and secret when
//! there is no real key to check) and one constant-time compare (`subtle`). Tokens over 512
//! bytes or with non-ASCII bytes are rejected before any real hashing.
//!
//! # Secrets never leak through formatting
//!
//! No type here holds a secret except [`NewKey::token`], whose `Debug`/`Display` redact it;
//! no error message quotes a token or a stored hash.
#![deny(missing_docs)]

mod cli;
mod compile;
mod error;
mod extract;
mod ip;
mod models;
mod raw;
mod secret;
mod store;
mod types;

pub use cli::{NewKey, add_consumer, add_key, generate_key, list, set_key_enabled};
pub use compile::MAX_NAME_LEN;
pub use error::KeysError;
pub use extract::extract_token;
pub use ip::IpRules;
pub use models::{MAX_PATTERN_BYTES, ModelMatcher};
pub use secret::{MAX_TOKEN_BYTES, TOKEN_PREFIX};
pub use store::KeyStore;
pub use types::{AuthFailure, Authed, Consumer, Key};
