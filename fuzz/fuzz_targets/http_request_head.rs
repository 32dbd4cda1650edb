//! Fuzz the request-head parser, the chunked decoder behind it, and the response-head parser.
//!
//! The first two input bytes pick a split point; the checks (shared with the corpus-replay test
//! in `crates/tollgate-http/tests/fuzz_corpus.rs`) assert that parsing a prefix never disagrees
//! with parsing the whole, and that chunked decoding is split-invariant. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = tollgate_http::invariants::check_request_head(data) {
        panic!("invariant violated: {violation}");
    }
});
