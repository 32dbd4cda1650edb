//! Seeded request generators: what each request asks (prompt text, output length), never when.
//!
//! Request `i` of a run is a pure function of `(seed, i)`: its own RNG stream is derived with
//! [`mix_seed`], so the same scenario and seed produce byte-identical prompts whatever the
//! arrival timing, concurrency or target, and two contenders in a side-by-side run see exactly
//! the same requests in the same order. Shared texts (W1 group contexts, the W3 system prompt)
//! are generated once at [`Workload::build`].
//!
//! - [`SharedPrefixSpec`] (routing.md §4.1 W1): G groups × a P-token system context, U users per
//!   group; each request = its group's context + a fresh Q-token question, O output tokens.
//!   Groups are picked uniformly or by Zipf(s).
//! - [`ShareGptSpec`] (W3, and W4 with [`LongTail`]): one common system prompt, lognormal input
//!   and output lengths (parameterised by their means), optionally a fraction of long inputs
//!   drawn from a capped Pareto tail.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dist::{Zipf, lognormal_with_mean, mix_seed, pareto};
use crate::text;

/// Seed tags: independent streams for request bodies and shared texts.
const TAG_REQUEST: u64 = 0x5245_5155;
const TAG_SHARED: u64 = 0x5348_4152;

/// W1: shared-prefix groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixSpec {
    /// G: number of groups (tenants), each with its own system context.
    pub groups: u32,
    /// P: tokens of each group's system context.
    pub prefix_tokens: u32,
    /// U: users per group (sent as the OpenAI `user` field `g<G>-u<U>`).
    pub users_per_group: u32,
    /// Q: tokens of each request's fresh question.
    pub question_tokens: u32,
    /// O: `max_tokens` of every request.
    pub output_tokens: u32,
    /// Zipf exponent for picking a group; 0 = uniform.
    #[serde(default)]
    pub group_zipf_s: f64,
}

/// The heavy tail of W4: a fraction of requests with long, Pareto-distributed inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongTail {
    /// Share of requests (0–1) that get a long input.
    pub fraction: f64,
    /// Pareto minimum (tokens).
    pub min_tokens: u32,
    /// Pareto tail index; smaller = heavier tail.
    pub alpha: f64,
    /// Cap (tokens): keeps one request from exceeding a backend's KV capacity.
    pub max_tokens: u32,
}

/// W3 (and W4's body): ShareGPT-like lengths with low reuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareGptSpec {
    /// Tokens of the one system prompt every request shares.
    pub system_tokens: u32,
    /// Mean of the lognormal user-input length (tokens).
    pub input_mean: f64,
    /// σ of the input lognormal's underlying normal.
    pub input_sigma: f64,
    /// Input length floor (tokens).
    pub input_min: u32,
    /// Input length cap (tokens).
    pub input_max: u32,
    /// Mean of the lognormal output length (`max_tokens`).
    pub output_mean: f64,
    /// σ of the output lognormal's underlying normal.
    pub output_sigma: f64,
    /// Output length floor.
    pub output_min: u32,
    /// Output length cap.
    pub output_max: u32,
    /// Optional long-input tail (W4).
    #[serde(default)]
    pub long: Option<LongTail>,
}

/// Which generator, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkloadSpec {
    /// W1.
    SharedPrefix(SharedPrefixSpec),
    /// W3 / W4.
    Sharegpt(ShareGptSpec),
}

/// One generated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// System message (shared across requests: one allocation).
    pub system: Option<Arc<str>>,
    /// User message.
    pub user: String,
    /// Prompt tokens as generated (system + user) under the fleet's tokenizer.
    pub prompt_tokens: u32,
    /// `max_tokens`.
    pub max_tokens: u32,
    /// W1 group, for tests and sampling.
    pub group: Option<u32>,
    /// OpenAI `user` field.
    pub user_id: Option<String>,
}

/// A built generator: shared texts precomputed, ready to produce request `i`.
#[derive(Debug, Clone)]
pub struct Workload {
    seed: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    SharedPrefix {
        spec: SharedPrefixSpec,
        contexts: Vec<Arc<str>>,
        pick: Zipf,
    },
    ShareGpt {
        spec: ShareGptSpec,
        system: Option<Arc<str>>,
    },
}

