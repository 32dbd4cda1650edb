//! Hot-path figures for the README: request head as the `openai` Python SDK sends it, an
//! upstream SSE response head as vLLM (uvicorn) sends it, and a 4 KiB chunked body.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_http::encode::{write_chunk, write_last_chunk};
use tollgate_http::{ChunkedDecoder, HeadLimits, parse_request_head, parse_response_head};

/// Headers captured from `openai` 1.x `client.chat.completions.create(...)`.
const OPENAI_REQUEST: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\n\
Host: gateway.local:8080\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\
Accept: application/json\r\n\
Content-Type: application/json\r\n\
User-Agent: OpenAI/Python 1.54.3\r\n\
X-Stainless-Lang: python\r\n\
X-Stainless-Package-Version: 1.54.3\r\n\
X-Stainless-OS: Linux\r\n\
X-Stainless-Arch: x64\r\n\
X-Stainless-Runtime: CPython\r\n\
X-Stainless-Runtime-Version: 3.12.7\r\n\
Authorization: Bearer sk-proj-0123456789abcdef0123456789abcdef\r\n\
X-Stainless-Async: false\r\n\
x-stainless-retry-count: 0\r\n\
Content-Length: 173\r\n\r\n";

const SSE_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
date: Sun, 22 Nov 2026 03:00:00 GMT\r\n\
server: uvicorn\r\n\
content-type: text/event-stream; charset=utf-8\r\n\
transfer-encoding: chunked\r\n\r\n";

fn bench(c: &mut Criterion) {
    let limits = HeadLimits::default();

    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Bytes(OPENAI_REQUEST.len() as u64));
    g.bench_function("request_openai_sdk", |b| {
        b.iter(|| parse_request_head(black_box(OPENAI_REQUEST), &limits))
    });
    g.throughput(Throughput::Bytes(SSE_RESPONSE.len() as u64));
    g.bench_function("response_sse", |b| {
        b.iter(|| parse_response_head(black_box(SSE_RESPONSE), &limits, false))
    });
    g.finish();

    let mut body = BytesMut::new();
    let payload = vec![b'x'; 1024];
    for _ in 0..4 {
        write_chunk(&mut body, &payload);
    }
    write_last_chunk(&mut body);
    let body = body.freeze();
    let mut g = c.benchmark_group("chunked");
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("decode_4k_in_4_chunks", |b| {
        let mut out = BytesMut::with_capacity(8192);
        b.iter(|| {
            out.clear();
            let mut input = BytesMut::from(&body[..]);
            let mut dec = ChunkedDecoder::new(1 << 20);
            black_box(dec.decode(&mut input, &mut out))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
