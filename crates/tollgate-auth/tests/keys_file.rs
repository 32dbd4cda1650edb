//! Keys-file validation: every error names file, line, column and field, and all validation
//! errors come back together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_auth::{KeyStore, KeysError};

const H1: &str = "sha256$0123456789abcdef0123456789abcdef$0000000000000000000000000000000000000000000000000000000000000000";

fn good() -> String {
    format!(
        r#"# consumers
[[consumer]]
name = "alice"
tenant = "acme"
project = "chatbot"
allow_ips = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
deny_ips = ["10.9.0.0/16"]

[[consumer]]
name = "bob"
tenant = "acme"

[[key]]
id = "k_3f9a2c1d8e7b"
consumer = "alice"
hash = "{H1}"
models = ["llama-3-8b", "qwen-*"]
enabled = true
expires = "2027-01-01T00:00:00Z"
created = "2026-11-22T10:00:00Z"
note = "ci pipeline"

[[key]]
id = "k_000000000001"
consumer = "bob"
hash = "{H1}"
models = ["*"]
"#
    )
}

fn errs(text: &str) -> Vec<KeysError> {
    match KeyStore::parse(text, "keys.toml") {
        Ok(_) => vec![],
        Err(e) => e,
    }
}

/// Exactly one error, at `line`, for `field`, whose message contains `msg`.
fn one(text: &str, line: usize, field: &str, msg: &str) {
    let e = errs(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = &e[0];
    assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
    assert!(e.message.contains(msg), "{e}");
    assert!(e.col > 0, "{e}");
    assert_eq!(e.file, "keys.toml");
    assert!(
        e.to_string()
            .starts_with(&format!("keys.toml:{line}:{}: {field}: ", e.col)),
        "{e}"
    );
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn fixture_line_numbers() {
    // The line numbers asserted below are those of `good()`; keep them honest.
    let t = good();
    assert_eq!(line_of(&t, "name = \"bob\""), 10);
    assert_eq!(line_of(&t, "k_3f9a2c1d8e7b"), 14);
    assert_eq!(line_of(&t, "hash ="), 16);
    assert_eq!(line_of(&t, "expires ="), 19);
    assert_eq!(line_of(&t, "k_000000000001"), 24);
    assert_eq!(line_of(&t, "models = [\"*\"]"), 27);
}

#[test]
fn good_file_compiles_with_defaults() {
    let s = KeyStore::parse(&good(), "keys.toml").unwrap();
    assert_eq!(s.consumers().len(), 2);
    assert_eq!(s.keys().len(), 2);
    let alice = &s.consumers()[0];
    assert_eq!(
        (alice.tenant.as_str(), alice.project.as_str()),
        ("acme", "chatbot")
    );
    assert!(alice.enabled && !alice.ips.is_empty());
    assert!(alice.ips.allows("10.1.2.3".parse().unwrap()));
    assert!(!alice.ips.allows("10.9.2.3".parse().unwrap()));
    assert_eq!(s.consumers()[1].project, "default");
    let k = &s.keys()[0];
    assert_eq!(k.expires, Some(1_798_761_600));
    assert_eq!(k.created, Some(1_795_341_600));
    assert_eq!(k.note.as_deref(), Some("ci pipeline"));
    assert!(k.models.allows("qwen-7b") && !k.models.allows("mistral"));
    assert_eq!(s.keys()[1].consumer, 1);
    assert!(s.keys()[1].models.allows("anything"));
}

#[test]
fn empty_text_is_an_empty_store() {
    let s = KeyStore::parse("# nothing yet\n", "keys.toml").unwrap();
    assert!(s.keys().is_empty() && s.consumers().is_empty());
}

#[test]
fn unknown_field_names_line_and_field() {
    let t = good().replace("note = \"ci pipeline\"", "note = \"x\"\nnotes = 1");
    one(
        &t,
        line_of(&t, "notes ="),
        "key[0].notes",
        "unknown field `notes`",
    );
}

#[test]
fn missing_required_field_is_reported() {
    let t = good().replace("tenant = \"acme\"\n\n[[key]]", "\n[[key]]");
    let e = errs(&t);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].message.contains("missing field `tenant`"), "{}", e[0]);
    assert!(e[0].field.starts_with("consumer[1]"), "{}", e[0]);
}

#[test]
fn duplicate_consumer_name() {
    let t = good()
        .replace("name = \"bob\"", "name = \"alice\"")
        .replace("consumer = \"bob\"", "consumer = \"alice\"");
    one(
        &t,
        10,
        "consumer[1].name",
        "duplicate consumer name \"alice\" (first defined at line 3)",
    );
}

