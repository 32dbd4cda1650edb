//! Replays the cargo-fuzz seed corpus (and any saved crashers) under stable `cargo test`.
//!
//! Runs the same property as `fuzz/fuzz_targets/sse_decoder.rs`, for every file and a spread of
//! cut points and frame limits, so the corpus is a regression suite without nightly.

use std::fs;
use std::path::Path;

use tollgate_sse::check::split_matches_whole;

#[test]
fn fuzz_corpus_split_matches_whole() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sse_decoder");
    let mut files = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let input = fs::read(&path).unwrap();
        files += 1;
        // Every single cut, all 1-byte reads, and the fuzzer's own encoding of the input.
        for max in [1 << 20, 64, 16, 3] {
            for cut in 0..=input.len() {
                let result = split_matches_whole(&input, &[cut], max);
                assert_eq!(result, Ok(()), "{} cut {cut} max {max}", path.display());
            }
            let every: Vec<usize> = (0..input.len()).collect();
            assert_eq!(
                split_matches_whole(&input, &every, max),
                Ok(()),
                "{}",
                path.display()
            );
        }
        assert_eq!(
            tollgate_sse::check::fuzz_one(&input),
            Ok(()),
            "{}",
            path.display()
        );
    }
    assert!(
        files >= 10,
        "expected the seed corpus in {}, found {files} files",
        dir.display()
    );
}
