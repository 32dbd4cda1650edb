//! Fuzz the SSE decoder: a stream cut at a fuzzer-chosen point (and in 1-byte reads) must decode
//! exactly like the whole stream, and never panic. Input layout: see
//! `tollgate_sse::check::fuzz_one` (2 bytes cut, 1 byte frame limit, then the stream).
//! Corpus: `fuzz/corpus/sse_decoder/`, replayed on stable by `crates/tollgate-sse/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(mismatch) = tollgate_sse::check::fuzz_one(data) {
        panic!("{mismatch}");
    }
});
