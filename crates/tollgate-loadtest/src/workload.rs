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
//! - [`FixedSpec`]: every request the same shape (exact input and output lengths): the classic
//!   gateway-overhead case (small chat requests, 64-event streams, long prompts for scanning).
//! - [`MultiTurnSpec`]: S conversations of T turns. Request `i` is turn `(i / S) % T` of session
//!   `i % S` and carries the whole history of that session (earlier user turns and synthetic
//!   assistant replies, the same bytes every time), so each turn's prompt extends the previous
//!   one — what a chat UI sends. The history is generated, not the server's real replies, so a
//!   turn never waits for the previous one to finish (a closed loop may even send two turns of
//!   one session at once); that keeps request `i` a pure function of `(seed, i)`.

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

/// Fixed lengths: every request asks the same amount (fresh text each time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedSpec {
    /// Tokens of a system prompt shared by every request (0 = none).
    #[serde(default)]
    pub system_tokens: u32,
    /// Tokens of each request's user message.
    pub input_tokens: u32,
    /// `max_tokens` of every request.
    pub output_tokens: u32,
}

/// Multi-turn sessions whose prompts grow turn by turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiTurnSpec {
    /// S: concurrent conversations (OpenAI `user` field `s<S>`).
    pub sessions: u32,
    /// T: turns per conversation; after the last turn a session starts over.
    pub turns: u32,
    /// Tokens of a system prompt shared by every session (0 = none).
    #[serde(default)]
    pub system_tokens: u32,
    /// Tokens of each user turn.
    pub user_tokens: u32,
    /// Tokens of each synthetic assistant reply kept in the history.
    pub reply_tokens: u32,
    /// `max_tokens` of every request.
    pub output_tokens: u32,
}

/// Which generator, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkloadSpec {
    /// W1.
    SharedPrefix(SharedPrefixSpec),
    /// W3 / W4.
    Sharegpt(ShareGptSpec),
    /// Fixed input/output lengths.
    Fixed(FixedSpec),
    /// Multi-turn sessions.
    MultiTurn(MultiTurnSpec),
}

/// One generated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// System message (shared across requests: one allocation).
    pub system: Option<Arc<str>>,
    /// Earlier turns, oldest first: (user, assistant) pairs sent before [`Prompt::user`].
    pub history: Vec<(Arc<str>, Arc<str>)>,
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
    Fixed {
        spec: FixedSpec,
        system: Option<Arc<str>>,
    },
    MultiTurn {
        spec: MultiTurnSpec,
        system: Option<Arc<str>>,
        /// `turns[s][k]` = (user, assistant) text of turn k of session s.
        turns: Vec<Vec<(Arc<str>, Arc<str>)>>,
    },
}

/// The shared system prompt of `n` tokens, if any.
fn system_text(seed: u64, n: u32) -> Option<Arc<str>> {
    (n > 0).then(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed ^ TAG_SHARED, 0));
        Arc::from(text::tokens(&mut rng, n as usize))
    })
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
                system: system_text(seed, s.system_tokens),
                spec: s.clone(),
            },
            WorkloadSpec::Fixed(s) => Kind::Fixed {
                system: system_text(seed, s.system_tokens),
                spec: s.clone(),
            },
            WorkloadSpec::MultiTurn(s) => Kind::MultiTurn {
                system: system_text(seed, s.system_tokens),
                // Sessions use shared streams 1.. (0 is the system prompt).
                turns: (0..s.sessions.max(1))
                    .map(|sess| {
                        let mut rng = shared_rng(1 + u64::from(sess));
                        (0..s.turns.max(1))
                            .map(|_| {
                                let u = text::tokens(&mut rng, s.user_tokens.max(1) as usize);
                                let a = text::tokens(&mut rng, s.reply_tokens.max(1) as usize);
                                (Arc::from(u), Arc::from(a))
                            })
                            .collect()
                    })
                    .collect(),
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
                    history: Vec::new(),
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
                    history: Vec::new(),
                }
            }
            Kind::Fixed { spec, system } => Prompt {
                system: system.clone(),
                user: text::tokens(&mut rng, spec.input_tokens.max(1) as usize),
                prompt_tokens: spec.system_tokens + spec.input_tokens.max(1),
                max_tokens: spec.output_tokens.max(1),
                group: None,
                user_id: None,
                history: Vec::new(),
            },
            Kind::MultiTurn {
                spec,
                system,
                turns,
            } => {
                let sessions = turns.len().max(1) as u64;
                let sess = (i % sessions) as usize;
                let conv = turns.get(sess).map_or(&[][..], Vec::as_slice);
                let turn = ((i / sessions) % conv.len().max(1) as u64) as usize;
                let history: Vec<(Arc<str>, Arc<str>)> = conv.iter().take(turn).cloned().collect();
                let user = conv
                    .get(turn)
                    .map_or_else(String::new, |(u, _)| u.to_string());
                let (ut, rt) = (spec.user_tokens.max(1), spec.reply_tokens.max(1));
                Prompt {
                    system: system.clone(),
                    user,
                    prompt_tokens: spec.system_tokens + (turn as u32 + 1) * ut + turn as u32 * rt,
                    max_tokens: spec.output_tokens.max(1),
                    group: Some(sess as u32),
                    user_id: Some(format!("s{sess}")),
                    history,
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

    #[test]
    fn fixed_requests_have_exact_lengths_and_fresh_text() {
        let spec = WorkloadSpec::Fixed(FixedSpec {
            system_tokens: 20,
            input_tokens: 50,
            output_tokens: 64,
        });
        let w = Workload::build(&spec, 3);
        let (a, b) = (w.request(0), w.request(1));
        for p in [&a, &b] {
            assert_eq!(p.prompt_tokens, 70);
            assert_eq!(p.max_tokens, 64);
            assert_eq!(text::count(&p.user), 50);
            assert_eq!(p.system.as_deref().map(text::count), Some(20));
        }
        assert_ne!(a.user, b.user);
        assert_eq!(a.system, b.system);
    }

    #[test]
    fn multi_turn_prompts_extend_the_previous_turn_of_their_session() {
        let spec = WorkloadSpec::MultiTurn(MultiTurnSpec {
            sessions: 3,
            turns: 4,
            system_tokens: 10,
            user_tokens: 12,
            reply_tokens: 8,
            output_tokens: 16,
        });
        let w = Workload::build(&spec, 9);
        // Session 1: requests 1, 4, 7, 10 are its turns 0..3; request 13 starts it over.
        let t: Vec<Prompt> = [1, 4, 7, 10, 13].iter().map(|&i| w.request(i)).collect();
        for (k, p) in t.iter().take(4).enumerate() {
            assert_eq!(p.user_id.as_deref(), Some("s1"));
            assert_eq!(p.history.len(), k);
            assert_eq!(p.prompt_tokens, 10 + (k as u32 + 1) * 12 + k as u32 * 8);
            let words: u32 = p.system.as_deref().map_or(0, text::count)
                + p.history
                    .iter()
                    .map(|(u, a)| text::count(u) + text::count(a))
                    .sum::<u32>()
                + text::count(&p.user);
            assert_eq!(words, p.prompt_tokens, "turn {k}");
            if k > 0 {
                let prev = &t[k - 1];
                assert_eq!(&p.history[..k - 1], &prev.history[..]);
                assert_eq!(&*p.history[k - 1].0, prev.user.as_str());
            }
        }
        assert_eq!(t[4], t[0], "after the last turn a session starts over");
        assert_ne!(
            w.request(4).history,
            w.request(5).history,
            "sessions differ"
        );
    }
}
