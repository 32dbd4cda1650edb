//! Token format, key generation and the salted hash. The only module that touches secret
//! bytes; nothing here formats a secret into a string other than the one token handed back
//! to the operator at creation time.
//!
//! Why SHA-256 and not argon2/scrypt: the secrets are 256-bit random strings, not passwords,
//! so there is nothing for a slow KDF to protect against (brute-forcing 2^256 is out of reach
//! at any hash speed), while a KDF would cost milliseconds of CPU on every request. The salt
//! still makes every stored hash unique, so equal secrets (or a leaked file compared against
//! another) reveal nothing.

use sha2::{Digest, Sha256};

/// Every token starts with this, so secret scanners and humans can recognise one.
pub const TOKEN_PREFIX: &str = "tgk_";
/// Hex digits in a key id after `k_` (48 bits: ids are public, they only need to be unique).
pub const ID_HEX_LEN: usize = 12;
/// Characters in a generated secret: 43 base62 characters = 256.03 bits of entropy.
pub const SECRET_LEN: usize = 43;
/// Shortest secret accepted when verifying. Equal to what we generate; anything shorter was
/// not minted by us and is rejected as malformed before any lookup.
pub const SECRET_MIN_LEN: usize = SECRET_LEN;
/// Longest secret accepted. Bounds hashing work per request; leaves room for future formats.
pub const SECRET_MAX_LEN: usize = 256;
/// Requests presenting a longer credential are rejected as malformed before any real hashing.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Salt bytes per key. 128 bits: unique per key with overwhelming probability.
pub const SALT_LEN: usize = 16;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HASH_SCHEME: &str = "sha256";

/// Salt and digest used when the token is malformed or names no key, so that every failure
/// does one SHA-256 and one constant-time compare, like a real check (no timing oracle on
/// whether an id exists or how far a secret got).
pub(crate) const DUMMY_SALT: [u8; SALT_LEN] = *b"tollgate-dummy-s";
pub(crate) const DUMMY_DIGEST: [u8; 32] = [0x5a; 32];
/// Stand-in secret hashed for malformed tokens: same length as a real one, so the same number
/// of SHA-256 blocks is processed.
pub(crate) const DUMMY_SECRET: &[u8; SECRET_LEN] = b"0000000000000000000000000000000000000000000";

/// A stored key hash: `sha256$<salt hex>$<hex(SHA-256(salt || secret))>`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyHash {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) digest: [u8; 32],
}

impl KeyHash {
    /// Hash a secret under a fresh random salt.
    pub(crate) fn new(secret: &[u8]) -> Result<KeyHash, String> {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        Ok(KeyHash::with_salt(salt, secret))
    }

    pub(crate) fn with_salt(salt: [u8; SALT_LEN], secret: &[u8]) -> KeyHash {
        KeyHash {
            salt,
            digest: digest(&salt, secret),
        }
    }

    /// Parse the stored form. The error never quotes the value (it could be a pasted token).
    pub(crate) fn parse(s: &str) -> Result<KeyHash, String> {
        const EXPECT: &str = "expected \"sha256$<32 hex salt>$<64 hex digest>\"";
        let mut parts = s.split('$');
        let (Some(scheme), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed hash: {EXPECT}"));
        };
        if scheme != HASH_SCHEME {
            return Err(format!("unsupported hash scheme; {EXPECT}"));
        }
        let (Some(salt), Some(digest)) = (unhex::<SALT_LEN>(salt), unhex::<32>(digest)) else {
            return Err(format!("malformed hash: {EXPECT}"));
        };
        Ok(KeyHash { salt, digest })
    }

    /// The stored form.
    pub(crate) fn encode(&self) -> String {
        format!("{HASH_SCHEME}${}${}", hex(&self.salt), hex(&self.digest))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not secret, but nobody needs it in a log line either.
        f.write_str("KeyHash(sha256, ..)")
    }
}

/// SHA-256(salt || secret).
pub(crate) fn digest(salt: &[u8; SALT_LEN], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret);
    h.finalize().into()
}

/// A syntactically valid token: the id suffix (12 lowercase hex) and the secret part.
pub(crate) struct TokenParts<'a> {
    pub(crate) id: [u8; ID_HEX_LEN],
    pub(crate) secret: &'a [u8],
}

/// Split `tgk_<12 lowercase hex>_<secret>`. The secret alphabet is base62 plus `-` and `_`
/// (base64url), 43..=256 characters. Callers bound the total length first.
pub(crate) fn parse_token(token: &[u8]) -> Option<TokenParts<'_>> {
    let rest = token.strip_prefix(TOKEN_PREFIX.as_bytes())?;
    let (id, rest) = rest.split_first_chunk::<ID_HEX_LEN>()?;
    let secret = rest.strip_prefix(b"_")?;
    let id_ok = id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = (SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&secret.len())
        && secret
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    (id_ok && secret_ok).then_some(TokenParts { id: *id, secret })
}

