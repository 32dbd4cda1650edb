//! Request-head behaviour: the smuggling corpus, valid heads, limits, and split-invariance.

use tollgate_http::{BodyFraming, HeadError, HeadLimits, Method, RequestHead, parse_request_head};

fn parse(raw: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    parse_request_head(raw, &HeadLimits::default())
}

/// Each entry: (name, head bytes, expected error). Every one must be a complete head so the
/// error is not just "incomplete".
const SMUGGLING: &[(&str, &[u8], HeadError)] = {
    use HeadError::*;
    &[
        ("cl_te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ContentLengthAndTransferEncoding),
        ("te_cl", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ContentLengthAndTransferEncoding),
        ("cl_te_obfuscated_te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n", ContentLengthAndTransferEncoding),
        ("te_chunked_identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", UnsupportedTransferEncoding),
        ("te_identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", UnsupportedTransferEncoding),
        ("te_gzip_chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferEncoding),
        ("te_xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", UnsupportedTransferEncoding),
        ("te_chunkedx", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", UnsupportedTransferEncoding),
        ("te_quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", UnsupportedTransferEncoding),
        ("te_tab_before_value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", UnsupportedTransferEncoding),
        ("te_two_spaces", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\r\n\r\n", UnsupportedTransferEncoding),
        ("te_trailing_space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n", UnsupportedTransferEncoding),
        ("te_trailing_tab", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n", UnsupportedTransferEncoding),
        ("te_empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", UnsupportedTransferEncoding),
        ("te_comma_only", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", UnsupportedTransferEncoding),
        ("te_duplicate", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", DuplicateTransferEncoding),
        ("te_duplicate_mixed_case", b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\nTRANSFER-ENCODING: identity\r\n\r\n", DuplicateTransferEncoding),
        ("te_space_before_colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", WhitespaceBeforeColon),
        ("te_tab_before_colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", WhitespaceBeforeColon),
        ("cl_space_before_colon", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", WhitespaceBeforeColon),
        ("te_http10", b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
        ("cl_duplicate_equal", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", DuplicateContentLength),
        ("cl_duplicate_conflicting", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", DuplicateContentLength),
        ("cl_list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", DuplicateContentLength),
        ("cl_list_conflicting", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,6\r\n\r\n", DuplicateContentLength),
        ("cl_plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", InvalidContentLength),
        ("cl_minus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", InvalidContentLength),
        ("cl_hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\n", InvalidContentLength),
        ("cl_leading_two_spaces", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5\r\n\r\n", InvalidContentLength),
        ("cl_leading_tab", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t5\r\n\r\n", InvalidContentLength),
        ("cl_trailing_space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 \r\n\r\n", InvalidContentLength),
        ("cl_empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", InvalidContentLength),
        ("cl_inner_space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", InvalidContentLength),
        ("cl_overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", InvalidContentLength),
        ("cl_twenty_digits", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000001\r\n\r\n", InvalidContentLength),
        ("cl_decimal", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", InvalidContentLength),
        ("obs_fold_te", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", ObsFold),
        ("obs_fold_tab", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", ObsFold),
        ("space_before_first_header", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", ObsFold),
        ("bare_lf_line_end", b"GET / HTTP/1.1\nHost: a\r\n\r\n", BareLf),
        ("bare_lf_head_end", b"GET / HTTP/1.1\r\nHost: a\r\n\n", BareLf),
        ("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: a\n\n", BareLf),
        ("bare_cr_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", BareCr),
        ("bare_cr_line_end", b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", BareCr),
        ("nul_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", NulByte),
        ("nul_in_target", b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", NulByte),
        ("ctl_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", InvalidHeaderValue),
        ("del_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", InvalidHeaderValue),
        ("name_with_slash", b"GET / HTTP/1.1\r\nHost: a\r\nX/A: b\r\n\r\n", InvalidHeaderName),
        ("name_with_at", b"GET / HTTP/1.1\r\nHost: a\r\nX@A: b\r\n\r\n", InvalidHeaderName),
        ("name_empty", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", InvalidHeaderName),
        ("line_without_colon", b"GET / HTTP/1.1\r\nHost: a\r\nXA\r\n\r\n", InvalidHeaderName),
        ("absolute_form", b"GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("authority_form", b"GET evil:443 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("asterisk_form", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("non_ascii_target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("connect", b"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", ConnectNotSupported),
        ("missing_host", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", MissingHost),
        ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", DuplicateHost),
        ("two_hosts_http10", b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", DuplicateHost),
        ("expect_other", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", ExpectationFailed),
        ("http2_version", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion),
        ("garbage_version", b"GET / FTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("double_space_request_line", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("missing_version", b"GET /\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("method_with_ctl", b"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine),
    ]
};

#[test]
fn smuggling_corpus_is_rejected_with_exact_variant_and_status() {
    assert!(SMUGGLING.len() >= 40);
    for (name, raw, want) in SMUGGLING {
        let got = parse(raw);
        assert_eq!(got.as_ref().err(), Some(want), "{name}: got {got:?}");
        let status = want.status();
        let expect_status = match want {
            HeadError::ConnectNotSupported => 405,
            HeadError::ExpectationFailed => 417,
            HeadError::UnsupportedVersion => 505,
            _ => 400,
        };
        assert_eq!(status, expect_status, "{name}");
        // Display never echoes header bytes.
        let msg = want.to_string();
        assert!(
            !msg.contains("evil") && !msg.contains("0x1"),
            "{name}: {msg}"
        );
        assert!(
            want.code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        );
    }
}

#[test]
fn valid_heads_derive_framing_keep_alive_and_expect() {
    struct Case {
        name: &'static str,
        raw: &'static [u8],
        method: Method,
        path: &'static str,
        framing: BodyFraming,
        keep_alive: bool,
        expect_continue: bool,
    }
    let cases = [
        Case {
            name: "get_11_default_keep_alive",
            raw: b"GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n",
            method: Method::Get,
            path: "/v1/models",
            framing: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "get_11_close",
            raw: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: false,
            expect_continue: false,
        },
        Case {
            name: "get_11_close_in_list",
            raw: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, Close\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: false,
            expect_continue: false,
        },
        Case {
            name: "get_10_default_close",
            raw: b"GET / HTTP/1.0\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: false,
            expect_continue: false,
        },
        Case {
            name: "get_10_keep_alive",
            raw: b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_cl",
            raw: b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n",
            method: Method::Post,
            path: "/v1/chat/completions?x=1",
            framing: BodyFraming::ContentLength(42),
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_cl_no_space",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:7\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::ContentLength(7),
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_cl_zero",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::ContentLength(0),
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_cl_max_digits",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::ContentLength(9_999_999_999_999_999_999),
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_chunked",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::Chunked,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "post_chunked_upper",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::Chunked,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "expect_continue",
            raw: b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::ContentLength(3),
            keep_alive: true,
            expect_continue: true,
        },
        Case {
            name: "expect_continue_ignored_http10",
            raw: b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            method: Method::Post,
            path: "/",
            framing: BodyFraming::ContentLength(3),
            keep_alive: false,
            expect_continue: false,
        },
        Case {
            name: "leading_empty_line_skipped",
            raw: b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "other_method",
            raw: b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
            method: Method::Other,
            path: "/x",
            framing: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        },
        Case {
            name: "empty_host_allowed",
            raw: b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            method: Method::Get,
            path: "/",
            framing: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        },
    ];
    for c in cases {
        let head = match parse(c.raw) {
            Ok(Some(h)) => h,
            other => panic!("{}: {other:?}", c.name),
        };
        assert_eq!(head.method, c.method, "{}", c.name);
        assert_eq!(head.path(), c.path, "{}", c.name);
        assert_eq!(head.framing, c.framing, "{}", c.name);
        assert_eq!(head.keep_alive, c.keep_alive, "{}", c.name);
        assert_eq!(head.expect_continue, c.expect_continue, "{}", c.name);
        assert_eq!(head.head_len, c.raw.len(), "{}", c.name);
    }
}

#[test]
fn header_lookup_is_case_insensitive_and_body_follows_head() {
    let raw = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.local\r\nAUTHORIZATION: Bearer x\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 2\r\n\r\n{}";
    let head = parse(raw)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("should parse"));
    assert_eq!(head.method_str(), "POST");
    assert_eq!(head.host(), Some(&b"api.local"[..]));
    assert_eq!(head.header("authorization"), Some(&b"Bearer x"[..]));
    assert_eq!(
        head.headers.get_all("X-DUP").collect::<Vec<_>>(),
        vec![&b"1"[..], &b"2"[..]]
    );
    assert_eq!(head.headers.len(), 5);
    assert_eq!(&raw[head.head_len..], b"{}");
    assert!(!head.headers.has_token("connection", "close"));
}

fn request_with_line_len(len: usize) -> Vec<u8> {
    // "GET /" + padding + " HTTP/1.1" == len
    let pad = len - "GET / HTTP/1.1".len();
    let mut v = b"GET /".to_vec();
    v.extend(std::iter::repeat_n(b'a', pad));
    v.extend_from_slice(b" HTTP/1.1");
    v
}

#[test]
fn limits_fire_on_complete_and_incomplete_input() {
    let max = tollgate_http::DEFAULT_MAX_REQUEST_LINE;
    // Exactly at the limit: fine, complete or not.
    let line = request_with_line_len(max);
    assert!(matches!(parse(&line), Ok(None)));
    let mut at_limit = line.clone();
    at_limit.extend_from_slice(b"\r");
    assert!(
        matches!(parse(&at_limit), Ok(None)),
        "trailing CR is not part of the line"
    );
    at_limit.extend_from_slice(b"\nHost: a\r\n\r\n");
    assert!(matches!(parse(&at_limit), Ok(Some(_))));
    // One over: 414 with no CRLF yet, and when complete.
    let over = request_with_line_len(max + 1);
    assert_eq!(parse(&over).err(), Some(HeadError::UriTooLong));
    assert_eq!(parse(&over[..max + 1]).err(), Some(HeadError::UriTooLong));
    let mut over_complete = over.clone();
    over_complete.extend_from_slice(b"\r\nHost: a\r\n\r\n");
    assert_eq!(parse(&over_complete).err(), Some(HeadError::UriTooLong));
    assert_eq!(HeadError::UriTooLong.status(), 414);

    // 100 headers fine, 101 → 431 (complete or not).
    let with_headers = |n: usize, complete: bool| {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 1..n {
            v.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        if complete {
            v.extend_from_slice(b"\r\n");
        }
        v
    };
    assert_eq!(
        parse(&with_headers(100, true))
            .ok()
            .flatten()
            .map(|h| h.headers.len()),
        Some(100)
    );
    assert_eq!(
        parse(&with_headers(101, true)).err(),
        Some(HeadError::TooManyHeaders)
    );
    assert_eq!(
        parse(&with_headers(101, false)).err(),
        Some(HeadError::TooManyHeaders)
    );
    assert_eq!(parse(&with_headers(100, false)).err(), None);
    assert_eq!(HeadError::TooManyHeaders.status(), 431);

    // Head over 32 KiB → 431, even incomplete; exactly 32 KiB is fine.
    let max_head = tollgate_http::DEFAULT_MAX_HEAD_BYTES;
    let sized_head = |total: usize| {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        let pad = total - v.len() - 4;
        v.extend(std::iter::repeat_n(b'b', pad));
        v.extend_from_slice(b"\r\n\r\n");
        v
    };
    let exact = sized_head(max_head);
    assert_eq!(
        parse(&exact).ok().flatten().map(|h| h.head_len),
        Some(max_head)
    );
    let big = sized_head(max_head + 1);
    assert_eq!(parse(&big).err(), Some(HeadError::HeadersTooLarge));
    assert_eq!(
        parse(&big[..max_head + 1]).err(),
        Some(HeadError::HeadersTooLarge)
    );
    assert_eq!(parse(&big[..max_head - 10]).err(), None);
    assert_eq!(HeadError::HeadersTooLarge.status(), 431);

    // Custom limits.
    let tight = HeadLimits {
        max_request_line: 10,
        max_head_bytes: 64,
        max_headers: 1,
    };
    assert_eq!(
        parse_request_head(b"GET /abcdefgh", &tight).err(),
        Some(HeadError::UriTooLong)
    );
    assert_eq!(
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n", &tight).err(),
        Some(HeadError::UriTooLong)
    );
}

#[test]
fn every_prefix_of_a_valid_head_is_incomplete_then_same_result() {
    let heads: &[&[u8]] = &[
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}",
        b"\r\nGET / HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n0\r\n\r\n",
    ];
    for raw in heads {
        let full = parse(raw).ok().flatten().unwrap_or_else(|| panic!("valid"));
        for cut in 0..raw.len() {
            let got = parse(&raw[..cut]);
            if cut < full.head_len {
                assert!(matches!(got, Ok(None)), "cut {cut}: {got:?}");
            } else {
                assert_eq!(got, Ok(Some(full.clone())), "cut {cut}");
            }
        }
    }
}

#[test]
fn every_prefix_of_an_invalid_head_is_incomplete_or_the_same_error() {
    for (name, raw, want) in SMUGGLING {
        for cut in 0..raw.len() {
            match parse(&raw[..cut]) {
                Ok(None) => {}
                Err(e) => assert_eq!(&e, want, "{name} cut {cut}"),
                Ok(Some(h)) => panic!("{name} cut {cut}: parsed {h:?}"),
            }
        }
    }
}

#[test]
fn error_codes_are_unique() {
    let mut codes: Vec<_> = SMUGGLING.iter().map(|(_, _, e)| (e.code(), *e)).collect();
    codes.sort_by_key(|(c, _)| *c);
    codes.dedup();
    for w in codes.windows(2) {
        assert!(w[0].0 != w[1].0 || w[0].1 == w[1].1, "{:?}", w);
    }
}