impl Workload {
    /// Precomputes the shared texts. Cost: G × P tokens of text for W1 (24 × 1500 ≈ 180 KB).
    pub fn build(spec: &WorkloadSpec, seed: u64) -> Workload {
        let shared_rng = |i: u64| ChaCha8Rng::seed_from_u64(mix_seed(seed ^ TAG_SHARED, i));
        let kind = match spec {
            WorkloadSpec::SharedPrefix(s) => Kind::SharedPrefix {
                contexts: (0..s.groups)
                    .map(|g| {
                        Arc::from(text::tokens(
                            &mut shared_rng(u64::from(g)),
                            s.prefix_tokens as usize,
                        ))
                    })
                    .collect(),
                pick: Zipf::new(s.groups as usize, s.group_zipf_s),
                spec: s.clone(),
            },
            WorkloadSpec::Sharegpt(s) => Kind::ShareGpt {
                system: (s.system_tokens > 0)
                    .then(|| Arc::from(text::tokens(&mut shared_rng(0), s.system_tokens as usize))),
                spec: s.clone(),
            },
        };
        Workload { seed, kind }
    }

    /// Request number `i` (0-based): a pure function of the seed and `i`.
    pub fn request(&self, i: u64) -> Prompt {
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(self.seed ^ TAG_REQUEST, i));
        match &self.kind {
            Kind::SharedPrefix {
                spec,
                contexts,
                pick,
            } => {
                let g = pick.sample(&mut rng);
                let u = rng.random_range(0..spec.users_per_group.max(1));
                let user = text::tokens(&mut rng, spec.question_tokens as usize);
                Prompt {
                    system: contexts.get(g).cloned(),
                    user,
                    prompt_tokens: spec.prefix_tokens + spec.question_tokens,
                    max_tokens: spec.output_tokens,
                    group: Some(g as u32),
                    user_id: Some(format!("g{g}-u{u}")),
                }
            }
            Kind::ShareGpt { spec, system } => {
                let long = spec
                    .long
                    .as_ref()
                    .filter(|l| rng.random::<f64>() < l.fraction);
                let input = match long {
                    Some(l) => pareto(&mut rng, f64::from(l.min_tokens), l.alpha)
                        .min(f64::from(l.max_tokens)),
                    None => lognormal_with_mean(&mut rng, spec.input_mean, spec.input_sigma)
                        .clamp(f64::from(spec.input_min), f64::from(spec.input_max)),
                }
                .round() as u32;
                let output = lognormal_with_mean(&mut rng, spec.output_mean, spec.output_sigma)
                    .clamp(f64::from(spec.output_min), f64::from(spec.output_max))
                    .round() as u32;
                let user = text::tokens(&mut rng, input.max(1) as usize);
                Prompt {
                    system: system.clone(),
                    user,
                    prompt_tokens: spec.system_tokens + input.max(1),
                    max_tokens: output.max(1),
                    group: None,
                    user_id: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn w1() -> WorkloadSpec {
        WorkloadSpec::SharedPrefix(SharedPrefixSpec {
            groups: 6,
            prefix_tokens: 300,
            users_per_group: 4,
            question_tokens: 40,
            output_tokens: 16,
            group_zipf_s: 0.0,
        })
    }

    #[test]
    fn a_request_depends_only_on_seed_and_index() {
        let a = Workload::build(&w1(), 7);
        let b = Workload::build(&w1(), 7);
        assert_eq!(a.request(5), b.request(5));
        assert_ne!(a.request(5), a.request(6));
        let c = Workload::build(&w1(), 8);
        assert_ne!(a.request(5).user, c.request(5).user);
    }

    #[test]
    fn same_group_shares_the_whole_system_context() {
        let w = Workload::build(&w1(), 1);
        let reqs: Vec<Prompt> = (0..200).map(|i| w.request(i)).collect();
        for r in &reqs {
            let same = reqs.iter().filter(|o| o.group == r.group);
            for o in same {
                assert!(Arc::ptr_eq(
                    r.system.as_ref().unwrap(),
                    o.system.as_ref().unwrap()
                ));
            }
        }
        let groups: std::collections::BTreeSet<_> = reqs.iter().map(|r| r.group).collect();
        assert_eq!(groups.len(), 6, "uniform pick reaches every group");
    }
}