/// The 12-hex suffix of a stored id `k_<12 lowercase hex>`, or `None` if the id is not in
/// that form.
pub(crate) fn id_suffix(id: &str) -> Option<[u8; ID_HEX_LEN]> {
    let hex = id.strip_prefix("k_")?.as_bytes();
    let arr: [u8; ID_HEX_LEN] = hex.try_into().ok()?;
    arr.iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .then_some(arr)
}

/// Freshly generated key material. `token` is the only copy of the secret.
pub(crate) struct Generated {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) hash: KeyHash,
}

/// Generate an id, a secret and its salted hash.
pub(crate) fn generate() -> Result<Generated, String> {
    let mut id_bytes = [0u8; ID_HEX_LEN / 2];
    fill_random(&mut id_bytes)?;
    let id_hex = hex(&id_bytes);
    let secret = random_base62(SECRET_LEN)?;
    let hash = KeyHash::new(secret.as_bytes())?;
    Ok(Generated {
        id: format!("k_{id_hex}"),
        token: format!("{TOKEN_PREFIX}{id_hex}_{secret}"),
        hash,
    })
}

/// `n` uniformly random base62 characters by rejection sampling (bytes ≥ 248 are dropped so
/// `b % 62` is unbiased).
fn random_base62(n: usize) -> Result<String, String> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        fill_random(&mut buf)?;
        for &b in &buf {
            if b < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// Replace anything in `s` that could be a token or a bare secret with `<redacted>`: every
/// maximal run of token characters (`[A-Za-z0-9_-]`) that contains `tgk_` or is at least
/// [`SECRET_LEN`] long. Applied to every error message and field path this crate builds,
/// because parser messages quote values and an operator may paste a token into any field.
/// Cost: an over-long model name in an error message is redacted too; the line and field
/// still point at it.
pub(crate) fn redact(s: &str) -> String {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut run_start: Option<usize> = None;
    let flush = |out: &mut String, run: &str| {
        if run.contains(TOKEN_PREFIX) || run.len() >= SECRET_LEN {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
    };
    for (i, c) in s.char_indices() {
        match (is_tok(c), run_start) {
            (true, None) => run_start = Some(i),
            (true, Some(_)) => {}
            (false, Some(st)) => {
                flush(&mut out, s.get(st..i).unwrap_or(""));
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
        }
    }
    if let Some(st) = run_start {
        flush(&mut out, s.get(st..).unwrap_or(""));
    }
    out
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("system random number generator failed: {e}"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 15)]));
    }
    s
}

/// Decode exactly `N` bytes of hex (either case).
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_parses_and_verifies() {
        let g = generate().unwrap();
        let p = parse_token(g.token.as_bytes()).unwrap();
        assert_eq!(&p.id[..], &g.id.as_bytes()[2..]);
        assert_eq!(p.secret.len(), SECRET_LEN);
        assert_eq!(digest(&g.hash.salt, p.secret), g.hash.digest);
        assert_eq!(KeyHash::parse(&g.hash.encode()).unwrap(), g.hash);
    }

    #[test]
    fn same_secret_two_salts_two_hashes() {
        let a = KeyHash::new(b"same-secret").unwrap();
        let b = KeyHash::new(b"same-secret").unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.encode(), b.encode());
    }

    #[test]
    fn hash_parse_rejects_bad_forms() {
        let good = KeyHash::with_salt([1; 16], b"x").encode();
        assert!(KeyHash::parse(&good).is_ok());
        for bad in [
            "",
            "sha256",
            "md5$00$00",
            &good.replace("sha256", "sha512"),
            &format!("{good}$"),
            &good[..good.len() - 1],
            &good.replacen('0', "g", 1),
        ] {
            assert!(KeyHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redact_hides_tokens_and_secret_like_runs() {
        let g = generate().unwrap();
        let secret = &g.token[g.token.len() - SECRET_LEN..];
        let msg = format!("bad value \"{}\" and `{secret}`, model \"qwen-*\"", g.token);
        let r = redact(&msg);
        assert_eq!(
            r,
            "bad value \"<redacted>\" and `<redacted>`, model \"qwen-*\""
        );
        assert_eq!(redact("key[0].hash"), "key[0].hash");
        assert_eq!(redact("über tgk_"), "über <redacted>");
    }

    #[test]
    fn base62_is_alphanumeric() {
        let s = random_base62(500).unwrap();
        assert_eq!(s.len(), 500);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
