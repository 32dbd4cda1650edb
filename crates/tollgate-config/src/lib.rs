//! tollgate configuration: TOML text → `Raw*` (serde, unknown fields rejected) → validated and
//! compiled [`Config`]. Every error names the file, line, column and field, so `tollgate check`
//! can point an operator at the exact spot. Nothing `Raw*` leaves this crate; nothing here touches
//! the network except resolving backend host names once per load (off the data path).
#![deny(missing_docs)]

mod compile;
mod error;
mod governance;
mod raw;
mod routing;
mod types;

pub use error::ConfigError;
pub use governance::{DEFAULT_COMMIT_INTERVAL_MS, DEFAULT_MAX_TOKENS, Governance, LedgerSettings};
pub use types::*;

use std::path::Path;

/// Read and compile a config file. On failure, every error found is returned (not just the first).
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::new(
            &file,
            0,
            0,
            "",
            format!("cannot read config file: {e}"),
        )]
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_str(&text, &file, &base_dir)
}

/// Compile config text. `file` is used in error messages; relative paths inside the config
/// (TLS certificates, CA files) are resolved against `base_dir`.
pub fn parse_str(text: &str, file: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let (line, col, field) = tollgate_core::locate::position(text, e.span().map(|s| s.start));
        vec![ConfigError::new(
            file,
            line,
            col,
            &field,
            e.message().trim().to_string(),
        )]
    })?;
    compile::compile(raw, text, file, base_dir)
}
