//! Behaviour of each limit kind on one worker with a fake clock: requests per window,
//! concurrency, token reservation and settlement, extension with Cut vs Allow, per-dimension
//! isolation and filters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tollgate_quota::{
    Denied, Dim, Estimate, Kind, Overrun, QuotaShared, Settled, TokenKind, Usage, WorkerQuota,
};

fn worker() -> (std::sync::Arc<QuotaShared>, WorkerQuota) {
    let s = QuotaShared::new(None);
    (s.clone(), WorkerQuota::new(s))
}

fn throttled_retry(d: Denied) -> u64 {
    match d {
        Denied::Throttled { retry_after_s, .. } => retry_after_s,
        Denied::Pending => panic!("pending without a cluster"),
    }
}

#[test]
fn requests_per_window_admits_exactly_limit_then_throttles_until_next_window() {
    let (_s, mut w) = worker();
    let r = rules(vec![rule("rpm", Kind::Requests, 5, MIN)]);
    let sj = subj("k1", "t", "m");
    let now = T0 + 10_500; // 10.5 s into the minute
    for _ in 0..5 {
        let a = w.admit(&r, &sj, Estimate::default(), now).unwrap();
        drop(a); // dropping keeps the request counted
    }
    let d = w.admit(&r, &sj, Estimate::default(), now).unwrap_err();
    match &d {
        Denied::Throttled { rule, kind, .. } => {
            assert_eq!(&**rule, "rpm");
            assert_eq!(*kind, Kind::Requests);
        }
        Denied::Pending => panic!(),
    }
    assert_eq!(throttled_retry(d), 50); // ceil(49.5)
    let d = w
        .admit(&r, &sj, Estimate::default(), T0 + 59_999)
        .unwrap_err();
    assert_eq!(throttled_retry(d), 1);
    // Next window admits again.
    for _ in 0..5 {
        w.admit(&r, &sj, Estimate::default(), T0 + 60_000).unwrap();
    }
    assert!(w.admit(&r, &sj, Estimate::default(), T0 + 60_001).is_err());
}

#[test]
fn concurrency_slots_release_on_settle_and_on_drop() {
    let (s, mut w) = worker();
    let r = rules(vec![rule("conc", Kind::Concurrency, 2, MIN)]);
    let sj = subj("k1", "t", "m");
    let a = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    let b = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    assert_eq!(s.stats().concurrency_in_use, 2);
    let d = w.admit(&r, &sj, Estimate::default(), T0).unwrap_err();
    assert_eq!(throttled_retry(d), 1);
    a.settle(Usage::default(), T0);
    let c = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    assert!(w.admit(&r, &sj, Estimate::default(), T0).is_err());
    drop(b);
    drop(c);
    assert_eq!(s.stats().concurrency_in_use, 0);
    let _x = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    let _y = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
}

#[test]
fn token_kinds_reserve_prompt_completion_or_both() {
    let (s, mut w) = worker();
    let r = rules(vec![
        rule("p", Kind::Tokens(TokenKind::Prompt), 1000, MIN),
        rule("c", Kind::Tokens(TokenKind::Completion), 1000, MIN),
        rule("t", Kind::Tokens(TokenKind::Total), 1000, MIN),
    ]);
    let sj = subj("k1", "t", "m");
    let est = Estimate {
        prompt: 100,
        completion: 300,
    };
    let a = w.admit(&r, &sj, est, T0).unwrap();
    assert_eq!(a.reserved_tokens(), 400);
    assert_eq!(s.stats().reserved_tokens, 100 + 300 + 400);
    // Total: 400 each → two admissions fit (800), the third (1200) does not.
    let b = w.admit(&r, &sj, est, T0).unwrap();
    let d = w.admit(&r, &sj, est, T0).unwrap_err();
    match d {
        Denied::Throttled { rule, .. } => assert_eq!(&*rule, "t"),
        Denied::Pending => panic!(),
    }
    // The refused admission rolled back its prompt/completion reservations: a prompt-heavy
    // request that only a Total rule would block still fits prompt+completion rules.
    let settled = a.settle(
        Usage {
            prompt: 100,
            completion: 50,
        },
        T0 + 1,
    );
    assert_eq!(
        settled,
        Settled {
            reserved: 400,
            actual: 150
        }
    );
    // Refund: total used = 150 + 400 → another 400 fits (950 ≤ 1000).
    let c = w.admit(&r, &sj, est, T0 + 2).unwrap();
    assert!(
        w.admit(
            &r,
            &sj,
            Estimate {
                prompt: 51,
                completion: 0
            },
            T0 + 3
        )
        .is_err()
    );
    drop(b);
    drop(c);
    assert_eq!(s.stats().reserved_tokens, 0);
}

