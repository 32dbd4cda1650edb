//! The `tollgate keys` library functions: files keep every byte the operator wrote, only hashes
//! are written, tokens returned by `add_key` authenticate, revocation takes effect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use tollgate_auth::{AuthFailure, KeyStore, add_consumer, add_key, list, set_key_enabled};

const NOW: i64 = 1_790_000_000;

const EXISTING: &str = "# Production keys. Do not hand-edit during deploys.\n\
[[consumer]]\n\
name = \"alice\"   # the chatbot team\n\
tenant = \"acme\"\n\
\n\
# bob is paused\n\
[[consumer]]\n\
name = \"bob\"\n\
tenant = \"acme\"\n\
enabled = false"; // no trailing newline on purpose

fn file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("keys.toml");
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn add_key_writes_only_the_hash_and_the_token_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let k = add_key(&p, "alice", &["qwen-*".to_string()], None, Some("ci")).unwrap();
    assert!(k.token.starts_with(&format!("tgk_{}_", &k.id[2..])));
    let secret = k.token.rsplit('_').next().unwrap();
    assert_eq!(secret.len(), 43);

    let text = fs::read_to_string(&p).unwrap();
    assert!(!text.contains(&k.token), "token written to file");
    assert!(!text.contains(secret), "secret written to file");
    assert!(text.contains(&format!("id = \"{}\"", k.id)));
    assert!(text.contains("hash = \"sha256$"));
    // Every existing byte is kept, comments included.
    assert!(text.starts_with(EXISTING), "{text}");

    let store = KeyStore::load(&p).unwrap();
    let a = store.authenticate(k.token.as_bytes(), NOW).unwrap();
    assert_eq!(store.key(a.key).id, k.id);
    assert_eq!(store.consumer(a.consumer).name, "alice");
    assert!(store.key(a.key).models.allows("qwen-7b"));
    assert!(!store.key(a.key).models.allows("llama"));
    assert_eq!(store.key(a.key).note.as_deref(), Some("ci"));
    assert!(store.key(a.key).created.is_some());

    // The Debug of what we hand back never shows the token.
    assert!(!format!("{k:?} {k}").contains(secret));
}

#[cfg(unix)]
#[test]
fn written_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn two_keys_for_one_consumer_get_distinct_ids_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let a = add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    let b = add_key(
        &p,
        "alice",
        &["*".to_string()],
        Some("2030-01-01T01:00:00+01:00"),
        None,
    )
    .unwrap();
    assert_ne!(a.id, b.id);
    let store = KeyStore::load(&p).unwrap();
    assert_eq!(store.keys().len(), 2);
    assert!(store.authenticate(a.token.as_bytes(), NOW).is_ok());
    assert!(store.authenticate(b.token.as_bytes(), NOW).is_ok());
    // Expiry stored normalised to UTC.
    assert_eq!(store.keys()[1].expires, Some(1_893_456_000));
    assert!(
        fs::read_to_string(&p)
            .unwrap()
            .contains("expires = \"2030-01-01T00:00:00Z\"")
    );
}

#[test]
fn add_key_rejects_bad_input_and_leaves_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let all = ["*".to_string()];
    assert!(
        add_key(&p, "carol", &all, None, None)
            .unwrap_err()
            .contains("carol")
    );
    assert!(add_key(&p, "alice", &[], None, None).is_err());
    assert!(add_key(&p, "alice", &["a[b]".to_string()], None, None).is_err());
    assert!(add_key(&p, "alice", &all, Some("tomorrow"), None).is_err());
    assert_eq!(fs::read_to_string(&p).unwrap(), EXISTING);
    // No file, no consumer: add_key does not create one.
    let missing = dir.path().join("none.toml");
    assert!(add_key(&missing, "alice", &all, None, None).is_err());
    assert!(!missing.exists());
}

#[test]
fn add_consumer_creates_then_appends() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.toml");
    add_consumer(&p, "svc", "acme", Some("batch")).unwrap();
    add_consumer(&p, "svc2", "acme", None).unwrap();
    assert!(
        add_consumer(&p, "svc", "acme", None)
            .unwrap_err()
            .contains("already exists")
    );
    assert!(add_consumer(&p, "bad name", "acme", None).is_err());
    let k = add_key(&p, "svc", &["*".to_string()], None, None).unwrap();
    let s = KeyStore::load(&p).unwrap();
    assert_eq!(s.consumers().len(), 2);
    assert_eq!(s.consumers()[0].project, "batch");
    assert_eq!(s.consumers()[1].project, "default");
    assert!(s.authenticate(k.token.as_bytes(), NOW).is_ok());
}

