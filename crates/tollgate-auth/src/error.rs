//! A keys-file error that says where: file, line, column and the dotted field path, so
//! `tollgate keys` and reload logs can point an operator at the exact spot.

use std::fmt;

use crate::secret::redact;

/// One problem in a keys file.
///
/// Messages never quote a `hash` value or any token: an operator who pastes a token into the
/// wrong field must not see it echoed into logs (see [`KeysError::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysError {
    /// File name as given by the operator.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// Dotted field path, e.g. `key[2].models[0]`; empty when the error is about the whole file.
    pub field: String,
    /// What is wrong and, where possible, what is expected.
    pub message: String,
}

impl KeysError {
    /// Build an error. `field` and `message` pass through a redactor that replaces anything
    /// shaped like a token or secret with `<redacted>` (parser messages quote values, and an
    /// operator may paste a token into any field).
    pub fn new(file: &str, line: usize, col: usize, field: &str, message: String) -> KeysError {
        KeysError {
            file: file.to_string(),
            line,
            col,
            field: redact(field),
            message: redact(&message),
        }
    }
}

impl fmt::Display for KeysError {
    /// `file:line:col: field: message`; line/column and field are left out when unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for KeysError {}
