//! `[auth]`, `[quota]` and `[ledger]` errors name the file, line, column and field (the keys
//! file's own errors name the keys file), every error in a file is reported, and a valid
//! governance section compiles to exactly what its text says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate_config::ConfigError;
use tollgate_quota::{Dim, Kind, Overrun, TokenKind};

const BASE: &str = r#"
workers = 2
[listen]
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[backends]]
name = "a"
url = "http://127.0.0.1:8000"
kind = "vllm"
[[models]]
name = "m"
backends = ["a"]
"#;

fn compile(text: &str, base_dir: &Path) -> Result<tollgate_config::Config, Vec<ConfigError>> {
    tollgate_config::parse_str(text, "t.toml", base_dir)
}

fn errors(text: &str) -> Vec<ConfigError> {
    match compile(text, Path::new(".")) {
        Ok(_) => panic!("config compiled, expected errors:\n{text}"),
        Err(e) => e,
    }
}

/// 1-based (line, column) of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

/// `e` is in `file`, at the first occurrence of `needle` in `text`, names `field`, and its
/// message contains `msg`; its display form is `file:line:col: field: message`.
fn check(e: &ConfigError, file: &str, text: &str, needle: &str, field: &str, msg: &str) {
    let (line, col) = locate(text, needle);
    assert_eq!(
        (e.file.as_str(), e.line, e.col, e.field.as_str()),
        (file, line, col, field),
        "{e}"
    );
    assert!(e.message.contains(msg), "{e}: message lacks {msg:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("{file}:{line}:{col}: {field}: ")),
        "{e}"
    );
}

/// A scratch directory for keys files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "tollgate-config-gov-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A valid keys file: consumer alice of tenant acme with one key; returns (path, key id).
    fn keys(&self) -> (PathBuf, String) {
        let path = self.0.join("keys.toml");
        tollgate_auth::add_consumer(&path, "alice", "acme", None).unwrap();
        let k = tollgate_auth::add_key(&path, "alice", &["*".into()], None, None).unwrap();
        (path, k.id)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `[[quota.limits]]` table.
fn limit(body: &str) -> String {
    format!("[[quota.limits]]\n{body}\n")
}

#[test]
fn each_governance_mistake_is_one_error_naming_line_column_and_field() {
    // (extra TOML after BASE, text the error points at, field, message fragment)
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            limit("name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\"\nburst = 3"),
            "burst",
            "quota.limits[0].burst",
            "unknown field `burst`",
        ),
        (
            limit("name = \"a\"\nkind = \"tokenz\"\nlimit = 1\nwindow = \"1m\""),
            "\"tokenz\"",
            "quota.limits[0].kind",
            "unknown limit kind \"tokenz\"",
        ),
        (
            limit("name = \"a\"\nkind = \"tokens\"\ntokens = \"x\"\nlimit = 1\nwindow = \"1m\""),
            "\"x\"",
            "quota.limits[0].tokens",
            "unknown token type \"x\"",
        ),
        (
            limit(
                "name = \"a\"\nkind = \"tokens\"\nper = [\"tenant\", \"tenant\" ]\nlimit = 1\nwindow = \"1m\"",
            ),
            "\"tenant\" ]",
            "quota.limits[0].per[1]",
            "listed twice",
        ),
        (
            limit("name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"5x\""),
            "\"5x\"",
            "quota.limits[0].window",
            "",
        ),
        (
            limit("name = \"a\"\nkind = \"requests\"\nlimit = 1"),
            "\"requests\"",
            "quota.limits[0].window",
            "need a window",
        ),
        (
            limit("name = \"a\"\nkind = \"concurrency\"\nlimit = 1\nwindow = \"1m\""),
            "\"1m\"",
            "quota.limits[0].window",
            "a concurrency limit has no window",
        ),
        (
            limit(
                "name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\"\ntimezone = \"Mars/Base\"",
            ),
            "\"Mars/Base\"",
            "quota.limits[0].timezone",
            "unknown time zone \"Mars/Base\"",
        ),
        (
            limit(
                "name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\"\nstream_overrun = \"cut\"",
            ),
            "\"cut\"",
            "quota.limits[0].stream_overrun",
            "only meaningful with kind = \"tokens\"",
        ),
        (
            limit("name = \"a\"\nkind = \"requests\"\nlimit = 0\nwindow = \"1m\""),
            "0\nwindow",
            "quota.limits[0].limit",
            "must be at least 1",
        ),
        (
            format!(
                "{}{}",
                limit("name = \"same\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\""),
                limit("name = \"same\" \nkind = \"tokens\"\nlimit = 1\nwindow = \"1m\"")
            ),
            "\"same\" \n",
            "quota.limits[1].name",
            "duplicate limit name \"same\"",
        ),
        (
            "[quota]\nlease_tokens = 100\n".to_string(),
            "100",
            "quota.lease_tokens",
            "only meaningful with quota.redis_url",
        ),
        (
            "[quota]\nredis_url = \"http://x\"\n".to_string(),
            "\"http://x\"",
            "quota.redis_url",
            "must be a redis://",
        ),
        (
            "[quota]\nredis_url = \"redis://127.0.0.1:6379\"\nfallback_share = 2.0\n".to_string(),
            "2.0",
            "quota.fallback_share",
            "between 0.0 and 1.0",
        ),
        (
            "[ledger]\nfsync = true\n".to_string(),
            "true",
            "ledger.fsync",
            "only meaningful with ledger.dir",
        ),
        (
            "[auth]\nallow_ips = [\"10.0.0.0/33\"]\n".to_string(),
            "\"10.0.0.0/33\"",
            "auth.allow_ips[0]",
            "",
        ),
        (
            "[auth]\nkeys_file = \"/nonexistent/tollgate-test/keys.toml\"\n".to_string(),
            "\"/nonexistent",
            "auth.keys_file",
            "cannot read keys file",
        ),
    ];
    for (extra, needle, field, msg) in &cases {
        let text = format!("{BASE}{extra}");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{extra}\n{e:#?}");
        check(&e[0], "t.toml", &text, needle, field, msg);
    }
}

