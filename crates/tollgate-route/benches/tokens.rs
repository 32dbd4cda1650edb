//! Cost of counting a prompt's tokens (bpe-openai, the same tokens as tiktoken-rs): what a
//! `context_tokens` route rule pays per request, for a short chat message and a 4 KiB prompt,
//! per vocabulary. notes/performance.md A.3 puts tiktoken at 12–13 MB/s on this machine class.
//!
//!     cargo bench -p tollgate-route --bench tokens

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_route::tokens::Tokenizer;

/// English-like prose with numbers and punctuation, repeated to `len` bytes on a char boundary.
fn prose(len: usize) -> String {
    const PARA: &str = "The quarterly report shows revenue of $4.2M, up 12% from Q2. Please \
        summarise the main risks for the board, list three follow-up actions with owners, and \
        flag anything that needs legal review before Friday's meeting. ";
    let mut s = String::with_capacity(len + PARA.len());
    while s.len() < len {
        s.push_str(PARA);
    }
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("count_tokens");
    for tk in [Tokenizer::Cl100k, Tokenizer::O200k] {
        tk.warm();
        for (name, len) in [("chat_256B", 256), ("prompt_4KiB", 4096)] {
            let text = prose(len);
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_function(format!("{}/{name}", tk.as_str()), |b| {
                b.iter(|| tk.count(black_box(&text)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
