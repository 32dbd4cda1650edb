//! Virtual model → pool: the first route rule whose conditions all hold picks its split (else
//! the model's default split), and the split picks a pool by weight.

use crate::facts::Facts;
use crate::model::{Condition, ContentScope, ContentTest, HeaderTest, VirtualModel};

/// The outcome of resolving a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Pool index.
    pub pool: usize,
    /// Index of the route rule that matched (`None` = the default).
    pub rule: Option<usize>,
}

fn holds(c: &Condition, vm: &VirtualModel, f: &Facts<'_>) -> bool {
    match c {
        Condition::Header { name, test } => {
            let Some(v) = f.headers.get(name) else {
                return false;
            };
            match test {
                HeaderTest::Present => true,
                HeaderTest::Equals(s) => v == s.as_bytes(),
                HeaderTest::Regex(re) => std::str::from_utf8(v).is_ok_and(|v| re.is_match(v)),
            }
        }
        Condition::Content { scope, test } => {
            let Some(t) = f.text() else { return false };
            let text = match scope {
                ContentScope::User => &t.user,
                ContentScope::LastUser => &t.last_user,
                ContentScope::All => &t.all,
            };
            match test {
                ContentTest::Keywords(ac) => ac.is_match(text),
                ContentTest::Regex(re) => re.is_match(text),
            }
        }
        Condition::ContextTokens { min, max } => {
            let Some(n) = f.prompt_tokens(vm.tokenizer) else {
                return false;
            };
            let n = n as u64;
            min.is_none_or(|m| n >= m) && max.is_none_or(|m| n < m)
        }
    }
}

/// Resolve `vm` for the request described by `f`; `r` is a random number for weighted splits.
pub fn resolve(vm: &VirtualModel, f: &Facts<'_>, r: u64) -> Option<Resolved> {
    for (i, rule) in vm.routes.iter().enumerate() {
        if rule.when.iter().all(|c| holds(c, vm, f)) {
            return rule.split.choose(r).map(|pool| Resolved {
                pool,
                rule: Some(i),
            });
        }
    }
    vm.default
        .choose(r)
        .map(|pool| Resolved { pool, rule: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{NoHeaders, Pairs};
    use crate::model::{RouteRule, Split};
    use crate::tokens::Tokenizer;

    fn split(p: usize) -> Split {
        Split {
            targets: vec![(p, 1)],
        }
    }

    fn vm(routes: Vec<(Vec<Condition>, usize)>) -> VirtualModel {
        VirtualModel {
            routes: routes
                .into_iter()
                .enumerate()
                .map(|(i, (when, p))| RouteRule {
                    name: format!("r{i}"),
                    when,
                    split: split(p),
                })
                .collect(),
            default: split(0),
            tokenizer: Tokenizer::Cl100k,
        }
    }

    fn chat(text: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"model":"m","messages":[
            {"role":"system","content":"you are a helpful assistant about SQL"},
            {"role":"user","content":text}]}))
        .unwrap()
    }

    #[test]
    fn header_rules() {
        let m = vm(vec![
            (
                vec![Condition::Header {
                    name: "x-tier".into(),
                    test: HeaderTest::Equals("gold".into()),
                }],
                1,
            ),
            (
                vec![Condition::Header {
                    name: "x-team".into(),
                    test: HeaderTest::Regex(regex::Regex::new("^ml-").unwrap()),
                }],
                2,
            ),
            (
                vec![Condition::Header {
                    name: "x-debug".into(),
                    test: HeaderTest::Present,
                }],
                3,
            ),
        ]);
        let body = chat("hi");
        let run = |h: &[(&str, &str)]| resolve(&m, &Facts::new(&Pairs(h), &body), 0).unwrap();
        assert_eq!(run(&[("X-Tier", "gold")]).pool, 1);
        assert_eq!(
            run(&[("x-tier", "Gold")]).pool,
            0,
            "equals is case-sensitive"
        );
        assert_eq!(run(&[("x-team", "ml-infra")]).pool, 2);
        assert_eq!(run(&[("x-team", "web-ml-")]).pool, 0);
        assert_eq!(
            run(&[("x-debug", "")]),
            Resolved {
                pool: 3,
                rule: Some(2)
            }
        );
        assert_eq!(
            run(&[]),
            Resolved {
                pool: 0,
                rule: None
            }
        );
    }

    #[test]
    fn content_rules_read_the_chosen_scope() {
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(["sql"])
            .unwrap();
        let m = vm(vec![(
            vec![Condition::Content {
                scope: ContentScope::User,
                test: ContentTest::Keywords(ac.clone()),
            }],
            1,
        )]);
        let yes = chat("write a SQL query");
        let no = chat("write a poem");
        assert_eq!(
            resolve(&m, &Facts::new(&NoHeaders, &yes), 0).unwrap().pool,
            1
        );
        // The system prompt mentions SQL, but the rule reads user messages only.
        assert_eq!(
            resolve(&m, &Facts::new(&NoHeaders, &no), 0).unwrap().pool,
            0
        );
        let all = vm(vec![(
            vec![Condition::Content {
                scope: ContentScope::All,
                test: ContentTest::Keywords(ac),
            }],
            1,
        )]);
        assert_eq!(
            resolve(&all, &Facts::new(&NoHeaders, &no), 0).unwrap().pool,
            1
        );
    }

    #[test]
    fn context_length_rules_use_token_counts_and_are_lazy() {
        let m = vm(vec![
            (
                vec![
                    Condition::Header {
                        name: "x-never".into(),
                        test: HeaderTest::Present,
                    },
                    Condition::ContextTokens {
                        min: Some(0),
                        max: None,
                    },
                ],
                3,
            ),
            (
                vec![Condition::ContextTokens {
                    min: Some(100),
                    max: None,
                }],
                2,
            ),
        ]);
        let short = chat("hello");
        let long = chat(&"hello world ".repeat(100));
        let f = Facts::new(&NoHeaders, &short);
        assert_eq!(resolve(&m, &f, 0).unwrap().pool, 0);
        let counted = f.counted_tokens().unwrap();
        assert!(counted < 100, "{counted}");
        assert_eq!(
            resolve(&m, &Facts::new(&NoHeaders, &long), 0).unwrap().pool,
            2
        );
        // No rule needs tokens → none are counted.
        let h = vm(vec![(
            vec![Condition::Header {
                name: "x".into(),
                test: HeaderTest::Present,
            }],
            1,
        )]);
        let f = Facts::new(&NoHeaders, &long);
        resolve(&h, &f, 0);
        assert_eq!(f.counted_tokens(), None);
    }

    #[test]
    fn weighted_split_follows_weights() {
        let s = Split {
            targets: vec![(0, 90), (1, 10)],
        };
        let mut counts = [0u32; 2];
        for r in 0..10_000u64 {
            counts[s
                .choose(r.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7)
                .unwrap()] += 1;
        }
        assert!((8_800..=9_200).contains(&counts[0]), "{counts:?}");
    }
}
