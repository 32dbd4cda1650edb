//! Fleet configuration: what backends to start, with which personality, mode and faults.
//!
//! Deserialized straight from TOML with `deny_unknown_fields`, so a typo in `fleet.toml` is an
//! error naming the field (toml's message carries line and column) rather than a silently ignored
//! knob. Every field has a default so a minimal config is `[[backends]] name = "a"`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::engine::{EngineParams, Personality};
use crate::fault::FaultSpec;

/// How a backend produces its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Iteration-level engine model: realistic TTFT/ITL, queueing, KV cache, prefix reuse.
    #[default]
    Model,
    /// No engine, no delays, precomputed bytes: for measuring the gateway, not the model.
    Instant,
}

/// The whole fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Seed for every random source (engine jitter, probabilistic faults).
    pub seed: u64,
    /// Tokio worker threads for the fleet's runtime.
    pub threads: usize,
    /// The simulated backends.
    pub backends: Vec<BackendConfig>,
}

/// One simulated inference server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Unique name, used by the [`crate::Fleet`] API and in records.
    pub name: String,
    /// Which server's HTTP surface and scheduler to imitate.
    pub personality: Personality,
    /// API (business) listener address; `127.0.0.1:0` picks an ephemeral port.
    pub listen: String,
    /// MindIE management listener (health, `/v1/status`); ignored for other personalities.
    pub management_listen: Option<String>,
    /// MindIE metrics listener (`/metrics`); ignored for other personalities.
    pub metrics_listen: Option<String>,
    /// Model name reported in `/v1/models`, responses and the `model_name` metric label.
    pub model: String,
    /// Engine model or instant canned answers.
    pub mode: Mode,
    /// Instant mode: content events per streamed response.
    pub instant_events: u32,
    /// Model mode: `max_tokens` when the request gives none.
    pub default_max_tokens: u32,
    /// Engine latency and capacity parameters (model mode).
    pub engine: EngineParams,
    /// Backend-wide fault spec (see [`crate::fault`]), applied to inference requests.
    pub faults: Option<String>,
    /// Probability that a request gets the backend-wide fault; 1.0 = every request.
    pub fault_probability: f64,
    /// Append one JSON line per finished request to this file.
    pub record_path: Option<PathBuf>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            threads: 1,
            backends: Vec::new(),
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            personality: Personality::Vllm,
            listen: "127.0.0.1:0".to_string(),
            management_listen: None,
            metrics_listen: None,
            model: "llama-3-8b".to_string(),
            mode: Mode::Model,
            instant_events: 64,
            default_max_tokens: 16,
            engine: EngineParams::default(),
            faults: None,
            fault_probability: 1.0,
            record_path: None,
        }
    }
}

impl FleetConfig {
    /// Parses and validates a TOML fleet description.
    ///
    /// Errors name the offending field: toml's own message (with line and column) for syntax,
    /// type and unknown-field errors, `backends[i].field: ...` for semantic ones.
    pub fn from_toml_str(s: &str) -> Result<Self, String> {
        let cfg: FleetConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A fleet of one backend on an ephemeral loopback port: the usual test fixture.
    pub fn single(name: &str, personality: Personality, mode: Mode) -> Self {
        Self {
            seed: 0,
            threads: 1,
            backends: vec![BackendConfig {
                name: name.to_string(),
                personality,
                mode,
                ..BackendConfig::default()
            }],
        }
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("threads: must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, b) in self.backends.iter().enumerate() {
            if b.name.is_empty() {
                return Err(format!("backends[{i}].name: must not be empty"));
            }
            if !seen.insert(b.name.as_str()) {
                return Err(format!(
                    "backends[{i}].name: duplicate backend name {:?}",
                    b.name
                ));
            }
            for (field, addr) in [
                ("listen", Some(&b.listen)),
                ("management_listen", b.management_listen.as_ref()),
                ("metrics_listen", b.metrics_listen.as_ref()),
            ] {
                if let Some(a) = addr {
                    a.parse::<std::net::SocketAddr>().map_err(|e| {
                        format!("backends[{i}].{field}: {a:?} is not an ip:port address: {e}")
                    })?;
                }
            }
            if !(0.0..=1.0).contains(&b.fault_probability) {
                return Err(format!(
                    "backends[{i}].fault_probability: must be within 0..=1"
                ));
            }
            if let Some(f) = &b.faults {
                FaultSpec::parse(f).map_err(|e| format!("backends[{i}].faults: {e}"))?;
            }
        }
        Ok(())
    }
}
