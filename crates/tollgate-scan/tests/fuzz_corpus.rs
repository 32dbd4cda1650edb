//! Replays the cargo-fuzz seed corpus of `fuzz/fuzz_targets/scan.rs` (and any saved crashers)
//! under stable `cargo test`.
//!
//! Runs the fuzz target's own checks (`fuzz/fuzz_targets/scan_checks.rs`, included here):
//! normaliser map invariants, `scan_text` hit spans, streamed masking versus whole-text masking
//! for the input's derived splits plus every single cut, and panic-freedom of the JSON layers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/fuzz_targets/scan_checks.rs"]
mod scan_checks;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use scan_checks::{check, rules, stream_mask};
use tollgate_scan::{Direction, Scanner};
#[test]
fn fuzz_corpus_scan_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/scan");
    let mut sc = Scanner::new(Arc::clone(rules())).unwrap();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let mut files = 0;
    for path in &entries {
        let input = fs::read(path).unwrap();
        files += 1;
        if let Err(v) = check(&mut sc, &input) {
            panic!("{}: {v}", path.display());
        }
        // Every single cut point of the text, too.
        let text = String::from_utf8_lossy(&input);
        let whole = sc.scan_text(Direction::Response, &text);
        let expected = whole.masked.as_deref().unwrap_or(&text);
        for (cut, _) in text.char_indices() {
            let got = stream_mask(&mut sc, &[&text[..cut], &text[cut..]]);
            match (whole.blocked, &got) {
                (Some(_), Err(_)) => {}
                (None, Ok(out)) if out == expected => {}
                _ => panic!(
                    "{} cut {cut}: whole blocked {:?} text {expected:?}, stream {got:?}",
                    path.display(),
                    whole.blocked
                ),
            }
        }
    }
    assert!(
        files >= 20,
        "expected the seed corpus in {}, found {files} files",
        dir.display()
    );
}
