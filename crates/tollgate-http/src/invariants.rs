//! Property checks shared by the fuzz target and the corpus-replay test.
//!
//! Kept in the library (hidden from docs) so `fuzz/` and `cargo test` run byte-for-byte the same
//! checks. They report violations as `Err(description)` instead of panicking; the callers turn
//! that into a test failure or a fuzzer crash.

use bytes::BytesMut;

use crate::{BodyFraming, ChunkedDecoder, HeadLimits, parse_request_head, parse_response_head};

/// Body limit used when the checks run the chunked decoder.
const CHECK_MAX_BODY: u64 = 1 << 20;

/// Run every invariant over `data`: the first two bytes choose a split point, the rest is the
/// input. Checks that parsing a prefix agrees with parsing the whole (request and response
/// parsers), and that chunked decoding of the body is split-invariant.
pub fn check_request_head(data: &[u8]) -> Result<(), String> {
    let (split, input) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let split = if input.is_empty() {
        0
    } else {
        split % (input.len() + 1)
    };
    let limits = HeadLimits::default();
    let prefix = input.get(..split).unwrap_or_default();

    let whole = parse_request_head(input, &limits);
    let part = parse_request_head(prefix, &limits);
    match (&whole, &part) {
        (_, Ok(None)) => {
            if let Ok(Some(h)) = &whole
                && h.head_len <= split
            {
                return Err(format!(
                    "prefix of {split} bytes holds the head but parsed incomplete"
                ));
            }
        }
        (Ok(Some(w)), Ok(Some(p))) if w == p => {}
        (Err(_), Err(_)) => {}
        _ => {
            return Err(format!(
                "whole {whole:?} vs prefix {part:?} at split {split}"
            ));
        }
    }
    if let Ok(Some(h)) = &whole {
        if h.head_len > input.len() {
            return Err("head_len beyond input".into());
        }
        check_clean_head(h.headers.raw())?;
        if h.framing == BodyFraming::Chunked {
            check_chunked(input.get(h.head_len..).unwrap_or_default(), split)?;
        }
    }

    for was_head in [false, true] {
        let whole = parse_response_head(input, &limits, was_head);
        if let Ok(Some(h)) = &whole {
            check_clean_head(h.headers.raw())?;
        }
        let part = parse_response_head(prefix, &limits, was_head);
        match (&whole, &part) {
            (Ok(Some(w)), Ok(None)) if w.head_len <= split => {
                return Err(format!("response prefix of {split} bytes holds the head"));
            }
            (_, Ok(None)) | (Err(_), Err(_)) => {}
            (Ok(Some(w)), Ok(Some(p))) if w == p => {}
            _ => return Err(format!("response: whole {whole:?} vs prefix {part:?}")),
        }
    }
    Ok(())
}

/// Decoding `body` in one call and in two calls split at `split` gives the same outcome.
pub fn check_chunked(body: &[u8], split: usize) -> Result<(), String> {
    let run = |pieces: &[&[u8]]| {
        let mut dec = ChunkedDecoder::new(CHECK_MAX_BODY);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut last = Ok(crate::Progress::NeedMore);
        for piece in pieces {
            input.extend_from_slice(piece);
            last = dec.decode(&mut input, &mut out);
            if last.is_err() {
                break;
            }
        }
        (last, out, input.len())
    };
    let split = split.min(body.len());
    let one = run(&[body]);
    let two = run(&[
        body.get(..split).unwrap_or_default(),
        body.get(split..).unwrap_or_default(),
    ]);
    let same = match (&one.0, &two.0) {
        (Ok(a), Ok(b)) => a == b && one.1 == two.1 && one.2 == two.2,
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    if !same {
        return Err(format!(
            "chunked split at {split}: {:?} vs {:?}",
            one.0, two.0
        ));
    }
    Ok(())
}

/// An accepted head never contains NUL, CR without LF, or LF without CR: the fast path leaves
/// NUL and bare CR to `httparse`, and this is the check that it really rejects them.
fn check_clean_head(head: &[u8]) -> Result<(), String> {
    for (i, &b) in head.iter().enumerate() {
        let next = head.get(i + 1).copied();
        let prev = i.checked_sub(1).and_then(|p| head.get(p)).copied();
        if b == 0 || (b == b'\r' && next != Some(b'\n')) || (b == b'\n' && prev != Some(b'\r')) {
            return Err(format!("accepted head has a stray control byte at {i}"));
        }
    }
    Ok(())
}
