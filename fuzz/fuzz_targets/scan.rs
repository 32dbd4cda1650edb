//! Fuzz the content scanner (`tollgate-scan`): normaliser map invariants, block scans, stream
//! masking versus whole-text masking, and the JSON layers (which must never panic).
//!
//! The input is the text itself (invalid UTF-8 replaced by U+FFFD); cut points for the stream
//! splits come from a small PRNG seeded with the input's first 8 bytes and its length, so every
//! corpus file is readable text. Checks, for one input:
//! * (a) `normalize`: `original_len` is the text length, an identity result equals the text, the
//!   map is monotone, every `orig_offset`/`original_span` is in bounds and on char boundaries,
//!   `prev_boundary <= n <= next_boundary`, normalising is idempotent and piecewise pushing
//!   gives the same text and map;
//! * (b) `scan_text` with a fixed inline rule set (regexes with validators, a case-insensitive
//!   whole-word list, a block list and an audit regex): hit spans in bounds and on char
//!   boundaries;
//! * (c) for three splits (random cuts, one cut, and every char when the text is short), the
//!   streamed output of `TextStream::push` + `finish` equals `scan_text`'s masked text, or both
//!   are blocked;
//! * (d) the raw input as a stream chunk (`StreamScanner::on_chunk` + `on_done`) and as request
//!   and response bodies: no panic.
//!
//! Corpus: `fuzz/corpus/scan/`, replayed on stable by `crates/tollgate-scan/tests/fuzz_corpus.rs`
//! (which includes the same checks from `scan_checks.rs`).
#![no_main]

mod scan_checks;

use std::cell::RefCell;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scan_checks::{check, rules};
use tollgate_scan::Scanner;

thread_local! {
    static SCANNER: RefCell<Option<Scanner>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    SCANNER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let sc = slot.get_or_insert_with(|| match Scanner::new(Arc::clone(rules())) {
            Ok(s) => s,
            Err(e) => panic!("scanner: {e}"),
        });
        if let Err(violation) = check(sc, data) {
            panic!(
                "invariant violated: {violation}\n  input: {:?}",
                String::from_utf8_lossy(data)
            );
        }
    });
});
