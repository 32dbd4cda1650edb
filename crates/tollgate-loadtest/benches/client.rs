//! What the load generator spends per streamed response on its own side — SSE decoding, chunk
//! classification (one serde parse per event) and histogram recording — so a reader can check
//! that the driver is not the bottleneck of a benchmark: at 64 events per response, its cost
//! per response must stay far below the gateway's.
//!
//!     cargo bench -p tollgate-loadtest --bench client

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_loadtest::openai::classify_chunk;
use tollgate_loadtest::sse::SseDecoder;
use tollgate_loadtest::stats::Dist;

/// A vLLM-shaped stream: role chunk, 64 content chunks, finish chunk with usage, `[DONE]`.
fn stream() -> Vec<u8> {
    let head = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama-3-8b","choices":[{"index":0,"delta":"#;
    let mut s = format!(
        "data: {head}{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
    );
    for i in 0..64 {
        s.push_str(&format!(
            "data: {head}{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str(&format!("data: {head}{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":40,\"completion_tokens\":64,\"total_tokens\":104}}}}\n\n"));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let wire = stream();
    let mut g = c.benchmark_group("client_per_response");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_classify_64_events", |b| {
        b.iter(|| {
            let mut dec = SseDecoder::default();
            let mut content = 0u32;
            // 1460-byte reads, as TCP segments on loopback with the default MSS would give.
            for part in black_box(&wire).chunks(1460) {
                dec.feed(part, &mut |data| content += classify_chunk(data).content);
            }
            content
        })
    });
    g.bench_function("record_64_itl_samples", |b| {
        let mut d = Dist::default();
        b.iter(|| {
            for i in 0..64u64 {
                d.record(black_box(500 + i));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