#[test]
fn add_consumer_preserves_existing_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    add_consumer(&p, "carol", "globex", None).unwrap();
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.starts_with(EXISTING));
    let s = KeyStore::load(&p).unwrap();
    assert_eq!(s.consumers()[2].tenant, "globex");
}

#[test]
fn revoke_makes_the_key_revoked_and_keeps_formatting() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let k = add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    let other = add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    // Operator comments on the key's enabled line survive the edit.
    let text = fs::read_to_string(&p).unwrap();
    let commented = text.replacen("enabled = true", "enabled = true   # on-call may flip", 1);
    fs::write(&p, &commented).unwrap();

    set_key_enabled(&p, &k.id, false).unwrap();
    let after = fs::read_to_string(&p).unwrap();
    assert_eq!(
        after,
        commented.replacen("enabled = true   #", "enabled = false   #", 1)
    );
    let s = KeyStore::load(&p).unwrap();
    assert_eq!(
        s.authenticate(k.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
    assert!(s.authenticate(other.token.as_bytes(), NOW).is_ok());

    set_key_enabled(&p, &k.id, true).unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), commented);
    assert!(
        set_key_enabled(&p, "k_ffffffffffff", false)
            .unwrap_err()
            .contains("no key")
    );
}

#[test]
fn revoke_adds_enabled_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let k = add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    let text = fs::read_to_string(&p)
        .unwrap()
        .replace("enabled = true\n", "");
    fs::write(&p, &text).unwrap();
    set_key_enabled(&p, &k.id, false).unwrap();
    let s = KeyStore::load(&p).unwrap();
    assert_eq!(
        s.authenticate(k.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
}

#[test]
fn list_shows_keys_but_never_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let a = add_key(&p, "alice", &["qwen-*".into(), "llama".into()], None, None).unwrap();
    let b = add_key(&p, "bob", &["*".into()], Some("2001-01-01T00:00:00Z"), None).unwrap();
    let out = list(&p).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for h in ["ID", "CONSUMER", "TENANT", "MODELS", "ENABLED", "EXPIRES"] {
        assert!(lines[0].contains(h), "{out}");
    }
    assert!(
        lines[1].starts_with(&a.id) && lines[1].contains("qwen-*,llama"),
        "{out}"
    );
    assert!(
        lines[1].contains("yes") && lines[1].contains("never"),
        "{out}"
    );
    assert!(lines[2].contains("no (consumer)"), "{out}");
    assert!(lines[2].contains("2001-01-01T00:00:00Z (expired)"), "{out}");
    assert!(!out.contains("sha256"), "{out}");
    assert!(!out.contains(&a.token) && !out.contains(&b.token));
}

#[test]
fn edits_refuse_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = format!("{EXISTING}\n[[key]]\nid = \"k_000000000000\"\n");
    let p = file(&dir, &broken);
    let e = add_key(&p, "alice", &["*".to_string()], None, None).unwrap_err();
    assert!(
        e.contains("keys.toml:11:1: key[0]: missing field `consumer`"),
        "{e}"
    );
    assert!(add_consumer(&p, "zed", "acme", None).is_err());
    assert!(set_key_enabled(&p, "k_000000000000", false).is_err());
    assert!(list(&p).is_err());
    assert_eq!(fs::read_to_string(&p).unwrap(), broken);
}

#[test]
fn consumer_appended_after_keys_stays_valid_and_editable() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, EXISTING);
    let a = add_key(&p, "alice", &["*".to_string()], None, None).unwrap();
    add_consumer(&p, "carol", "globex", None).unwrap();
    let c = add_key(&p, "carol", &["*".to_string()], None, None).unwrap();
    let before = fs::read_to_string(&p).unwrap();
    set_key_enabled(&p, &a.id, false).unwrap();
    let after = fs::read_to_string(&p).unwrap();
    // Only the one value changed: interleaved [[consumer]]/[[key]] tables are not reordered.
    assert_eq!(
        after,
        before.replacen("enabled = true", "enabled = false", 1)
    );
    let s = KeyStore::load(&p).unwrap();
    assert_eq!(
        s.authenticate(a.token.as_bytes(), NOW),
        Err(AuthFailure::Revoked)
    );
    let who = s.authenticate(c.token.as_bytes(), NOW).unwrap();
    assert_eq!(s.consumer(who.consumer).name, "carol");
}
