//! Replays the cargo-fuzz seed corpus (and any crashers added to it) under `cargo test`, so the
//! fuzz invariants are checked on every CI run without nightly or libFuzzer.

use std::path::PathBuf;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request_head");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 20,
        "seed corpus went missing: {}",
        entries.len()
    );
    for path in entries {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if let Err(v) = tollgate_http::invariants::check_request_head(&data) {
            panic!("{}: {v}", path.display());
        }
    }
}
