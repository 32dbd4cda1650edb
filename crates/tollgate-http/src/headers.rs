//! Owned header storage: one copy of the head bytes plus index ranges into it.
//!
//! A parsed head outlives the read buffer it came from (the buffer is reused for the body), so it
//! must own its bytes. Copying the ~300-byte head once and keeping `(start, end)` ranges costs one
//! `memcpy` and two allocations (bytes + range vector), instead of a `String` per name and value.

use bytes::Bytes;

/// Byte ranges of one header field inside the owned head bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: (usize, usize),
    pub(crate) value: (usize, usize),
}

/// The header fields of a parsed head, in wire order, with case-insensitive lookup.
///
/// Names are guaranteed to be RFC 9110 tokens (ASCII); values are raw bytes with surrounding
/// whitespace trimmed and no control characters other than HT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    raw: Bytes,
    fields: Vec<Field>,
}

impl Headers {
    pub(crate) fn new(raw: Bytes, fields: Vec<Field>) -> Self {
        Self { raw, fields }
    }

    /// The whole head as received (start line, fields, final CRLF).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub(crate) fn slice(&self, range: (usize, usize)) -> &[u8] {
        self.raw.get(range.0..range.1).unwrap_or_default()
    }

    pub(crate) fn str(&self, range: (usize, usize)) -> &str {
        // Ranges handed to this are validated ASCII by the parser; "" is unreachable in practice.
        std::str::from_utf8(self.slice(range)).unwrap_or_default()
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the head carried no header fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields as `(name, value)` in wire order, names in their original case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.str(f.name), self.slice(f.value)))
    }

    /// Value of the first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| self.slice(f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| self.slice(f.value))
    }

    /// Values of every field named `name` (ASCII case-insensitive), in wire order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.slice(f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| self.slice(f.value))
    }

    /// True when at least one field is named `name` (ASCII case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when any `name` field's comma-separated list contains `token` (case-insensitive),
    /// e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .any(|v| list_tokens(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }
}

/// Elements of a comma-separated field value, with optional whitespace trimmed and empty
/// elements skipped (RFC 9110 §5.6.1).
pub(crate) fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Strip leading and trailing SP/HT.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
