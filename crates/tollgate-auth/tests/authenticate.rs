//! `KeyStore::authenticate`: the right key passes; every kind of wrong credential fails with the
//! right reason; state (disabled key/consumer, expiry) is applied in the documented order; and no
//! public type ever formats a secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_auth::{AuthFailure, Authed, KeyStore, KeysError, NewKey, generate_key};

const EXP: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z
const NOW: i64 = 1_790_000_000;

struct Fixture {
    store: KeyStore,
    text: String,
    /// alice's key: enabled, no expiry.
    ok: NewKey,
    /// alice's second key, disabled.
    off: NewKey,
    /// bob's key (bob is disabled).
    bob: NewKey,
    /// alice's key expiring at EXP.
    exp: NewKey,
}

fn fixture() -> Fixture {
    let (ok, ok_h) = generate_key().unwrap();
    let (off, off_h) = generate_key().unwrap();
    let (bob, bob_h) = generate_key().unwrap();
    let (exp, exp_h) = generate_key().unwrap();
    let text = format!(
        r#"
[[consumer]]
name = "alice"
tenant = "acme"

[[consumer]]
name = "bob"
tenant = "acme"
enabled = false

[[key]]
id = "{}"
consumer = "alice"
hash = "{ok_h}"
models = ["*"]

[[key]]
id = "{}"
consumer = "alice"
hash = "{off_h}"
models = ["*"]
enabled = false

[[key]]
id = "{}"
consumer = "bob"
hash = "{bob_h}"
models = ["*"]

[[key]]
id = "{}"
consumer = "alice"
hash = "{exp_h}"
models = ["*"]
expires = "2027-01-01T00:00:00Z"
"#,
        ok.id, off.id, bob.id, exp.id
    );
    let store = KeyStore::parse(&text, "keys.toml").unwrap();
    Fixture {
        store,
        text,
        ok,
        off,
        bob,
        exp,
    }
}

fn secret_of(k: &NewKey) -> &str {
    &k.token[k.token.len() - 43..]
}

#[test]
fn right_key_authenticates() {
    let f = fixture();
    let a = f.store.authenticate(f.ok.token.as_bytes(), NOW).unwrap();
    assert_eq!(
        a,
        Authed {
            key: 0,
            consumer: 0
        }
    );
    assert_eq!(f.store.key(a.key).id, f.ok.id);
    assert_eq!(f.store.consumer(a.consumer).name, "alice");
    assert_eq!(f.store.consumer(a.consumer).project, "default");
    assert_eq!(f.store.key_by_id(&f.ok.id), Some(0));
}

#[test]
fn wrong_secret_is_unknown() {
    let f = fixture();
    // Another key's secret under this key's id.
    let forged = format!("tgk_{}_{}", &f.ok.id[2..], secret_of(&f.off));
    assert_eq!(
        f.store.authenticate(forged.as_bytes(), NOW),
        Err(AuthFailure::Unknown)
    );
    // Right id, secret off by the last character.
    let mut flipped = f.ok.token.clone().into_bytes();
    let last = flipped.last_mut().unwrap();
    *last = if *last == b'a' { b'b' } else { b'a' };
    assert_eq!(
        f.store.authenticate(&flipped, NOW),
        Err(AuthFailure::Unknown)
    );
    // Right secret, wrong id.
    let swapped = format!("tgk_{}_{}", &f.off.id[2..], secret_of(&f.ok));
    assert_eq!(
        f.store.authenticate(swapped.as_bytes(), NOW),
        Err(AuthFailure::Unknown)
    );
}

#[test]
fn unknown_id_is_unknown() {
    let f = fixture();
    let t = format!("tgk_000000000000_{}", secret_of(&f.ok));
    assert_eq!(
        f.store.authenticate(t.as_bytes(), NOW),
        Err(AuthFailure::Unknown)
    );
    assert_eq!(
        KeyStore::empty().authenticate(f.ok.token.as_bytes(), NOW),
        Err(AuthFailure::Unknown)
    );
}

#[test]
fn garbage_is_malformed() {
    let f = fixture();
    let huge = vec![b'a'; 64 * 1024];
    let mut huge_token = f.ok.token.clone().into_bytes();
    huge_token.extend(std::iter::repeat_n(b'a', 600));
    let with_suffix = |s: &str| format!("{}{s}", f.ok.token).into_bytes();
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"' OR '1'='1".to_vec(),
        huge,
        huge_token,
        vec![0xff, 0xfe, 0x80, 0x00],
        b"tgk_\xff\xfe".to_vec(),
        with_suffix("\0"),
        with_suffix("\n"),
        with_suffix("é"),
        f.ok.token.replace("tgk_", "tgx_").into_bytes(),
        f.ok.token.to_uppercase().into_bytes(),
        f.ok.token.as_bytes()[..f.ok.token.len() - 1].to_vec(), // secret too short
        format!("tgk_{}", &f.ok.id[2..]).into_bytes(),
        b"tgk_3f9a2c1d8e7b".to_vec(),
        b"tgk_".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"\n".to_vec(),
    ];
    for c in cases {
        assert_eq!(
            f.store.authenticate(&c, NOW),
            Err(AuthFailure::Malformed),
            "{:?}",
            String::from_utf8_lossy(&c[..c.len().min(80)])
        );
    }
}

