//! Scenario files: one TOML file per workload and load level (`loadtest/route/*.toml`).
//!
//! Three steps, as everywhere in tollgate (STYLE.md §3): the file is read into a TOML table, CLI
//! overrides are applied to the table (so an override is checked exactly like the file), the
//! table is deserialized into [`RawScenario`] with `deny_unknown_fields`, then validated into a
//! [`Plan`] whose numbers are known to be usable. Errors name the file and the field.
//!
//! ```toml
//! name = "w1-shared-prefix"
//! seed = 1
//! duration_s = 30          # stop sending after this
//! warmup_s = 5             # requests sent before this are not measured
//! max_requests = 100000    # and/or after this many
//! timeout_s = 60           # per request
//! stream = true
//! [arrival]
//! kind = "poisson"         # closed {concurrency} | poisson {rate} | gamma {rate, cv}
//! rate = 20.0              # | on_off {rate, burst_factor, burst_s, period_s}
//! [workload]
//! kind = "shared_prefix"   # or "sharegpt" (see workload.rs for the fields)
//! groups = 24
//! ...
//! [slo]
//! ttft_ms = 2000
//! tpot_ms = 100
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::arrival::ArrivalSpec;
use crate::stats::Slo;
use crate::workload::WorkloadSpec;

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Short name; the default report label.
    pub name: String,
    /// Free text for the report.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of every random draw (requests and arrivals).
    #[serde(default)]
    pub seed: u64,
    /// Model name sent in requests (the CLI `--model` wins).
    #[serde(default)]
    pub model: Option<String>,
    /// Stop sending after this many seconds.
    pub duration_s: f64,
    /// Requests sent before this are excluded from the statistics.
    #[serde(default)]
    pub warmup_s: f64,
    /// Stop sending after this many requests (warm-up included).
    #[serde(default)]
    pub max_requests: Option<u64>,
    /// Per-request timeout (s).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// `stream: true` (default) or false.
    #[serde(default = "default_true")]
    pub stream: bool,
    /// Send `ignore_eos: true` (vLLM/SGLang extension) so real servers produce exactly
    /// `max_tokens`.
    #[serde(default)]
    pub ignore_eos: bool,
    /// When requests are sent.
    pub arrival: ArrivalSpec,
    /// What they ask.
    pub workload: WorkloadSpec,
    /// Goodput objectives.
    #[serde(default)]
    pub slo: Slo,
}

fn default_timeout() -> f64 {
    60.0
}

fn default_true() -> bool {
    true
}

/// A validated scenario, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Seed.
    pub seed: u64,
    /// Model name (may be overridden by the run options).
    pub model: Option<String>,
    /// Sending stops after this (s).
    pub duration_s: f64,
    /// Warm-up (s).
    pub warmup_s: f64,
    /// Request cap.
    pub max_requests: u64,
    /// Per-request timeout (s).
    pub timeout_s: f64,
    /// Streaming.
    pub stream: bool,
    /// `ignore_eos`.
    pub ignore_eos: bool,
    /// Arrivals.
    pub arrival: ArrivalSpec,
    /// Workload.
    pub workload: WorkloadSpec,
    /// SLOs.
    pub slo: Slo,
}

/// Command-line overrides, applied to the TOML table before validation.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `arrival.rate`.
    pub rate: Option<f64>,
    /// `arrival.concurrency`.
    pub concurrency: Option<u32>,
    /// `duration_s`.
    pub duration_s: Option<f64>,
    /// `warmup_s`.
    pub warmup_s: Option<f64>,
    /// `seed`.
    pub seed: Option<u64>,
    /// `max_requests`.
    pub max_requests: Option<u64>,
    /// `timeout_s`.
    pub timeout_s: Option<f64>,
    /// `slo.ttft_ms`.
    pub slo_ttft_ms: Option<f64>,
    /// `slo.tpot_ms`.
    pub slo_tpot_ms: Option<f64>,
    /// Generic `dotted.path=value` settings (value parsed as TOML, else taken as a string).
    pub set: Vec<String>,
}

