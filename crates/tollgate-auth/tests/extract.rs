//! Header extraction: which header combinations yield a token and which are rejected, and as
//! what (the proxy maps `Missing` and `Malformed` to different metric labels).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_auth::{AuthFailure, extract_token};

const T: &[u8] = b"tgk_3f9a2c1d8e7b_abc";

/// (Authorization, x-api-key, expected)
type Case = (
    Option<&'static [u8]>,
    Option<&'static [u8]>,
    Result<&'static [u8], AuthFailure>,
);

#[test]
fn extract_token_matrix() {
    use AuthFailure::*;
    let cases: &[Case] = &[
        // Neither header.
        (None, None, Err(Missing)),
        // Empty headers: the client sent something, and it is not a credential.
        (Some(b""), None, Err(Malformed)),
        (None, Some(b""), Err(Malformed)),
        (None, Some(b"   "), Err(Malformed)),
        // `Bearer` without a token.
        (Some(b"Bearer"), None, Err(Malformed)),
        (Some(b"Bearer "), None, Err(Malformed)),
        (Some(b"Bearer    "), None, Err(Malformed)),
        // Other schemes.
        (Some(b"Basic dXNlcjpwYXNz"), None, Err(Malformed)),
        (Some(b"Bearerx tok"), None, Err(Malformed)),
        (Some(b"Token abc"), None, Err(Malformed)),
        // Scheme is case-insensitive; one or more spaces.
        (Some(b"Bearer tgk_3f9a2c1d8e7b_abc"), None, Ok(T)),
        (Some(b"bearer tgk_3f9a2c1d8e7b_abc"), None, Ok(T)),
        (Some(b"BEARER tgk_3f9a2c1d8e7b_abc"), None, Ok(T)),
        (Some(b"Bearer    tgk_3f9a2c1d8e7b_abc  "), None, Ok(T)),
        // A token with a space in it is not a token.
        (Some(b"Bearer a b"), None, Err(Malformed)),
        // x-api-key only.
        (None, Some(b"tgk_3f9a2c1d8e7b_abc"), Ok(T)),
        (None, Some(b" tgk_3f9a2c1d8e7b_abc "), Ok(T)),
        // Both, equal.
        (
            Some(b"Bearer tgk_3f9a2c1d8e7b_abc"),
            Some(b"tgk_3f9a2c1d8e7b_abc"),
            Ok(T),
        ),
        // Both, different.
        (
            Some(b"Bearer tgk_3f9a2c1d8e7b_abc"),
            Some(b"tgk_3f9a2c1d8e7b_abd"),
            Err(Malformed),
        ),
        // Both, one malformed.
        (
            Some(b"Basic xyz"),
            Some(b"tgk_3f9a2c1d8e7b_abc"),
            Err(Malformed),
        ),
        (
            Some(b"Bearer tgk_3f9a2c1d8e7b_abc"),
            Some(b""),
            Err(Malformed),
        ),
    ];
    for (auth, key, want) in cases {
        let got = extract_token(*auth, *key);
        assert_eq!(
            got,
            *want,
            "authorization={:?} x-api-key={:?}",
            auth.map(String::from_utf8_lossy),
            key.map(String::from_utf8_lossy)
        );
    }
}

#[test]
fn failure_reasons_are_metric_labels() {
    use AuthFailure::*;
    let got: Vec<&str> = [Missing, Malformed, Unknown, Expired, Revoked]
        .into_iter()
        .map(AuthFailure::reason)
        .collect();
    assert_eq!(
        got,
        ["missing", "malformed", "unknown", "expired", "revoked"]
    );
    assert_eq!(Revoked.to_string(), "revoked");
}