#[test]
fn a_bad_schedule_entry_reports_each_bad_field() {
    let text = format!(
        "{BASE}{}[[quota.limits.schedule]]\ndays = \"funday\"\nfrom = \"25:00\"\nto = \"18:00\"\nlimit = 5\n",
        limit("name = \"a\"\nkind = \"requests\"\nlimit = 10\nwindow = \"1m\"")
    );
    let mut e = errors(&text);
    e.sort_by_key(|e| e.line);
    assert_eq!(e.len(), 2, "{e:#?}");
    check(
        &e[0],
        "t.toml",
        &text,
        "\"funday\"",
        "quota.limits[0].schedule[0].days",
        "",
    );
    check(
        &e[1],
        "t.toml",
        &text,
        "\"25:00\"",
        "quota.limits[0].schedule[0].from",
        "",
    );
}

#[test]
fn an_error_in_the_keys_file_names_the_keys_file_its_line_and_field() {
    let dir = Scratch::new("badkeys");
    let (path, _) = dir.keys();
    // A second key whose consumer does not exist.
    let (k, hash) = tollgate_auth::generate_key().unwrap();
    let mut keys = std::fs::read_to_string(&path).unwrap();
    keys.push_str(&format!(
        "\n[[key]]\nid = \"{}\"\nconsumer = \"nobody\"\nhash = \"{hash}\"\nmodels = [\"*\"]\n",
        k.id
    ));
    std::fs::write(&path, &keys).unwrap();
    let text = format!("{BASE}[auth]\nkeys_file = \"{}\"\n", path.display());
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    check(
        &e[0],
        &path.display().to_string(),
        &keys,
        "\"nobody\"",
        "key[1].consumer",
        "unknown consumer \"nobody\"",
    );
}

