//! Upstream response-head behaviour: framing, reuse, interim responses, SSE detection.

use tollgate_http::{HeadError, HeadLimits, ResponseFraming, ResponseHead, parse_response_head};

fn parse(raw: &[u8], was_head: bool) -> Result<Option<ResponseHead>, HeadError> {
    parse_response_head(raw, &HeadLimits::default(), was_head)
}

#[test]
fn framing_and_reuse_table() {
    /// (name, raw, request_was_head, framing, keep_alive, reusable)
    type Case = (
        &'static str,
        &'static [u8],
        bool,
        ResponseFraming,
        bool,
        bool,
    );
    let cases: &[Case] = &[
        (
            "cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            false,
            ResponseFraming::ContentLength(5),
            true,
            true,
        ),
        (
            "chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            ResponseFraming::Chunked,
            true,
            true,
        ),
        (
            "close_delimited",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
            false,
            ResponseFraming::CloseDelimited,
            true,
            false,
        ),
        (
            "no_content_204",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            false,
            ResponseFraming::NoBody,
            true,
            true,
        ),
        (
            "not_modified_304_with_cl",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
            false,
            ResponseFraming::NoBody,
            true,
            true,
        ),
        (
            "head_response_with_cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            true,
            ResponseFraming::NoBody,
            true,
            true,
        ),
        (
            "connection_close",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            false,
            ResponseFraming::ContentLength(0),
            false,
            false,
        ),
        (
            "http10_default_close",
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
            false,
            ResponseFraming::ContentLength(1),
            false,
            false,
        ),
        (
            "http10_keep_alive",
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
            false,
            ResponseFraming::ContentLength(1),
            true,
            true,
        ),
        (
            "duplicate_equal_cl_not_reusable",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            false,
            ResponseFraming::ContentLength(3),
            true,
            false,
        ),
        (
            "cl_list_equal_not_reusable",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
            false,
            ResponseFraming::ContentLength(3),
            true,
            false,
        ),
        (
            "switching_protocols",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            false,
            ResponseFraming::NoBody,
            true,
            false,
        ),
        (
            "empty_reason",
            b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
            false,
            ResponseFraming::ContentLength(0),
            true,
            true,
        ),
    ];
    for (name, raw, was_head, framing, keep_alive, reusable) in cases {
        let h = match parse(raw, *was_head) {
            Ok(Some(h)) => h,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(h.framing, *framing, "{name}");
        assert_eq!(h.keep_alive, *keep_alive, "{name}");
        assert_eq!(h.reusable, *reusable, "{name}");
    }
}

#[test]
fn ambiguous_upstream_framing_is_an_error() {
    use HeadError::*;
    let cases: &[(&str, &[u8], HeadError)] = &[
        (
            "cl_and_te",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (
            "conflicting_cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "conflicting_cl_list",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "gzip_chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "duplicate_te",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            DuplicateTransferEncoding,
        ),
        (
            "te_http10",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            TransferEncodingInHttp10,
        ),
        (
            "bad_cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "obs_fold",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            ObsFold,
        ),
        ("bare_lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", BareLf),
        (
            "space_before_colon",
            b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
            WhitespaceBeforeColon,
        ),
        (
            "status_999",
            b"HTTP/1.1 999 Weird\r\n\r\n",
            InvalidStatusLine,
        ),
        (
            "status_two_digits",
            b"HTTP/1.1 20 OK\r\n\r\n",
            InvalidStatusLine,
        ),
        ("http2", b"HTTP/2.0 200 OK\r\n\r\n", UnsupportedVersion),
    ];
    for (name, raw, want) in cases {
        assert_eq!(parse(raw, false).err(), Some(*want), "{name}");
    }
    assert_eq!(HeadError::UPSTREAM_STATUS, 502);
    assert_eq!(HeadError::InvalidStatusLine.status(), 502);
}

#[test]
fn interim_responses_are_exposed_then_skipped() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let interim = parse(raw, false)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("parses"));
    assert!(interim.is_interim());
    assert_eq!(interim.reason(), "Continue");
    assert_eq!(interim.framing, ResponseFraming::NoBody);
    let fin = parse(&raw[interim.head_len..], false)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("parses"));
    assert!(!fin.is_interim());
    assert_eq!(fin.status, 200);
    assert_eq!(&raw[interim.head_len + fin.head_len..], b"ok");
}

#[test]
fn event_stream_content_type_is_detected() {
    let cases: &[(&[u8], bool)] = &[
        (b"text/event-stream", true),
        (b"Text/Event-Stream; charset=utf-8", true),
        (b"text/event-stream;charset=utf-8", true),
        (b"application/json", false),
        (b"text/event-streamx", false),
    ];
    for (ct, want) in cases {
        let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: ".to_vec();
        raw.extend_from_slice(ct);
        raw.extend_from_slice(b"\r\n\r\n");
        let h = parse(&raw, false)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parses"));
        assert_eq!(
            h.is_event_stream(),
            *want,
            "{:?}",
            String::from_utf8_lossy(ct)
        );
    }
    let h = parse(b"HTTP/1.1 200 OK\r\n\r\n", false)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("parses"));
    assert!(!h.is_event_stream());
}

#[test]
fn every_prefix_is_incomplete_until_the_head_ends() {
    let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    let full = parse(raw, false)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("parses"));
    for cut in 0..raw.len() {
        assert_eq!(parse(&raw[..cut], false), Ok(None), "cut {cut}");
    }
    assert_eq!(full.head_len, raw.len());
}
