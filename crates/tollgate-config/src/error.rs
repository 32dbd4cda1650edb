//! A config error that says where: file, line, column and the dotted field path.

use std::fmt;

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given by the operator.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// Dotted field path, e.g. `backends[2].kind`.
    pub field: String,
    /// What is wrong and, where possible, what is expected.
    pub message: String,
}

impl ConfigError {
    /// Build an error.
    pub fn new(file: &str, line: usize, col: usize, field: &str, message: String) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line,
            col,
            field: field.to_string(),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
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

impl std::error::Error for ConfigError {}