#[test]
fn a_limit_naming_a_consumer_tenant_or_key_missing_from_the_keys_file_is_an_error() {
    let dir = Scratch::new("refs");
    let (path, id) = dir.keys();
    // The real names compile.
    let ok = format!(
        "{BASE}[auth]\nkeys_file = \"{}\"\n{}",
        path.display(),
        limit(&format!(
            "name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\"\nconsumers = [\"alice\"]\ntenants = [\"acme\"]\nkeys = [\"{id}\"]"
        ))
    );
    compile(&ok, Path::new(".")).unwrap_or_else(|e| panic!("{e:#?}"));

    let text = format!(
        "{BASE}[auth]\nkeys_file = \"{}\"\n{}",
        path.display(),
        limit(
            "name = \"a\"\nkind = \"requests\"\nlimit = 1\nwindow = \"1m\"\nconsumers = [\"alise\"]\ntenants = [\"acne\"]\nkeys = [\"k_000000000000\"]"
        )
    );
    let mut e = errors(&text);
    e.sort_by_key(|e| e.line);
    assert_eq!(e.len(), 3, "{e:#?}");
    check(
        &e[0],
        "t.toml",
        &text,
        "[\"alise\"]",
        "quota.limits[0].consumers",
        "no consumer \"alise\" in the keys file",
    );
    check(
        &e[1],
        "t.toml",
        &text,
        "[\"acne\"]",
        "quota.limits[0].tenants",
        "no consumer of tenant \"acne\" in the keys file",
    );
    check(
        &e[2],
        "t.toml",
        &text,
        "[\"k_000000000000\"]",
        "quota.limits[0].keys",
        "no key id \"k_000000000000\" in the keys file",
    );
}

