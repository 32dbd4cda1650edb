#!/usr/bin/env python3
"""Streaming latency probe: TTFT and inter-token latency (ITL) of OpenAI chat streams.

Runs CONC concurrent streams, TOTAL requests in all, against each target in turn, ROUNDS times
interleaved (so a noisy neighbour hits every target alike), and prints one JSON line per target
with p50/p90/p99 of TTFT and ITL (ms). Loopback only; bounded by TOTAL and a per-request timeout.

  itl.py --target direct=127.0.0.1:19200 --target scan_off=127.0.0.1:18090 \
         --target scan_on=127.0.0.1:18091 --conc 16 --total 160 --rounds 3 --max-tokens 64
"""
import argparse, asyncio, json, statistics, sys, time

BODY = ('{"model":"%s","stream":true,"max_tokens":%d,"messages":[{"role":"user","content":'
        '"Write a short note to alice@example.com about the meeting at 10.1.2.3; call me on '
        '+44 20 7946 0958 if anything changes. %s"}]}')


async def one(host, port, body, timeout):
    t0 = time.perf_counter()
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    w.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
    await w.drain()
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 200"):
        w.close()
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    times, buf = [], b""
    while True:
        size_line = await asyncio.wait_for(r.readuntil(b"\r\n"), timeout)
        n = int(size_line.strip(), 16)
        if n == 0:
            break
        data = await asyncio.wait_for(r.readexactly(n + 2), timeout)
        now = time.perf_counter()
        buf += data[:-2]
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    try:
                        j = json.loads(line[6:])
                    except ValueError:
                        continue
                    for c in j.get("choices") or []:
                        if (c.get("delta") or {}).get("content"):
                            times.append(now)
    w.close()
    return t0, times


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1e3, 3)


async def run_target(addr, args, salt):
    host, port = addr.rsplit(":", 1)
    sem = asyncio.Semaphore(args.conc)
    ttft, itl, errs = [], [], 0

    async def task(i):
        nonlocal errs
        async with sem:
            body = (BODY % (args.model, args.max_tokens, f"{salt}-{i}")).encode()
            try:
                t0, ts = await one(host, int(port), body, args.timeout)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errs += 1
                print(f"error: {addr}: {e}", file=sys.stderr)
                return
            if ts:
                ttft.append(ts[0] - t0)
                itl.extend(b - a for a, b in zip(ts, ts[1:]))

    await asyncio.gather(*(task(i) for i in range(args.total)))
    return ttft, itl, errs


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", action="append", required=True, help="name=host:port")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--total", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--model", default="llama-3-8b")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    targets = [t.split("=", 1) for t in args.target]
    for _, a in targets:
        if not a.startswith("127."):
            sys.exit(f"{a}: loopback addresses only")
    acc = {n: ([], [], 0) for n, _ in targets}
    for r in range(args.rounds):
        for n, a in targets:
            t, i, e = await run_target(a, args, f"r{r}")
            T, I, E = acc[n]
            acc[n] = (T + t, I + i, E + e)
    for n, _ in targets:
        t, i, e = acc[n]
        print(json.dumps({
            "target": n, "requests": len(t), "errors": e,
            "ttft_ms": {"p50": pct(t, 50), "p90": pct(t, 90), "p99": pct(t, 99)},
            "itl_ms": {"p50": pct(i, 50), "p90": pct(i, 90), "p99": pct(i, 99),
                       "mean": round(statistics.fmean(i) * 1e3, 3) if i else None},
            "content_frames": len(i) + len(t),
        }))


asyncio.run(main())
