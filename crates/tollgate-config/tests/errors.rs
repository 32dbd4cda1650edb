//! `tollgate check` must name the file, line and field of every config error.

use std::path::Path;

fn errs(text: &str) -> Vec<String> {
    match tollgate_config::parse_str(text, "t.toml", Path::new(".")) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

const GOOD: &str = r#"
workers = 2
[listen]
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[backends]]
name = "a"
url = "http://127.0.0.1:8000"
kind = "vllm"
[[backends]]
name = "b"
url = "http://127.0.0.1:8001"
kind = "mindie"
[[models]]
name = "llama"
backends = ["a", "b"]
"#;

#[test]
fn good_config_compiles_with_defaults() {
    let c = tollgate_config::parse_str(GOOD, "t.toml", Path::new(".")).unwrap();
    assert_eq!(c.workers, 2);
    assert_eq!(c.backends.len(), 2);
    let m = c.model("llama").unwrap().1;
    let pool = &c.pools[m.routing.default.targets[0].0];
    let members: Vec<usize> = pool.members().map(|m| m.backend).collect();
    assert_eq!(members, vec![0, 1]);
    assert_eq!(pool.name, "model:llama");
    // MindIE's management and metrics listeners default to the next two ports.
    assert_eq!(c.backends[1].management.as_ref().unwrap().port, 8002);
    assert_eq!(c.backends[1].metrics.as_ref().unwrap().port, 8003);
    assert!(c.backends[0].management.is_none());
    assert_eq!(c.limits.max_body_bytes, 16 << 20);
    assert_eq!(c.limits.max_request_line_bytes, 8192);
    assert_eq!(c.upstream.retries, 1);
    assert!(c.model("nope").is_none());
}

#[test]
fn unknown_field_names_line_and_field() {
    let text = GOOD.replace("kind = \"mindie\"", "kind = \"mindie\"\nkindd = 3");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.toml:14:1: backends[1].kindd: unknown field `kindd`"),
        "{}",
        e[0]
    );
}

#[test]
fn unknown_backend_reference_names_model_entry() {
    let text = GOOD.replace("backends = [\"a\", \"b\"]", "backends = [\"a\", \"zz\"]");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.toml:16:"), "{}", e[0]);
    assert!(
        e[0].contains("models[0].backends[1]: unknown backend \"zz\""),
        "{}",
        e[0]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = GOOD
        .replace("kind = \"vllm\"", "kind = \"vlm\"")
        .replace("http://127.0.0.1:8001", "ftp://x")
        .replace("workers = 2", "workers = 2\n[limits]\nmax_body_bytes = 0");
    let e = errs(&text);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e.iter()
            .any(|s| s.contains("backends[0].kind: unknown backend kind \"vlm\""))
    );
    assert!(e.iter().any(|s| s.contains("backends[1].url")));
    assert!(
        e.iter()
            .any(|s| s.contains("limits.max_body_bytes: must be between 1"))
    );
}

#[test]
fn duplicate_names_and_missing_openai_key_are_rejected() {
    let text = GOOD.replace("name = \"b\"", "name = \"a\"");
    assert!(
        errs(&text)
            .iter()
            .any(|s| s.contains("duplicate backend name"))
    );
    let text = GOOD.replace("kind = \"mindie\"", "kind = \"openai\"");
    assert!(
        errs(&text)
            .iter()
            .any(|s| s.contains("backends[1].api_key"))
    );
    let text = GOOD.replace(
        "kind = \"mindie\"",
        "kind = \"openai\"\napi_key_env = \"TOLLGATE_TEST_UNSET_VAR_X\"",
    );
    assert!(
        errs(&text)
            .iter()
            .any(|s| s.contains("TOLLGATE_TEST_UNSET_VAR_X is not set"))
    );
}

#[test]
fn https_needs_cert_and_key() {
    let text = GOOD.replace(
        "admin = \"127.0.0.1:0\"",
        "admin = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"",
    );
    assert!(
        errs(&text)
            .iter()
            .any(|s| s.contains("listen.https: an HTTPS listener needs"))
    );
}

#[test]
fn syntax_error_is_located() {
    let e = errs("workers = \n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("t.toml:1:"), "{}", e[0]);
}

#[test]
fn api_key_is_redacted_in_debug() {
    let text = GOOD.replace(
        "kind = \"mindie\"",
        "kind = \"openai\"\napi_key = \"sk-canary-1234567890\"",
    );
    let c = tollgate_config::parse_str(&text, "t.toml", Path::new(".")).unwrap();
    let dbg = format!("{:?}", c);
    assert!(!dbg.contains("sk-canary"), "{dbg}");
}
