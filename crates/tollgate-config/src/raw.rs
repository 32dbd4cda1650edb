//! `Raw*`: the config file exactly as written. serde rejects unknown fields; values that need
//! cross-checks keep their span (`Spanned`) so validation errors can name the line.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;
/// A list of backend names, each with its position.
pub type Names = S<Vec<S<String>>>;

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
    pub routing: RawRouting,
    #[serde(default)]
    pub auth: crate::governance::RawAuth,
    #[serde(default)]
    pub quota: crate::governance::RawQuota,
    #[serde(default)]
    pub ledger: crate::governance::RawLedger,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    #[serde(default)]
    pub pools: Vec<RawPool>,
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
    pub management_url: Option<S<String>>,
    pub metrics_url: Option<S<String>>,
    pub max_inflight: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: S<String>,
    pub backends: Option<S<Vec<S<String>>>>,
    pub pool: Option<S<String>>,
    pub split: Option<S<Vec<RawSplitTarget>>>,
    pub tokenizer: Option<S<String>>,
    pub owned_by: Option<S<String>>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub default_policy: Option<S<String>>,
    pub scrape_interval_ms: Option<S<u64>>,
    pub stale_after_ms: Option<S<u64>>,
    pub scrape_timeout_ms: Option<S<u64>>,
    pub probe_interval_ms: Option<S<u64>>,
    pub probe_failures_down: Option<S<u64>>,
    pub eject_consecutive_failures: Option<S<u64>>,
    pub eject_base_ms: Option<S<u64>>,
    pub eject_max_ms: Option<S<u64>>,
    pub max_ejected_percent: Option<S<u64>>,
    pub saturation_queue: Option<S<u64>>,
    pub weight_queue: Option<S<f64>>,
    pub weight_kv: Option<S<f64>>,
    pub weight_tokens: Option<S<f64>>,
    pub prefix_block_bytes: Option<S<u64>>,
    pub prefix_max_blocks: Option<S<u64>>,
    pub prefix_table_slots: Option<S<u64>>,
    pub prefix_min_match: Option<S<f64>>,
    pub affinity_ratio: Option<S<f64>>,
    pub affinity_slack: Option<S<u64>>,
    pub default_output_tokens: Option<S<u64>>,
    pub retry_budget_percent: Option<S<u64>>,
    pub min_retries_per_sec: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: S<String>,
    pub backends: Option<S<Vec<S<String>>>>,
    pub backup: Option<S<Vec<S<String>>>>,
    pub tiers: Option<S<Vec<Names>>>,
    pub policy: Option<S<String>>,
    pub model: Option<S<String>>,
    pub weights: Option<S<std::collections::BTreeMap<String, S<u64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplitTarget {
    pub pool: S<String>,
    pub weight: S<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<S<String>>,
    pub pool: Option<S<String>>,
    pub split: Option<S<Vec<RawSplitTarget>>>,
    pub when: S<RawWhen>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    pub header: Option<S<RawHeaderCond>>,
    pub content: Option<S<RawContentCond>>,
    pub context_tokens: Option<S<RawTokensCond>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderCond {
    pub name: S<String>,
    pub equals: Option<S<String>>,
    pub regex: Option<S<String>>,
    pub present: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContentCond {
    pub keywords: Option<S<Vec<String>>>,
    pub regex: Option<S<String>>,
    pub scope: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokensCond {
    pub min: Option<S<u64>>,
    pub max: Option<S<u64>>,
}