#[test]
fn refused_admission_rolls_back_earlier_rules_including_requests() {
    let (_s, mut w) = worker();
    let r = rules(vec![
        rule("rpm", Kind::Requests, 3, MIN),
        rule("tok", Kind::Tokens(TokenKind::Total), 100, MIN),
    ]);
    let sj = subj("k1", "t", "m");
    let big = Estimate {
        prompt: 200,
        completion: 0,
    };
    for _ in 0..10 {
        assert!(w.admit(&r, &sj, big, T0).is_err());
    }
    // The requests rule was not consumed by the refusals.
    for _ in 0..3 {
        w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    }
}

#[test]
fn settle_above_reservation_drifts_over_the_limit_and_blocks() {
    let (_s, mut w) = worker();
    let r = rules(vec![rule("t", Kind::Tokens(TokenKind::Total), 1000, MIN)]);
    let sj = subj("k1", "t", "m");
    let a = w
        .admit(
            &r,
            &sj,
            Estimate {
                prompt: 10,
                completion: 90,
            },
            T0,
        )
        .unwrap();
    let s = a.settle(
        Usage {
            prompt: 10,
            completion: 1190,
        },
        T0 + 5,
    );
    assert_eq!(
        s,
        Settled {
            reserved: 100,
            actual: 1200
        }
    );
    // Used = 1200 > 1000: exhausted, even a zero estimate is refused.
    assert!(w.admit(&r, &sj, Estimate::default(), T0 + 6).is_err());
    assert!(w.admit(&r, &sj, Estimate::default(), T0 + 60_000).is_ok());
}

#[test]
fn settle_after_window_rollover_goes_nowhere() {
    let (_s, mut w) = worker();
    let r = rules(vec![rule("t", Kind::Tokens(TokenKind::Total), 1000, MIN)]);
    let sj = subj("k1", "t", "m");
    let a = w
        .admit(
            &r,
            &sj,
            Estimate {
                prompt: 0,
                completion: 900,
            },
            T0 + 59_000,
        )
        .unwrap();
    let b = w
        .admit(
            &r,
            &sj,
            Estimate {
                prompt: 0,
                completion: 900,
            },
            T0 + 61_000,
        )
        .unwrap();
    // a's large actual must not be charged to the new window.
    a.settle(
        Usage {
            prompt: 0,
            completion: 5000,
        },
        T0 + 62_000,
    );
    let c = w.admit(
        &r,
        &sj,
        Estimate {
            prompt: 0,
            completion: 100,
        },
        T0 + 62_000,
    );
    assert!(c.is_ok());
    drop(b);
}

#[test]
fn drop_refunds_tokens() {
    let (s, mut w) = worker();
    let r = rules(vec![rule("t", Kind::Tokens(TokenKind::Total), 100, MIN)]);
    let sj = subj("k1", "t", "m");
    let est = Estimate {
        prompt: 60,
        completion: 40,
    };
    for _ in 0..5 {
        let a = w.admit(&r, &sj, est, T0).unwrap();
        drop(a);
    }
    assert_eq!(s.stats().reserved_tokens, 0);
}

