#!/usr/bin/env python3
"""Check a simulated backend against the official OpenAI Python SDK.

The gateway's clients use this SDK, so the simulated SSE and JSON shapes must satisfy its parser:
one non-streaming and one streaming chat completion (with include_usage), asserting content and
usage. Usage: python3 openai_sdk_check.py --base-url http://127.0.0.1:18001/v1
"""

import argparse
import re
import sys

from openai import OpenAI

TOKEN = re.compile(r"«r(\d+):(\d+)»")


def check_sequential(text: str, n: int) -> None:
    toks = TOKEN.findall(text)
    assert len(toks) == n, f"expected {n} tokens, got {toks}"
    rid = toks[0][0]
    assert all(r == rid and int(s) == i for i, (r, s) in enumerate(toks)), toks


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:18001/v1")
    ap.add_argument("--model", default="llama-3-8b")
    ap.add_argument("--mindie", action="store_true", help="MindIE: usage rides on the finish chunk")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key="simfleet")
    msgs = [{"role": "user", "content": "Say hello to the simulated fleet."}]

    r = client.chat.completions.create(model=args.model, messages=msgs, max_tokens=5)
    check_sequential(r.choices[0].message.content, 5)
    assert r.usage.completion_tokens == 5 and r.usage.prompt_tokens > 0, r.usage
    assert r.choices[0].finish_reason == "length"
    print(f"non-streaming ok: {r.choices[0].message.content} usage={r.usage.model_dump()}")

    stream = client.chat.completions.create(
        model=args.model, messages=msgs, max_tokens=6, stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    check_sequential(text, 6)
    assert finish == "length", finish
    assert usage is not None and usage.completion_tokens == 6, usage
    print(f"streaming ok: {text} usage={usage.model_dump()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
