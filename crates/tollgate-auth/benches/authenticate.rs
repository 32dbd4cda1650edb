//! Cost of `KeyStore::authenticate` per outcome, in one run: the right key, a wrong secret
//! sharing the key's id and its first 16 secret characters, an unknown id, and garbage. The
//! design claims one salted SHA-256 and one constant-time compare whatever the input
//! (reliability.md §D item 25: no prefix-timing oracle); the figures here show whether the
//! outcomes cost the same. Criterion reports each; compare them side by side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    // 1,000 keys so the id lookup is a real map lookup.
    let mut text = String::from("[[consumer]]\nname = \"c\"\ntenant = \"t\"\n");
    let mut token = String::new();
    for i in 0..1000 {
        let (k, hash) = tollgate_auth::generate_key().unwrap();
        text.push_str(&format!(
            "[[key]]\nid = \"{}\"\nconsumer = \"c\"\nhash = \"{hash}\"\nmodels = [\"*\"]\n",
            k.id
        ));
        if i == 500 {
            token = k.token;
        }
    }
    let store = tollgate_auth::KeyStore::parse(&text, "bench.toml").unwrap();
    let secret_at = token.rfind('_').unwrap() + 1;
    let mut wrong = token.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
    let mut shared_prefix = token.clone().into_bytes();
    for b in &mut shared_prefix[secret_at + 16..] {
        *b = if *b == b'x' { b'y' } else { b'x' };
    }
    let unknown = format!("tgk_000000000000_{}", &token[secret_at..]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("valid", token.clone().into_bytes()),
        ("wrong_last_char", wrong),
        ("wrong_after_16_chars", shared_prefix),
        ("unknown_id", unknown.into_bytes()),
        ("garbage", b"' OR '1'='1".to_vec()),
    ];
    let mut g = c.benchmark_group("authenticate");
    for (name, t) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(store.authenticate(black_box(t), 0).is_ok()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