#[test]
fn extend_completion_cut_refuses_past_the_limit_allow_records_overrun() {
    let (_s, mut w) = worker();
    let mut cut = rule("cut", Kind::Tokens(TokenKind::Completion), 500, MIN);
    cut.stream_overrun = Overrun::Cut;
    let allow = rule("allow", Kind::Tokens(TokenKind::Total), 120, MIN);
    let r = rules(vec![cut, allow]);
    let sj = subj("k1", "t", "m");
    let mut a = w
        .admit(
            &r,
            &sj,
            Estimate {
                prompt: 20,
                completion: 100,
            },
            T0,
        )
        .unwrap();
    assert_eq!(a.completion_allowance(), Some(100));
    assert!(a.extend_completion(300, T0 + 1)); // cut: 400 ≤ 500; allow: 420 > 120, recorded
    assert_eq!(a.completion_allowance(), Some(400));
    assert_eq!(a.reserved_tokens(), 420);
    assert!(!a.extend_completion(101, T0 + 2)); // cut: 501 > 500
    assert_eq!(a.completion_allowance(), Some(400));
    assert!(a.extend_completion(100, T0 + 3)); // exactly 500
    let s = a.settle(
        Usage {
            prompt: 20,
            completion: 450,
        },
        T0 + 4,
    );
    assert_eq!(
        s,
        Settled {
            reserved: 520,
            actual: 470
        }
    );
    // Cut rule now holds 450 → 50 left.
    let r2 = r.clone();
    assert!(
        w.admit(
            &r2,
            &sj,
            Estimate {
                prompt: 0,
                completion: 51
            },
            T0 + 5
        )
        .is_err()
    );
}

#[test]
fn no_cut_rule_means_no_allowance_and_extend_always_succeeds() {
    let (_s, mut w) = worker();
    let r = rules(vec![rule("t", Kind::Tokens(TokenKind::Total), 10, MIN)]);
    let sj = subj("k1", "t", "m");
    let mut a = w
        .admit(
            &r,
            &sj,
            Estimate {
                prompt: 5,
                completion: 5,
            },
            T0,
        )
        .unwrap();
    assert_eq!(a.completion_allowance(), None);
    assert!(a.extend_completion(1000, T0));
    assert_eq!(a.reserved_tokens(), 1010);
}

#[test]
fn per_dimension_counters_are_isolated_and_empty_per_is_global() {
    let (_s, mut w) = worker();
    let mut per_tenant = rule("pt", Kind::Requests, 2, MIN);
    per_tenant.per = vec![Dim::Tenant, Dim::Model];
    let r = rules(vec![per_tenant]);
    for t in ["a", "b"] {
        for _ in 0..2 {
            w.admit(&r, &subj("k", t, "m"), Estimate::default(), T0)
                .unwrap();
        }
        assert!(
            w.admit(&r, &subj("k", t, "m"), Estimate::default(), T0)
                .is_err()
        );
    }
    // Same tenant, other model: own budget.
    w.admit(&r, &subj("k", "a", "m2"), Estimate::default(), T0)
        .unwrap();
    // Values that would collide under naive joining stay apart.
    w.admit(&r, &subj("k", "x|y", "z"), Estimate::default(), T0)
        .unwrap();
    w.admit(&r, &subj("k", "x", "y|z"), Estimate::default(), T0)
        .unwrap();
    w.admit(&r, &subj("k", "x", "y|z"), Estimate::default(), T0)
        .unwrap();
    w.admit(&r, &subj("k", "x|y", "z"), Estimate::default(), T0)
        .unwrap();

    let mut global = rule("g", Kind::Requests, 3, MIN);
    global.per = vec![];
    let r = rules(vec![global]);
    w.admit(&r, &subj("k1", "a", "m"), Estimate::default(), T0)
        .unwrap();
    w.admit(&r, &subj("k2", "b", "n"), Estimate::default(), T0)
        .unwrap();
    w.admit(&r, &subj("k3", "c", "o"), Estimate::default(), T0)
        .unwrap();
    assert!(
        w.admit(&r, &subj("k4", "d", "p"), Estimate::default(), T0)
            .is_err()
    );
}