#[test]
fn duplicate_key_id() {
    let t = good().replace("k_000000000001", "k_3f9a2c1d8e7b");
    one(
        &t,
        24,
        "key[1].id",
        "duplicate key id \"k_3f9a2c1d8e7b\" (first defined at line 14)",
    );
}

#[test]
fn key_naming_unknown_consumer() {
    let t = good().replace("consumer = \"bob\"", "consumer = \"carol\"");
    one(&t, 25, "key[1].consumer", "unknown consumer \"carol\"");
}

#[test]
fn malformed_hash() {
    for bad in [
        "sha256$zz",
        "md5$0123456789abcdef0123456789abcdef$00",
        "sha256$0123$0000000000000000000000000000000000000000000000000000000000000000",
        "",
    ] {
        let t = good().replacen(H1, bad, 1);
        one(&t, 16, "key[0].hash", "hash");
        // The bad value is never echoed.
        if !bad.is_empty() {
            assert!(!errs(&t)[0].to_string().contains(bad));
        }
    }
}

#[test]
fn bad_key_id() {
    for bad in [
        "k_3F9A2C1D8E7B",
        "3f9a2c1d8e7b",
        "k_3f9a",
        "k_3f9a2c1d8e7bb",
    ] {
        let t = good().replace("k_3f9a2c1d8e7b", bad);
        one(&t, 14, "key[0].id", "lowercase hex");
    }
}

#[test]
fn bad_cidr() {
    let t = good().replace("\"2001:db8::/32\"", "\"2001:db8::/129\"");
    one(&t, 6, "consumer[0].allow_ips[1]", "bad IP rule");
    let t = good().replace("\"10.9.0.0/16\"", "\"10.9.0.0/16x\"");
    one(&t, 7, "consumer[0].deny_ips[0]", "bad IP rule");
}

#[test]
fn bad_glob() {
    let t = good().replace("\"qwen-*\"", "\"qwen-[0-9]*\"");
    one(&t, 17, "key[0].models[1]", "only `*` and `?` are wildcards");
    let t = good().replace("\"qwen-*\"", "\"\"");
    one(&t, 17, "key[0].models[1]", "empty model pattern");
}

#[test]
fn bad_timestamp() {
    let t = good().replace("2027-01-01T00:00:00Z", "2027-13-01");
    one(&t, 19, "key[0].expires", "RFC 3339");
    let t = good().replace("2026-11-22T10:00:00Z", "yesterday");
    one(&t, 20, "key[0].created", "RFC 3339");
}

#[test]
fn empty_models_list() {
    let t = good().replace("models = [\"*\"]", "models = []");
    one(&t, 27, "key[1].models", "models must not be empty");
}

#[test]
fn bad_names() {
    let t = good().replace("tenant = \"acme\"\nproject", "tenant = \"ac me\"\nproject");
    one(&t, 4, "consumer[0].tenant", "outside [A-Za-z0-9._-]");
    let t = good().replace("chatbot", &"x".repeat(65));
    one(&t, 5, "consumer[0].project", "1 to 64");
}

#[test]
fn every_error_is_reported_together() {
    let t = good()
        .replace("name = \"bob\"", "name = \"alice\"")
        .replace("\"10.9.0.0/16\"", "\"nope\"")
        .replacen(H1, "sha256$bad", 1)
        .replace("\"qwen-*\"", "\"qwen-{a,b}\"")
        .replace("2027-01-01T00:00:00Z", "soon")
        .replace("models = [\"*\"]", "models = []")
        .replace("k_000000000001", "k_3f9a2c1d8e7b")
        .replace("consumer = \"bob\"", "consumer = \"carol\"");
    let e = errs(&t);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (7, "consumer[0].deny_ips[0]"),
            (10, "consumer[1].name"),
            (16, "key[0].hash"),
            (17, "key[0].models[1]"),
            (19, "key[0].expires"),
            (24, "key[1].id"),
            (25, "key[1].consumer"),
            (27, "key[1].models"),
        ],
        "{e:#?}"
    );
}

#[test]
fn errors_come_back_in_file_order_with_duplicates() {
    let t = good()
        .replace("k_000000000001", "k_3f9a2c1d8e7b")
        .replace("consumer = \"bob\"", "consumer = \"carol\"");
    let got: Vec<(usize, String)> = errs(&t).into_iter().map(|e| (e.line, e.field)).collect();
    assert_eq!(
        got,
        [
            (24, "key[1].id".to_string()),
            (25, "key[1].consumer".to_string())
        ]
    );
}

#[test]
fn load_reports_unreadable_file() {
    let e = KeyStore::load(std::path::Path::new("/nonexistent/keys.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 0);
    assert!(
        e[0].to_string()
            .starts_with("/nonexistent/keys.toml: cannot read keys file")
    );
}
