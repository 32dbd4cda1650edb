//! Chunked-body behaviour: strictness rules, limits, and split-invariance.

use bytes::BytesMut;
use tollgate_http::{ChunkError, ChunkedDecoder, Progress};

const MAX: u64 = 1 << 20;

/// Decode `raw` in one call: (result, payload, unconsumed bytes).
fn decode_all(raw: &[u8], max: u64) -> (Result<Progress, ChunkError>, Vec<u8>, Vec<u8>) {
    let mut dec = ChunkedDecoder::new(max);
    let mut input = BytesMut::from(raw);
    let mut out = BytesMut::new();
    let r = dec.decode(&mut input, &mut out);
    (r, out.to_vec(), input.to_vec())
}

#[test]
fn valid_bodies_decode() {
    /// (name, wire bytes, payload, bytes left for the next message)
    type Case = (&'static str, &'static [u8], &'static [u8], &'static [u8]);
    let cases: &[Case] = &[
        ("single", b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
        (
            "two_chunks",
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
            b"",
        ),
        (
            "upper_hex",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            b"",
        ),
        (
            "leading_zeros",
            b"0005\r\nhello\r\n000\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "extension",
            b"5;name=value\r\nhello\r\n0;x\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "extension_quoted_tab",
            b"5;a=\"b\tc\"\r\nhello\r\n0\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "trailers",
            b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:1\r\n\r\n",
            b"hello",
            b"",
        ),
        ("empty_body", b"0\r\n\r\n", b"", b""),
        (
            "pipelined_rest_kept",
            b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
            b"a",
            b"GET / HTTP/1.1\r\n",
        ),
        (
            "data_with_crlf_inside",
            b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
            b"\r\n\r\n",
            b"",
        ),
    ];
    for (name, raw, payload, rest) in cases {
        let (r, out, left) = decode_all(raw, MAX);
        assert_eq!(r, Ok(Progress::Done), "{name}");
        assert_eq!(&out, payload, "{name}");
        assert_eq!(&left, rest, "{name}");
    }
}

#[test]
fn strictness_rules_each_have_their_error() {
    use ChunkError::*;
    let cases: &[(&str, &[u8], ChunkError)] = &[
        ("hex_prefix", b"0x5\r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
        ("plus", b"+5\r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
        ("underscore", b"1_0\r\n", InvalidChunkSize),
        ("space_before_crlf", b"5 \r\nhello\r\n", InvalidChunkSize),
        ("space_before_ext", b"5 ;x\r\nhello\r\n", InvalidChunkSize),
        ("leading_space", b" 5\r\nhello\r\n", InvalidChunkSize),
        ("empty_size", b"\r\nhello\r\n", InvalidChunkSize),
        ("ext_without_size", b";x\r\n", InvalidChunkSize),
        ("non_hex", b"g\r\n", InvalidChunkSize),
        ("negative", b"-1\r\n", InvalidChunkSize),
        (
            "seventeen_digits",
            b"00000000000000001\r\n",
            ChunkSizeTooLong,
        ),
        ("size_bare_lf", b"5\nhello\r\n", BareLf),
        ("size_bare_cr", b"5\rhello\r\n", BareCr),
        ("ext_bare_lf", b"5;x\nhello\r\n", BareLf),
        ("ext_nul", b"5;x\0\r\nhello\r\n", InvalidChunkExtension),
        ("ext_ctl", b"5;x\x01\r\nhello\r\n", InvalidChunkExtension),
        ("ext_bare_cr", b"5;x\ry\r\n", BareCr),
        ("data_too_long", b"3\r\nhello\r\n", MissingDataCrlf),
        ("data_missing_crlf", b"5\r\nhello0\r\n\r\n", MissingDataCrlf),
        ("data_bare_lf", b"5\r\nhello\n0\r\n\r\n", MissingDataCrlf),
        ("data_bare_cr", b"5\r\nhello\r0\r\n\r\n", MissingDataCrlf),
        ("last_chunk_bare_lf", b"0\n\r\n", BareLf),
        ("final_bare_lf", b"0\r\n\n", BareLf),
        ("final_bare_cr", b"0\r\n\rX", BareCr),
        ("trailer_bare_lf", b"0\r\nX: y\n\r\n", BareLf),
        ("trailer_obs_fold", b"0\r\n y\r\n\r\n", InvalidTrailer),
        ("trailer_no_colon", b"0\r\nXY\r\n\r\n", InvalidTrailer),
        ("trailer_nul", b"0\r\nX: \0\r\n\r\n", InvalidTrailer),
        ("trailer_bare_cr", b"0\r\nX: y\rz\r\n\r\n", BareCr),
    ];
    for (name, raw, want) in cases {
        let (r, _, _) = decode_all(raw, MAX);
        assert_eq!(r, Err(*want), "{name}");
        assert_eq!(want.status(), 400, "{name}");
    }
}

#[test]
fn too_large_fires_on_the_size_line_before_data_arrives() {
    let (r, out, _) = decode_all(b"5\r\nhello\r\n6\r\n", 10);
    assert_eq!(r, Err(ChunkError::TooLarge));
    assert_eq!(out, b"hello");
    assert_eq!(ChunkError::TooLarge.status(), 413);
    // Exactly max_body is fine.
    let (r, _, _) = decode_all(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10);
    assert_eq!(r, Ok(Progress::Done));
    // Overflowing u64 across chunks is TooLarge, not a wrap.
    let (r, _, _) = decode_all(b"ffffffffffffffff\r\n", u64::MAX);
    assert_eq!(r, Ok(Progress::NeedMore));
    let mut dec = ChunkedDecoder::new(u64::MAX);
    let mut input = BytesMut::from(&b"1\r\na\r\nffffffffffffffff\r\n"[..]);
    assert_eq!(
        dec.decode(&mut input, &mut BytesMut::new()),
        Err(ChunkError::TooLarge)
    );
}

#[test]
fn extension_and_trailer_limits() {
    let mut raw = b"1;".to_vec();
    raw.extend(std::iter::repeat_n(
        b'x',
        tollgate_http::chunked::MAX_CHUNK_EXT,
    ));
    raw.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
    assert_eq!(decode_all(&raw, MAX).0, Ok(Progress::Done));
    let mut raw = b"1;".to_vec();
    raw.extend(std::iter::repeat_n(
        b'x',
        tollgate_http::chunked::MAX_CHUNK_EXT + 1,
    ));
    assert_eq!(
        decode_all(&raw, MAX).0,
        Err(ChunkError::ChunkExtensionTooLong)
    );

    let mut raw = b"0\r\n".to_vec();
    for _ in 0..(tollgate_http::chunked::MAX_TRAILER_BYTES / 9 + 1) {
        raw.extend_from_slice(b"X-T: 1234\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(decode_all(&raw, MAX).0, Err(ChunkError::TrailersTooLarge));
    assert_eq!(ChunkError::TrailersTooLarge.status(), 431);
}

#[test]
fn every_byte_split_gives_the_same_result() {
    let bodies: &[&[u8]] = &[
        b"5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT",
        b"3\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\r\n5 \r\n",
    ];
    for raw in bodies {
        let whole = decode_all(raw, MAX);
        for cut in 0..=raw.len() {
            let mut dec = ChunkedDecoder::new(MAX);
            let mut input = BytesMut::from(&raw[..cut]);
            let mut out = BytesMut::new();
            let first = dec.decode(&mut input, &mut out);
            let r = match first {
                Ok(Progress::NeedMore) => {
                    input.extend_from_slice(&raw[cut..]);
                    dec.decode(&mut input, &mut out)
                }
                other => {
                    input.extend_from_slice(&raw[cut..]);
                    other
                }
            };
            assert_eq!(r, whole.0, "cut {cut}");
            if r.is_ok() {
                assert_eq!(out.to_vec(), whole.1, "cut {cut}");
                assert_eq!(input.to_vec(), whole.2, "cut {cut}");
            }
        }
        // Byte at a time.
        let mut dec = ChunkedDecoder::new(MAX);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut r = Ok(Progress::NeedMore);
        for &b in raw.iter() {
            input.extend_from_slice(&[b]);
            r = dec.decode(&mut input, &mut out);
            if r != Ok(Progress::NeedMore) {
                break;
            }
        }
        assert_eq!(r, whole.0);
    }
}

#[test]
fn done_is_sticky_and_leaves_input_alone() {
    let mut dec = ChunkedDecoder::new(MAX);
    let mut input = BytesMut::from(&b"0\r\n\r\nrest"[..]);
    let mut out = BytesMut::new();
    assert_eq!(dec.decode(&mut input, &mut out), Ok(Progress::Done));
    assert!(dec.is_done());
    assert_eq!(dec.decode(&mut input, &mut out), Ok(Progress::Done));
    assert_eq!(&input[..], b"rest");
}
