//! Encoding helpers: heads and chunks round-trip through our own strict parsers.

use bytes::BytesMut;
use tollgate_http::encode::{
    EncodeError, reason_phrase, write_chunk, write_continue, write_last_chunk, write_request_head,
    write_response_head,
};
use tollgate_http::{BodyFraming, ChunkedDecoder, HeadLimits, Progress, ResponseFraming};

#[test]
fn reason_phrases_for_gateway_statuses() {
    let cases = [
        (200, "OK"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (417, "Expectation Failed"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (599, ""),
    ];
    for (status, reason) in cases {
        assert_eq!(reason_phrase(status), reason, "{status}");
    }
}

#[test]
fn response_head_round_trips() {
    let cases = [
        (
            BodyFraming::ContentLength(12345),
            ResponseFraming::ContentLength(12345),
        ),
        (BodyFraming::Chunked, ResponseFraming::Chunked),
        (BodyFraming::None, ResponseFraming::CloseDelimited),
    ];
    for (framing, want) in cases {
        let mut out = BytesMut::new();
        let headers: &[(&str, &[u8])] = &[
            ("content-type", b"text/event-stream"),
            ("x-request-id", b"abc"),
        ];
        assert_eq!(write_response_head(&mut out, 429, headers, framing), Ok(()));
        let h = tollgate_http::parse_response_head(&out, &HeadLimits::default(), false)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parses: {out:?}"));
        assert_eq!(h.status, 429);
        assert_eq!(h.reason(), "Too Many Requests");
        assert_eq!(h.framing, want);
        assert!(h.is_event_stream());
        assert_eq!(h.head_len, out.len());
    }
    let mut out = BytesMut::new();
    write_continue(&mut out);
    assert_eq!(&out[..], b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn request_head_round_trips() {
    let mut out = BytesMut::new();
    let headers: &[(&str, &[u8])] = &[
        ("authorization", b"Bearer k"),
        ("content-type", b"application/json"),
    ];
    let r = write_request_head(
        &mut out,
        "POST",
        "/v1/chat/completions",
        b"vllm:8000",
        headers,
        BodyFraming::ContentLength(2),
    );
    assert_eq!(r, Ok(()));
    let h = tollgate_http::parse_request_head(&out, &HeadLimits::default())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("parses: {out:?}"));
    assert_eq!(h.path(), "/v1/chat/completions");
    assert_eq!(h.host(), Some(&b"vllm:8000"[..]));
    assert_eq!(h.framing, BodyFraming::ContentLength(2));
    assert_eq!(h.header("authorization"), Some(&b"Bearer k"[..]));
}

#[test]
fn injection_attempts_are_refused_and_leave_out_untouched() {
    /// (name, path, extra headers, expected error)
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static [u8])],
        EncodeError,
    );
    let cases: &[Case] = &[
        (
            "crlf_in_value",
            "/",
            &[("x", b"a\r\nx-evil: 1")],
            EncodeError::InvalidHeaderValue,
        ),
        (
            "nul_in_value",
            "/",
            &[("x", b"a\0")],
            EncodeError::InvalidHeaderValue,
        ),
        (
            "space_in_name",
            "/",
            &[("x y", b"a")],
            EncodeError::InvalidHeaderName,
        ),
        (
            "empty_name",
            "/",
            &[("", b"a")],
            EncodeError::InvalidHeaderName,
        ),
        (
            "framing_in_list",
            "/",
            &[("Content-Length", b"5")],
            EncodeError::ReservedHeader,
        ),
        (
            "te_in_list",
            "/",
            &[("transfer-encoding", b"chunked")],
            EncodeError::ReservedHeader,
        ),
        (
            "host_in_list",
            "/",
            &[("HOST", b"x")],
            EncodeError::ReservedHeader,
        ),
        ("space_in_path", "/a b", &[], EncodeError::InvalidPath),
        ("absolute_path", "http://x/", &[], EncodeError::InvalidPath),
    ];
    for (name, path, headers, want) in cases {
        let mut out = BytesMut::from(&b"prev"[..]);
        let r = write_request_head(&mut out, "GET", path, b"h", headers, BodyFraming::None);
        assert_eq!(r, Err(*want), "{name}");
        assert_eq!(&out[..], b"prev", "{name}");
    }
    let mut out = BytesMut::new();
    assert_eq!(
        write_response_head(&mut out, 600, &[], BodyFraming::None),
        Err(EncodeError::InvalidStatus)
    );
    assert_eq!(
        write_request_head(&mut out, "G T", "/", b"h", &[], BodyFraming::None),
        Err(EncodeError::InvalidMethod)
    );
    assert!(out.is_empty());
}

#[test]
fn chunks_round_trip_through_the_decoder() {
    let mut out = BytesMut::new();
    write_chunk(&mut out, b"hello");
    write_chunk(&mut out, b"");
    write_chunk(&mut out, &[b'x'; 300]);
    write_last_chunk(&mut out);
    assert!(out.starts_with(b"5\r\nhello\r\n12c\r\n"));
    assert!(out.ends_with(b"\r\n0\r\n\r\n"));
    let mut dec = ChunkedDecoder::new(1 << 20);
    let mut body = BytesMut::new();
    assert_eq!(dec.decode(&mut out, &mut body), Ok(Progress::Done));
    assert_eq!(body.len(), 305);
    assert!(out.is_empty());
}