/// Reads, overrides and validates a scenario file.
pub fn load(path: &Path, o: &Overrides) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    from_str(&text, o).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses, overrides and validates scenario text.
pub fn from_str(text: &str, o: &Overrides) -> Result<Plan, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    apply_overrides(&mut table, o)?;
    let raw: RawScenario = table
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    validate(raw)
}

fn apply_overrides(t: &mut toml::Table, o: &Overrides) -> Result<(), String> {
    let mut sets: Vec<(String, toml::Value)> = Vec::new();
    if let Some(v) = o.rate {
        sets.push(("arrival.rate".into(), toml::Value::Float(v)));
    }
    if let Some(v) = o.concurrency {
        sets.push((
            "arrival.concurrency".into(),
            toml::Value::Integer(i64::from(v)),
        ));
    }
    let float = |k: &str, v: Option<f64>| v.map(|v| (k.to_string(), toml::Value::Float(v)));
    let int = |k: &str, v: Option<u64>| {
        v.map(|v| {
            (
                k.to_string(),
                toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX)),
            )
        })
    };
    sets.extend(float("duration_s", o.duration_s));
    sets.extend(float("warmup_s", o.warmup_s));
    sets.extend(float("timeout_s", o.timeout_s));
    sets.extend(float("slo.ttft_ms", o.slo_ttft_ms));
    sets.extend(float("slo.tpot_ms", o.slo_tpot_ms));
    sets.extend(int("seed", o.seed));
    sets.extend(int("max_requests", o.max_requests));
    for s in &o.set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s}: expected key=value"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.to_string()));
        sets.push((k.trim().to_string(), value));
    }
    for (key, value) in sets {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().ok_or("empty override key")?;
        let mut cur = &mut *t;
        for p in parts {
            cur = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| format!("override {key}: {p} is not a table"))?;
        }
        cur.insert(last.to_string(), value);
    }
    Ok(())
}

fn at_least_one(fields: &[(&str, u32)]) -> Result<(), String> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((n, _)) => Err(format!("{n}: must be at least 1")),
        None => Ok(()),
    }
}

