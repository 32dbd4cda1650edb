//! Decoder and chunk-inspection cost on a realistic OpenAI chat stream.
//!
//! The stream: role chunk, 64 content chunks of a few words, finish chunk, usage chunk,
//! `[DONE]` (68 frames), decoded from one buffer and from 37-byte reads (worse than any real
//! socket read, so it bounds the cost of frames split across reads).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_sse::{Decoder, inspect_chunk};

const WORDS: &[&str] = &[
    "The",
    " quick",
    " brown fox",
    " jumps over",
    " the lazy",
    " dog.",
];

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-8f2a\",\"object\":\"chat.completion.chunk\",\"created\":1732240000,\
         \"model\":\"Qwen2.5-7B-Instruct\",\"choices\":[{{\"index\":0,\"delta\":{delta},\
         \"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
    )
}

fn stream() -> Vec<u8> {
    let mut s = chunk(r#"{"role":"assistant","content":""}"#, "null");
    for i in 0..64 {
        s.push_str(&chunk(
            &format!(r#"{{"content":"{}"}}"#, WORDS[i % WORDS.len()]),
            "null",
        ));
    }
    s.push_str(&chunk("{}", "\"stop\""));
    s.push_str(
        "data: {\"id\":\"chatcmpl-8f2a\",\"object\":\"chat.completion.chunk\",\"created\":1732240000,\
         \"model\":\"Qwen2.5-7B-Instruct\",\"choices\":[],\"usage\":{\"prompt_tokens\":42,\
         \"total_tokens\":106,\"completion_tokens\":64}}\n\n",
    );
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn decode(input: &[u8], read: usize) -> usize {
    let mut dec = Decoder::new(64 * 1024);
    let mut frames = 0;
    for part in input.chunks(read) {
        dec.feed(part);
        while let Ok(Some(frame)) = dec.next_frame() {
            frames += usize::from(black_box(&frame).data.is_some());
        }
    }
    frames
}

fn bench_decode(c: &mut Criterion) {
    let input = stream();
    let mut group = c.benchmark_group("decode_68_frames");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("one_buffer", |b| {
        b.iter(|| decode(black_box(&input), input.len()))
    });
    group.bench_function("reads_of_37_bytes", |b| {
        b.iter(|| decode(black_box(&input), 37))
    });
    group.finish();

    let content = chunk(r#"{"content":" jumps over"}"#, "null");
    let json = &content.as_bytes()[6..content.len() - 2];
    let mut group = c.benchmark_group("inspect_chunk");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("content_chunk", |b| {
        b.iter(|| inspect_chunk(black_box(json)))
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
