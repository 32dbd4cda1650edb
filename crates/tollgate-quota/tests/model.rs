//! State-machine property test: one token cell driven through random admit / settle / drop /
//! extend / clock-advance sequences, checked step by step against a trivial reference model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use tollgate_quota::{
    Admission, Estimate, Kind, Overrun, QuotaShared, TokenKind, Usage, WorkerQuota,
};

#[derive(Clone, Debug)]
enum Op {
    Admit(u64, u64),
    Settle(usize, u64),
    Drop(usize),
    Extend(usize, u64),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..60, 0u64..120).prop_map(|(p, c)| Op::Admit(p, c)),
        2 => (any::<usize>(), 0u64..250).prop_map(|(i, a)| Op::Settle(i, a)),
        1 => any::<usize>().prop_map(Op::Drop),
        2 => (any::<usize>(), 0u64..80).prop_map(|(i, m)| Op::Extend(i, m)),
        1 => (0i64..40_000).prop_map(Op::Advance),
    ]
}

/// Reference model of one outstanding admission.
struct M {
    window: i64,
    reserved: u64,
    prior: u64,
}

fn fits(used: u64, amount: u64, limit: u64) -> bool {
    used < limit && used + amount <= limit
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn single_cell_matches_reference_model(
        limit in 0u64..600,
        cut in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let shared = QuotaShared::new(None);
        let mut w = WorkerQuota::new(shared.clone());
        let mut r = rule("t", Kind::Tokens(TokenKind::Total), limit, MIN);
        r.stream_overrun = if cut { Overrun::Cut } else { Overrun::Allow };
        let rs = rules(vec![r]);
        let sj = subj("k", "t", "m");

        let mut now = T0;
        let mut win = |now: i64| now.div_euclid(60_000);
        // Model: usage per current window.
        let mut used: std::collections::HashMap<i64, u64> = Default::default();
        let mut open: Vec<(Admission, M)> = Vec::new();

        for op in ops {
            let cw = win(now);
            match op {
                Op::Admit(p, c) => {
                    let u = used.entry(cw).or_default();
                    let want = fits(*u, p + c, limit);
                    let got = w.admit(&rs, &sj, Estimate { prompt: p, completion: c }, now);
                    prop_assert_eq!(got.is_ok(), want, "admit {}+{} used {} limit {}", p, c, *u, limit);
                    if let Ok(a) = got {
                        *u += p + c;
                        prop_assert!(*u <= limit);
                        open.push((a, M { window: cw, reserved: p + c, prior: 0 }));
                    }
                }
                Op::Settle(i, actual) if !open.is_empty() => {
                    let (a, m) = open.swap_remove(i % open.len());
                    let s = a.settle(Usage { prompt: 0, completion: actual }, now);
                    prop_assert_eq!(s.reserved, m.reserved + m.prior);
                    prop_assert_eq!(s.actual, actual);
                    if m.window == cw {
                        let u = used.entry(cw).or_default();
                        prop_assert!(*u >= m.reserved, "used would go negative");
                        *u = *u - m.reserved + actual.saturating_sub(m.prior);
                    }
                }
                Op::Drop(i) if !open.is_empty() => {
                    let (a, m) = open.swap_remove(i % open.len());
                    drop(a);
                    if m.window == cw {
                        let u = used.entry(cw).or_default();
                        prop_assert!(*u >= m.reserved, "used would go negative");
                        *u -= m.reserved;
                    }
                }
                Op::Extend(i, more) if !open.is_empty() => {
                    let n = i % open.len();
                    let u = used.entry(cw).or_default();
                    let want = !cut || fits(*u, more, limit);
                    let (a, m) = &mut open[n];
                    prop_assert_eq!(a.extend_completion(more, now), want);
                    if want {
                        *u += more;
                        if cut { prop_assert!(*u <= limit); }
                        if m.window == cw {
                            m.reserved += more;
                        } else {
                            m.prior += m.reserved;
                            m.reserved = more;
                            m.window = cw;
                        }
                    }
                }
                Op::Advance(d) => now += d,
                _ => {}
            }
            let outstanding: u64 = open.iter().map(|(_, m)| m.reserved).sum();
            prop_assert_eq!(shared.stats().reserved_tokens, outstanding as i64);
        }
        for (a, _) in open.drain(..) {
            a.settle(Usage::default(), now);
        }
        prop_assert_eq!(shared.stats().reserved_tokens, 0);
        let _ = &mut win;
    }
}
