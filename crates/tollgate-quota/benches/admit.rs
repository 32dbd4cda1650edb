//! Cost of the data-path pair `admit` + `settle` on one worker thread with 0, 1 and 4 applicable
//! rules (warm worker cache: the steady state the proxy runs in).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_quota::{
    Dim, Estimate, Filter, Kind, LimitRule, Overrun, QuotaShared, Rules, Subject, TokenKind, Usage,
    WorkerQuota,
};

fn rule(name: &str, kind: Kind, per: Vec<Dim>) -> LimitRule {
    LimitRule {
        name: name.into(),
        kind,
        per,
        filter: Filter::default(),
        limit: u64::MAX / 4,
        window: Duration::from_secs(60),
        tz: jiff::tz::TimeZone::UTC,
        schedule: Vec::new(),
        stream_overrun: Overrun::Allow,
        shared: false,
    }
}

fn bench(c: &mut Criterion) {
    let sets: [(&str, Vec<LimitRule>); 3] = [
        ("0_rules", vec![]),
        (
            "1_rule",
            vec![rule("tpm", Kind::Tokens(TokenKind::Total), vec![Dim::Key])],
        ),
        (
            "4_rules",
            vec![
                rule("rpm", Kind::Requests, vec![Dim::Key]),
                rule("conc", Kind::Concurrency, vec![Dim::Tenant]),
                rule("tpm", Kind::Tokens(TokenKind::Total), vec![Dim::Key]),
                rule(
                    "tenant-model",
                    Kind::Tokens(TokenKind::Completion),
                    vec![Dim::Tenant, Dim::Model],
                ),
            ],
        ),
    ];
    let subj = Subject {
        consumer: "consumer-1",
        key: "key-0123456789",
        tenant: "acme",
        project: "proj",
        model: "gpt-4o-mini",
    };
    let est = Estimate {
        prompt: 120,
        completion: 256,
    };
    let mut g = c.benchmark_group("admit_settle");
    for (name, rs) in sets {
        let rules = Arc::new(Rules::new(rs));
        let mut w = WorkerQuota::new(QuotaShared::new(None));
        let now = 1_767_571_200_000i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let a = w.admit(&rules, black_box(&subj), est, now).unwrap();
                black_box(a.settle(
                    Usage {
                        prompt: 120,
                        completion: 100,
                    },
                    now,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
