//! Property tests: no parser panics on arbitrary bytes, and chunk encoding round-trips through
//! the decoder under arbitrary read splits.

use bytes::BytesMut;
use proptest::prelude::*;
use tollgate_http::encode::{write_chunk, write_last_chunk};
use tollgate_http::{
    ChunkedDecoder, HeadLimits, Progress, parse_request_head, parse_response_head,
};

/// Bytes biased towards HTTP syntax so the parsers get past the first line often.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"Host: a\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Content-Length: 3\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            b"\r".to_vec(),
            b"\n".to_vec(),
            b"\0".to_vec(),
            b" ".to_vec(),
            b":".to_vec()
        ]),
    ];
    prop::collection::vec(atoms, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let limits = HeadLimits::default();
        let _ = parse_request_head(&data, &limits);
        let _ = parse_response_head(&data, &limits, false);
        let mut dec = ChunkedDecoder::new(1 << 16);
        let _ = dec.decode(&mut BytesMut::from(&data[..]), &mut BytesMut::new());
    }

    #[test]
    fn http_ish_input_satisfies_fuzz_invariants(split in any::<u16>(), data in http_ish()) {
        let mut input = split.to_le_bytes().to_vec();
        input.extend_from_slice(&data);
        let r = tollgate_http::invariants::check_request_head(&input);
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn chunk_encoding_round_trips_under_random_splits(
        payload in prop::collection::vec(any::<u8>(), 0..2048),
        chunk_sizes in prop::collection::vec(1usize..300, 1..16),
        reads in prop::collection::vec(1usize..64, 1..64),
    ) {
        let mut wire = BytesMut::new();
        let mut rest = &payload[..];
        let mut sizes = chunk_sizes.iter().cycle();
        while !rest.is_empty() {
            let n = sizes.next().copied().unwrap_or(1).min(rest.len());
            write_chunk(&mut wire, &rest[..n]);
            rest = &rest[n..];
        }
        write_last_chunk(&mut wire);
        wire.extend_from_slice(b"NEXT");

        let mut dec = ChunkedDecoder::new(payload.len() as u64);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut pos = 0;
        let mut reads = reads.iter().cycle();
        let mut done = false;
        while pos < wire.len() && !done {
            let n = reads.next().copied().unwrap_or(1).min(wire.len() - pos);
            input.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            done = dec.decode(&mut input, &mut out) == Ok(Progress::Done);
        }
        prop_assert!(done);
        prop_assert_eq!(&out[..], &payload[..]);
        input.extend_from_slice(&wire[pos..]);
        prop_assert_eq!(&input[..], b"NEXT");
    }
}
