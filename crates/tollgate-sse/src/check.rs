//! The split-equals-whole property, shared by proptest, the fuzz target and corpus replay.
//!
//! Kept in the library (not in a test) so that the cargo-fuzz target and the stable
//! `tests/fuzz_corpus.rs` replay check exactly the same thing: for any bytes and any way of
//! cutting them into reads, decoding yields the same frames and the same terminal result as
//! decoding the whole input at once, and the frames' `raw` bytes followed by whatever is left
//! buffered give back the input (unless the stream failed with `FrameTooLarge`, which drops the
//! buffer on purpose).

use crate::decoder::{Decoder, Frame, SseError};

/// Everything a decoder produced for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Frames in order, from `next_frame` and then `finish`.
    pub frames: Vec<Frame>,
    /// `Ok(())` for a clean end, else the first error.
    pub end: Result<(), SseError>,
    /// Bytes left in the buffer at the end.
    pub leftover: Vec<u8>,
}

/// Decode `chunks` as successive reads (draining frames after each), then finish.
pub fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max_frame_bytes: usize,
) -> Outcome {
    let mut dec = Decoder::new(max_frame_bytes);
    let mut frames = Vec::new();
    let mut end = Ok(());
    'feed: for chunk in chunks {
        dec.feed(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => {
                    end = Err(err);
                    break 'feed;
                }
            }
        }
    }
    if end.is_ok() {
        loop {
            match dec.finish() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => {
                    end = Err(err);
                    break;
                }
            }
        }
    }
    Outcome {
        frames,
        end,
        leftover: dec.buffered().to_vec(),
    }
}

/// Cut `input` at the given offsets (out-of-range and unsorted cuts are clamped and sorted).
pub fn split_at_cuts<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        parts.push(&input[start..cut]);
        start = cut;
    }
    parts.push(&input[start..]);
    parts
}

/// Check the property for `input` cut at `cuts`; `Err` describes the first violation.
///
/// # Errors
///
/// A human-readable description of the mismatch (the caller panics in tests / fuzzing).
pub fn split_matches_whole(
    input: &[u8],
    cuts: &[usize],
    max_frame_bytes: usize,
) -> Result<(), String> {
    let whole = decode_chunks([input], max_frame_bytes);
    let split = decode_chunks(split_at_cuts(input, cuts), max_frame_bytes);
    if whole != split {
        return Err(format!(
            "split {cuts:?} differs from whole:\nwhole: {whole:?}\nsplit: {split:?}"
        ));
    }
    if !matches!(whole.end, Err(SseError::FrameTooLarge { .. })) {
        let mut joined: Vec<u8> = whole
            .frames
            .iter()
            .flat_map(|f| f.raw.iter().copied())
            .collect();
        joined.extend_from_slice(&whole.leftover);
        if joined != input {
            return Err(format!("raw frames + leftover != input: {joined:?}"));
        }
    }
    Ok(())
}

/// The fuzz target's property on one fuzzer input: bytes 0–1 (little-endian `u16`, modulo the
/// stream length + 1) choose the cut point, byte 2 the frame limit, the rest is the stream.
/// Inputs shorter than 3 bytes are decoded as a stream with no cut. Streams up to 4 KiB are also
/// checked in 1-byte reads.
///
/// # Errors
///
/// As [`split_matches_whole`].
pub fn fuzz_one(data: &[u8]) -> Result<(), String> {
    let [lo, hi, limit, stream @ ..] = data else {
        return split_matches_whole(data, &[], 1 << 20);
    };
    let cut = usize::from(u16::from_le_bytes([*lo, *hi])) % (stream.len() + 1);
    let max = match limit % 4 {
        0 => 1 << 20,
        1 => 64,
        2 => 16,
        _ => usize::from(*limit),
    };
    split_matches_whole(stream, &[cut], max)?;
    if stream.len() <= 4096 {
        let every: Vec<usize> = (0..stream.len()).collect();
        split_matches_whole(stream, &every, max)?;
    }
    Ok(())
}