#[test]
fn disabled_key_is_revoked() {
    let f = fixture();
    assert_eq!(
        f.store.authenticate(f.off.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
}

#[test]
fn disabled_consumer_revokes_its_keys() {
    let f = fixture();
    assert_eq!(
        f.store.authenticate(f.bob.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
}

#[test]
fn expiry_boundary_is_inclusive() {
    let f = fixture();
    let t = f.exp.token.as_bytes();
    assert!(f.store.authenticate(t, EXP - 1).is_ok());
    assert_eq!(f.store.authenticate(t, EXP), Err(AuthFailure::Expired));
    assert_eq!(f.store.authenticate(t, EXP + 1), Err(AuthFailure::Expired));
}

#[test]
fn revoked_wins_over_expired() {
    let (k, h) = generate_key().unwrap();
    let text = format!(
        "[[consumer]]\nname = \"a\"\ntenant = \"t\"\n[[key]]\nid = \"{}\"\nconsumer = \"a\"\nhash = \"{h}\"\nmodels = [\"*\"]\nenabled = false\nexpires = \"2000-01-01T00:00:00Z\"\n",
        k.id
    );
    let s = KeyStore::parse(&text, "k.toml").unwrap();
    assert_eq!(
        s.authenticate(k.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
}

#[test]
fn base64url_secret_verifies() {
    // Tokens minted elsewhere with a base64url secret (contains `-` and `_`) also verify,
    // as long as the stored hash matches.
    use sha2::{Digest, Sha256};
    let secret = "AbC-_dEf0123456789-_abcdefghijklmnopqrstuvwx";
    let salt = [7u8; 16];
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let hash = format!("sha256${}${}", hex(&salt), hex(&h.finalize()));
    let text = format!(
        "[[consumer]]\nname = \"a\"\ntenant = \"t\"\n[[key]]\nid = \"k_0123456789ab\"\nconsumer = \"a\"\nhash = \"{hash}\"\nmodels = [\"*\"]\n"
    );
    let s = KeyStore::parse(&text, "k.toml").unwrap();
    let token = format!("tgk_0123456789ab_{secret}");
    assert!(s.authenticate(token.as_bytes(), NOW).is_ok());
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<KeyStore>();
    check::<tollgate_auth::Key>();
    check::<tollgate_auth::Consumer>();
}

/// Canary: format every public type built from a store holding the key, plus every error this
/// crate can produce around it, and check neither the token nor the secret shows up.
#[test]
fn no_type_or_error_formats_the_secret() {
    let f = fixture();
    let token = f.ok.token.clone();
    let secret = secret_of(&f.ok).to_string();
    let mut outputs: Vec<String> = vec![
        format!("{:?}", f.store),
        format!("{:?}", f.store.keys()),
        format!("{:?}", f.store.consumers()),
        format!("{:?}", f.ok),
        format!("{}", f.ok),
        format!("{:?}", f.store.authenticate(token.as_bytes(), NOW)),
        format!("{:?}", f.store.authenticate(b"junk", NOW)),
        format!(
            "{:?}",
            tollgate_auth::extract_token(Some(token.as_bytes()), None)
        ),
        format!("{:?}", tollgate_auth::ModelMatcher::all()),
        format!("{:?}", tollgate_auth::IpRules::allow_all()),
    ];
    for a in [AuthFailure::Unknown, AuthFailure::Malformed] {
        outputs.push(format!("{a} {a:?}"));
    }
    // Operator pastes the token into the hash field, or as an id, a model, a CIDR, a date.
    let pasted = [
        f.text.replacen(&hash_of(&f.text, 0), &token, 1),
        f.text
            .replacen(&format!("\"{}\"", f.ok.id), &format!("\"{token}\""), 1),
        f.text
            .replacen("models = [\"*\"]", &format!("models = [\"{token}\"]"), 1),
        f.text.replacen(
            "tenant = \"acme\"",
            &format!("tenant = \"acme\"\nallow_ips = [\"{token}\"]"),
            1,
        ),
        f.text.replacen(
            "expires = \"2027-01-01T00:00:00Z\"",
            &format!("expires = \"{token}\""),
            1,
        ),
        f.text
            .replacen("enabled = false", &format!("note = \"ci {token}\""), 1),
        // Type errors and unknown fields, where the TOML parser quotes the value or the key.
        f.text
            .replacen("enabled = false", &format!("enabled = \"{token}\""), 1),
        f.text
            .replacen("enabled = false", &format!("{token} = 1"), 1),
        f.text
            .replacen("enabled = false", &format!("enabled = \"{secret}\""), 1),
        f.text
            .replacen("enabled = false", &format!("enabled = {token}"), 1),
    ];
    for text in &pasted {
        let errs: Vec<KeysError> = KeyStore::parse(text, "keys.toml").unwrap_err();
        for e in &errs {
            outputs.push(format!("{e} {e:?}"));
        }
    }
    for o in &outputs {
        assert!(!o.contains(&token), "token leaked: {o}");
        assert!(!o.contains(&secret), "secret leaked: {o}");
    }
}

fn hash_of(text: &str, n: usize) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix("hash = \""))
        .nth(n)
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}