fn validate(r: RawScenario) -> Result<Plan, String> {
    let pos = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(format!("{name}: must be a positive number, got {v}"))
        }
    };
    pos("duration_s", r.duration_s)?;
    pos("timeout_s", r.timeout_s)?;
    if !(r.warmup_s.is_finite() && r.warmup_s >= 0.0 && r.warmup_s < r.duration_s) {
        return Err(format!(
            "warmup_s: must be ≥ 0 and below duration_s ({}), got {}",
            r.duration_s, r.warmup_s
        ));
    }
    r.arrival.validate()?;
    match &r.workload {
        WorkloadSpec::SharedPrefix(w) => {
            at_least_one(&[
                ("workload.groups", w.groups),
                ("workload.prefix_tokens", w.prefix_tokens),
                ("workload.users_per_group", w.users_per_group),
                ("workload.question_tokens", w.question_tokens),
                ("workload.output_tokens", w.output_tokens),
            ])?;
            if !(w.group_zipf_s.is_finite() && w.group_zipf_s >= 0.0) {
                return Err("workload.group_zipf_s: must be ≥ 0".into());
            }
        }
        WorkloadSpec::Sharegpt(w) => {
            pos("workload.input_mean", w.input_mean)?;
            pos("workload.output_mean", w.output_mean)?;
            for (n, v) in [
                ("workload.input_sigma", w.input_sigma),
                ("workload.output_sigma", w.output_sigma),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(format!("{n}: must be ≥ 0"));
                }
            }
            if w.input_min == 0 || w.input_min > w.input_max {
                return Err("workload.input_min/input_max: need 1 ≤ min ≤ max".into());
            }
            if w.output_min == 0 || w.output_min > w.output_max {
                return Err("workload.output_min/output_max: need 1 ≤ min ≤ max".into());
            }
            if let Some(l) = &w.long {
                if !(0.0..=1.0).contains(&l.fraction) {
                    return Err("workload.long.fraction: must be within 0..=1".into());
                }
                pos("workload.long.alpha", l.alpha)?;
                if l.min_tokens == 0 || l.min_tokens > l.max_tokens {
                    return Err("workload.long.min_tokens/max_tokens: need 1 ≤ min ≤ max".into());
                }
            }
        }
        WorkloadSpec::Fixed(w) => at_least_one(&[
            ("workload.input_tokens", w.input_tokens),
            ("workload.output_tokens", w.output_tokens),
        ])?,
        WorkloadSpec::MultiTurn(w) => at_least_one(&[
            ("workload.sessions", w.sessions),
            ("workload.turns", w.turns),
            ("workload.user_tokens", w.user_tokens),
            ("workload.reply_tokens", w.reply_tokens),
            ("workload.output_tokens", w.output_tokens),
        ])?,
    }
    for (n, v) in [
        ("slo.ttft_ms", r.slo.ttft_ms),
        ("slo.tpot_ms", r.slo.tpot_ms),
    ] {
        if let Some(v) = v {
            pos(n, v)?;
        }
    }
    Ok(Plan {
        name: r.name,
        description: r.description,
        seed: r.seed,
        model: r.model,
        duration_s: r.duration_s,
        warmup_s: r.warmup_s,
        max_requests: r.max_requests.unwrap_or(u64::MAX),
        timeout_s: r.timeout_s,
        stream: r.stream,
        ignore_eos: r.ignore_eos,
        arrival: r.arrival,
        workload: r.workload,
        slo: r.slo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::ArrivalSpec;

    const W1: &str = r#"
name = "w1"
seed = 3
duration_s = 10
warmup_s = 2
[arrival]
kind = "poisson"
rate = 5.0
[workload]
kind = "shared_prefix"
groups = 4
prefix_tokens = 100
users_per_group = 2
question_tokens = 10
output_tokens = 8
[slo]
ttft_ms = 500
"#;

    #[test]
    fn a_scenario_parses_with_defaults() {
        let p = from_str(W1, &Overrides::default()).unwrap();
        assert_eq!(p.arrival, ArrivalSpec::Poisson { rate: 5.0 });
        assert!(p.stream);
        assert_eq!(p.timeout_s, 60.0);
        assert_eq!(p.max_requests, u64::MAX);
        assert_eq!(p.slo.ttft_ms, Some(500.0));
    }

    #[test]
    fn overrides_apply_before_validation() {
        let o = Overrides {
            rate: Some(9.0),
            seed: Some(11),
            duration_s: Some(4.0),
            set: vec![
                "workload.groups=7".into(),
                "workload.group_zipf_s=1.1".into(),
            ],
            ..Overrides::default()
        };
        let p = from_str(W1, &o).unwrap();
        assert_eq!(p.arrival, ArrivalSpec::Poisson { rate: 9.0 });
        assert_eq!(p.seed, 11);
        let WorkloadSpec::SharedPrefix(w) = p.workload else {
            panic!("kind")
        };
        assert_eq!((w.groups, w.group_zipf_s), (7, 1.1));
        let bad = Overrides {
            warmup_s: Some(20.0),
            ..Overrides::default()
        };
        assert!(from_str(W1, &bad).unwrap_err().contains("warmup_s"));
    }

    #[test]
    fn unknown_and_misplaced_fields_are_errors_naming_the_field() {
        let typo = W1.replace("groups = 4", "grups = 4");
        let e = from_str(&typo, &Overrides::default()).unwrap_err();
        assert!(e.contains("grups"), "{e}");
        let e = from_str(
            W1,
            &Overrides {
                concurrency: Some(4),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("concurrency"), "{e}");
        let zero = W1.replace("groups = 4", "groups = 0");
        assert!(
            from_str(&zero, &Overrides::default())
                .unwrap_err()
                .contains("workload.groups")
        );
    }
}