#[test]
fn filters_select_requests_with_model_globs_and_exact_tenants() {
    let (_s, mut w) = worker();
    let mut gpt = rule("gpt", Kind::Requests, 1, MIN);
    gpt.filter.models = vec!["gpt-4?-*".into()];
    gpt.filter.tenants = vec!["acme".into()];
    let r = rules(vec![gpt]);
    let hit = subj("k", "acme", "gpt-4o-mini");
    w.admit(&r, &hit, Estimate::default(), T0).unwrap();
    assert!(w.admit(&r, &hit, Estimate::default(), T0).is_err());
    // Not matching the glob, or another tenant: rule does not apply.
    for s in [
        subj("k", "acme", "gpt-4-turbo"),
        subj("k", "acme", "claude"),
        subj("k", "other", "gpt-4o-mini"),
    ] {
        for _ in 0..3 {
            w.admit(&r, &s, Estimate::default(), T0).unwrap();
        }
    }
}

#[test]
fn glob_matching_table() {
    use tollgate_quota::glob_match;
    for (p, t, want) in [
        ("*", "", true),
        ("*", "anything", true),
        ("gpt-*", "gpt-4o", true),
        ("gpt-*", "gpt", false),
        ("g?t", "gpt", true),
        ("g?t", "gt", false),
        ("*-mini", "gpt-4o-mini", true),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ] {
        assert_eq!(glob_match(p, t), want, "{p} vs {t}");
    }
}

#[test]
fn reload_keeps_usage_by_rule_name() {
    let (_s, mut w) = worker();
    let r1 = rules(vec![rule("rpm", Kind::Requests, 3, MIN)]);
    let sj = subj("k", "t", "m");
    for _ in 0..3 {
        w.admit(&r1, &sj, Estimate::default(), T0).unwrap();
    }
    let r2 = rules(vec![rule("rpm", Kind::Requests, 4, MIN)]);
    w.admit(&r2, &sj, Estimate::default(), T0).unwrap();
    assert!(w.admit(&r2, &sj, Estimate::default(), T0).is_err());
    // A fresh worker sees the same counter.
    let mut w2 = WorkerQuota::new(_s.clone());
    assert!(w2.admit(&r2, &sj, Estimate::default(), T0).is_err());
}

#[test]
fn gc_removes_idle_cells_and_workers_recreate_them() {
    let (s, mut w) = worker();
    let r = rules(vec![rule("rpm", Kind::Requests, 1, MIN)]);
    for k in ["a", "b", "c"] {
        w.admit(&r, &subj(k, "t", "m"), Estimate::default(), T0)
            .unwrap();
    }
    assert_eq!(s.stats().cells, 3);
    s.gc(T0 + 60_000); // one window later: still kept
    assert_eq!(s.stats().cells, 3);
    s.gc(T0 + 180_000); // ended more than two windows ago
    assert_eq!(s.stats().cells, 0);
    w.admit(&r, &subj("a", "t", "m"), Estimate::default(), T0 + 180_000)
        .unwrap();
    assert!(
        w.admit(&r, &subj("a", "t", "m"), Estimate::default(), T0 + 180_000)
            .is_err()
    );
    assert_eq!(s.stats().cells, 1);
}

#[test]
fn gc_keeps_concurrency_cells_with_slots_held() {
    let (s, mut w) = worker();
    let r = rules(vec![rule("conc", Kind::Concurrency, 1, MIN)]);
    let sj = subj("k", "t", "m");
    let a = w.admit(&r, &sj, Estimate::default(), T0).unwrap();
    s.gc(T0 + 3_600_000);
    assert_eq!(s.stats().cells, 1);
    assert!(
        w.admit(&r, &sj, Estimate::default(), T0 + 3_600_000)
            .is_err()
    );
    drop(a);
    s.gc(T0 + 7_200_000);
    assert_eq!(s.stats().cells, 0);
}

#[test]
fn empty_rules_admit_everything() {
    let (_s, mut w) = worker();
    let r = rules(vec![]);
    let a = w
        .admit(
            &r,
            &subj("k", "t", "m"),
            Estimate {
                prompt: 1,
                completion: 1,
            },
            T0,
        )
        .unwrap();
    assert_eq!(a.reserved_tokens(), 0);
    assert_eq!(a.completion_allowance(), None);
    assert_eq!(a.settle(Usage::default(), T0), Settled::default());
}

#[test]
fn handles_cross_threads_as_the_proxy_needs() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    sync::<tollgate_quota::Rules>();
    sync::<QuotaShared>();
    send::<WorkerQuota>();
    send::<tollgate_quota::Admission>();
}