#[test]
fn every_governance_error_in_one_file_is_reported() {
    let text = format!(
        "{BASE}[auth]\nallow_ips = [\"10.0.0.0/33\"]\n[quota]\nredis_url = \"http://x\"\n[ledger]\nfsync = true\n{}{}",
        limit("name = \"a\"\nkind = \"tokenz\"\nlimit = 1\nwindow = \"1m\""),
        limit("name = \"b\"\nkind = \"requests\"\nlimit = 0\nwindow = \"5x\"")
    );
    let e = errors(&text);
    let expect = [
        ("\"10.0.0.0/33\"", "auth.allow_ips[0]"),
        ("\"http://x\"", "quota.redis_url"),
        ("true", "ledger.fsync"),
        ("\"tokenz\"", "quota.limits[0].kind"),
        ("0\nwindow", "quota.limits[1].limit"),
        ("\"5x\"", "quota.limits[1].window"),
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for (needle, field) in expect {
        let found = e
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error for {field}: {e:#?}"));
        check(found, "t.toml", &text, needle, field, "");
    }
}

#[test]
fn a_full_governance_section_compiles_to_what_the_text_says() {
    let dir = Scratch::new("full");
    let (keys, id) = dir.keys();
    let text = format!(
        r#"{BASE}
[auth]
keys_file = "{keys}"
allow_ips = ["127.0.0.0/8", "::1"]
deny_ips = ["127.0.0.2/32"]

[quota]
default_max_tokens = 256
redis_url = "redis://127.0.0.1:6379/2"
redis_prefix = "tg-test"
lease_tokens = 500
lease_requests = 8
redis_timeout_ms = 150
fallback_share = 0.25

[[quota.limits]]
name = "tokens-per-tenant"
kind = "tokens"
tokens = "completion"
per = ["tenant", "model"]
limit = 100000
window = "1h"
timezone = "Europe/Berlin"
stream_overrun = "cut"
tenants = ["acme"]
models = ["m*"]

[[quota.limits.schedule]]
days = "mon-fri"
from = "09:00"
to = "18:00"
limit = 20000

[[quota.limits]]
name = "rpm"
kind = "requests"
per = ["key"]
limit = 60
window = "1m"
keys = ["{id}"]
shared = false

[[quota.limits]]
name = "in-flight"
kind = "concurrency"
per = ["consumer"]
limit = 4
consumers = ["alice"]

[ledger]
dir = "usage"
commit_interval_ms = 50
fsync = true
"#,
        keys = keys.display()
    );
    let c = compile(&text, &dir.0).unwrap_or_else(|e| panic!("{e:#?}"));
    let g = &c.governance;
    assert!(g.auth_required());
    assert_eq!(g.keys_file.as_deref(), Some(keys.as_path()));
    assert_eq!(g.keys.consumers().len(), 1);
    assert_eq!(g.keys.keys().len(), 1);
    assert!(g.ips.allows("127.0.0.1".parse().unwrap()));
    assert!(!g.ips.allows("127.0.0.2".parse().unwrap()));
    assert!(!g.ips.allows("10.0.0.1".parse().unwrap()));
    assert_eq!(g.default_max_tokens, 256);

    let cl = g.cluster.as_ref().unwrap();
    assert_eq!(cl.url, "redis://127.0.0.1:6379/2");
    assert_eq!(cl.prefix, "tg-test");
    assert_eq!((cl.lease_tokens, cl.lease_requests), (500, 8));
    assert_eq!(cl.timeout, Duration::from_millis(150));
    assert_eq!(cl.fallback_share, 0.25);
    // The Redis URL (it may carry a password) is not in the Debug form.
    assert!(!format!("{c:?}").contains("6379"));

    let rules = g.limits.rules();
    assert_eq!(rules.len(), 3);
    let t = &rules[0];
    assert_eq!(t.name, "tokens-per-tenant");
    assert!(matches!(t.kind, Kind::Tokens(TokenKind::Completion)));
    assert_eq!(t.per, vec![Dim::Tenant, Dim::Model]);
    assert_eq!(t.limit, 100_000);
    assert_eq!(t.window, Duration::from_secs(3600));
    assert_eq!(t.tz.iana_name(), Some("Europe/Berlin"));
    assert!(matches!(t.stream_overrun, Overrun::Cut));
    assert!(t.shared);
    assert_eq!(t.filter.tenants, vec!["acme".to_string()]);
    assert_eq!(t.filter.models, vec!["m*".to_string()]);
    assert_eq!(t.schedule.len(), 1);
    let s = &t.schedule[0];
    assert_eq!(s.days, [true, true, true, true, true, false, false]);
    assert_eq!((s.from_min, s.to_min, s.limit), (9 * 60, 18 * 60, 20_000));

    let r = &rules[1];
    assert_eq!(r.name, "rpm");
    assert!(matches!(r.kind, Kind::Requests));
    assert_eq!(r.per, vec![Dim::Key]);
    assert_eq!((r.limit, r.window), (60, Duration::from_secs(60)));
    assert_eq!(r.tz.iana_name(), Some("UTC"));
    assert!(!r.shared);
    assert_eq!(r.filter.keys, vec![id]);

    let n = &rules[2];
    assert!(matches!(n.kind, Kind::Concurrency));
    assert_eq!((n.per.as_slice(), n.limit), ([Dim::Consumer].as_slice(), 4));
    assert!(n.schedule.is_empty());

    let l = g.ledger.as_ref().unwrap();
    assert_eq!(l.dir, dir.0.join("usage"));
    assert_eq!(l.commit_interval, Duration::from_millis(50));
    assert!(l.fsync);
}

#[test]
fn governance_defaults_without_the_optional_settings() {
    let c = compile(
        &format!(
            "{BASE}[ledger]\ndir = \"/tmp/x\"\n{}",
            limit("name = \"t\"\nkind = \"tokens\"\nlimit = 10\nwindow = \"1d\"")
        ),
        Path::new("."),
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let g = &c.governance;
    assert!(!g.auth_required());
    assert!(g.cluster.is_none());
    assert_eq!(g.default_max_tokens, tollgate_config::DEFAULT_MAX_TOKENS);
    let t = &g.limits.rules()[0];
    assert!(matches!(t.kind, Kind::Tokens(TokenKind::Total)));
    assert!(t.per.is_empty() && t.shared);
    assert!(matches!(t.stream_overrun, Overrun::Allow));
    assert_eq!(t.window, Duration::from_secs(86_400));
    let l = g.ledger.as_ref().unwrap();
    assert_eq!(
        l.commit_interval,
        Duration::from_millis(tollgate_config::DEFAULT_COMMIT_INTERVAL_MS)
    );
    assert!(!l.fsync);
}
