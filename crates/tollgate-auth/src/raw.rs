//! `Raw*`: the keys file exactly as written. serde rejects unknown fields; every value that
//! needs validation keeps its span (`Spanned`) so errors can name the line. Nothing `Raw*`
//! leaves this crate.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;
/// A list of strings, each with its position.
pub(crate) type List = S<Vec<S<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeysFile {
    #[serde(default)]
    pub consumer: Vec<RawConsumer>,
    #[serde(default)]
    pub key: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsumer {
    pub name: S<String>,
    pub tenant: S<String>,
    pub project: Option<S<String>>,
    pub enabled: Option<bool>,
    pub allow_ips: Option<List>,
    pub deny_ips: Option<List>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKey {
    pub id: S<String>,
    pub consumer: S<String>,
    /// Kept as a string so a malformed hash is a validation error (collected with the others),
    /// never quoted back.
    pub hash: S<String>,
    pub models: List,
    pub enabled: Option<bool>,
    pub expires: Option<S<String>>,
    pub created: Option<S<String>>,
    pub note: Option<S<String>>,
}
