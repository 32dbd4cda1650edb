//! `Raw*`: the config file exactly as written. serde rejects unknown fields; values that need
//! cross-checks keep their span (`Spanned`) so validation errors can name the line.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub workers: Option<S<usize>>,
    pub io_driver: Option<S<String>>,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub shutdown: RawShutdown,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub scan: RawScan,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    #[serde(default)]
    pub models: Vec<RawModel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    pub http: Option<S<String>>,
    pub https: Option<S<String>>,
    pub tls_cert: Option<S<String>>,
    pub tls_key: Option<S<String>>,
    pub admin: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_request_line_bytes: Option<S<u64>>,
    pub max_header_bytes: Option<S<u64>>,
    pub max_headers: Option<S<u64>>,
    pub max_body_bytes: Option<S<u64>>,
    pub header_read_timeout_ms: Option<S<u64>>,
    pub body_idle_timeout_ms: Option<S<u64>>,
    pub keepalive_timeout_ms: Option<S<u64>>,
    pub max_connections_per_worker: Option<S<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub connect_timeout_ms: Option<S<u64>>,
    pub first_byte_timeout_ms: Option<S<u64>>,
    pub idle_timeout_ms: Option<S<u64>>,
    pub pool_max_idle_per_backend: Option<S<u64>>,
    pub pool_idle_timeout_ms: Option<S<u64>>,
    pub max_response_body_bytes: Option<S<u64>>,
    pub retries: Option<S<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    pub drain_timeout_ms: Option<S<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub access_log: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScan {
    pub rules: Option<S<Vec<String>>>,
    pub max_match_len: Option<S<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub publish_interval_ms: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub name: S<String>,
    pub url: S<String>,
    pub kind: S<String>,
    pub api_key: Option<S<String>>,
    pub api_key_env: Option<S<String>>,
    pub ca_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: S<String>,
    pub backends: S<Vec<S<String>>>,
    pub owned_by: Option<S<String>>,
}
