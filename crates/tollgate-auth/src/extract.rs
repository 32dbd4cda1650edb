//! Pull the credential out of request headers. Runtime-free: the proxy hands in the raw header
//! values it found (or `None`), and gets back the token bytes or why there is none.

use crate::types::AuthFailure;

/// Credential from headers: `Authorization: Bearer <t>` (scheme case-insensitive, one space or
/// more) or `x-api-key: <t>`. Both present and different → `Malformed`. `Authorization` with
/// another scheme, or `Bearer` with an empty token → `Malformed`. Neither → `Missing`. Returns
/// the token bytes.
///
/// Leading and trailing spaces/tabs around a value are ignored (HTTP optional whitespace); a
/// token containing a space is `Malformed`. An empty `x-api-key` is `Malformed`, not
/// `Missing`: the client did send something.
pub fn extract_token<'a>(
    authorization: Option<&'a [u8]>,
    x_api_key: Option<&'a [u8]>,
) -> Result<&'a [u8], AuthFailure> {
    let from_auth = authorization.map(bearer);
    let from_key = x_api_key.map(|v| single_token(trim_ows(v)));
    match (from_auth, from_key) {
        (None, None) => Err(AuthFailure::Missing),
        (Some(a), None) => a,
        (None, Some(k)) => k,
        (Some(a), Some(k)) => {
            let (a, k) = (a?, k?);
            if a == k {
                Ok(a)
            } else {
                Err(AuthFailure::Malformed)
            }
        }
    }
}

/// `Bearer <token>`, scheme case-insensitive, one or more spaces.
fn bearer(v: &[u8]) -> Result<&[u8], AuthFailure> {
    const SCHEME: &[u8] = b"bearer";
    let v = trim_ows(v);
    let Some((scheme, rest)) = v.split_at_checked(SCHEME.len()) else {
        return Err(AuthFailure::Malformed);
    };
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return Err(AuthFailure::Malformed);
    }
    single_token(trim_ows(rest))
}

/// A non-empty value without inner whitespace.
fn single_token(v: &[u8]) -> Result<&[u8], AuthFailure> {
    if v.is_empty() || v.iter().any(|b| matches!(b, b' ' | b'\t')) {
        Err(AuthFailure::Malformed)
    } else {
        Ok(v)
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}
