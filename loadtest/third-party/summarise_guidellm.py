#!/usr/bin/env python3
"""Write the Markdown summary of a guidellm run against tollgate (used by scripts/third-party-check.sh).

Reads guidellm's JSON report and console output, tollgate's /metrics before and after the run and
tollgate's access log (JSON lines, only the lines written during the run), and writes:
  - OUT_MD: tool + version, command, machine, guidellm's own tables as it printed them, and a
    cross-check of guidellm's request/token counts against tollgate's counters;
  - RESULTS_DIR/crosscheck.json: the same cross-check as data.
Exit status 0 when guidellm saw 0 errors and every cross-check matched, 1 otherwise.

usage: summarise_guidellm.py --report benchmarks.json --console console.txt \
         --metrics-before m0.txt --metrics-after m1.txt --access-log access.jsonl \
         --command-file command.txt --facts facts.txt --results-dir DIR --out OUT_MD
"""
import argparse
import collections
import datetime
import json
import re
import sys

METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# the console tables worth quoting, as guidellm titles them
TABLES = [
    "Run Summary Info",
    "Request Token Statistics",
    "Request Latency Statistics",
    "Server Throughput Statistics",
]


def parse_metrics(path):
    """Prometheus text → {(name, frozenset(labels)): value} (counters and gauges only)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            m = METRIC_RE.match(line.strip())
            if not m:
                continue
            name, labels, value = m.groups()
            if name.endswith(("_bucket", "_sum", "_count")) or "quantile" in (labels or ""):
                continue
            try:
                v = float(value)
            except ValueError:
                continue
            out[(name, frozenset(LABEL_RE.findall(labels or "")))] = v
    return out


def delta(before, after):
    keys = set(before) | set(after)
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys}


def msum(d, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in d.items() if n == name and want <= set(ls))


def console_tables(path):
    """Cut guidellm's console tables (by title) out of its output, verbatim."""
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    found = {}
    for title in TABLES:
        for i, line in enumerate(lines):
            if line.lstrip().startswith("ℹ " + title):
                block = []
                for nxt in lines[i + 1:]:
                    if nxt.startswith("|") or (block and nxt.startswith("* ")):
                        block.append(nxt)
                    elif block:
                        break
                found[title] = "\n".join(block)
                break
    warnings = []
    for i, line in enumerate(lines):
        if line.startswith("Warnings ("):
            block = [line]
            for nxt in lines[i + 1:]:
                if not nxt.strip() and len(block) > 1 and not block[-1].strip():
                    break
                if nxt.startswith(("Warnings (", "✔", "…", "ℹ")) or "|INFO" in nxt:
                    break
                block.append(nxt.rstrip())
            warnings.append("\n".join(b for b in block if b.strip()))
    return found, warnings


def guidellm_totals(report):
    rows, tot = [], collections.Counter()
    for b in report["benchmarks"]:
        m = b["metrics"]
        strat = b["config"]["strategy"]
        name = strat["type_"]
        if "rate" in strat and strat.get("rate"):
            name += "@%.2f" % strat["rate"]
        elif strat.get("max_concurrency") and strat["type_"] == "throughput":
            name += "@%d" % strat["max_concurrency"]
        elif strat.get("streams"):
            name += "@%s" % strat["streams"]
        rt = m["request_totals"]
        made = b["scheduler_metrics"]["requests_made"]
        row = {
            "strategy": name,
            "successful": rt["successful"],
            "errored": rt["errored"],
            "incomplete": rt["incomplete"],
            "incomplete_made": made["incomplete"],
            # float sums of integer counts: round (5472.000000000001)
            "prompt_tokens_successful": round(m["prompt_token_count"]["successful"]["total_sum"]),
            "output_tokens_successful": round(m["output_token_count"]["successful"]["total_sum"]),
            "output_tokens_incomplete": round(m["output_token_count"]["incomplete"]["total_sum"]),
            "req_per_s": m["requests_per_second"]["successful"]["mean"],
            "out_tok_per_s": m["output_tokens_per_second"]["successful"]["mean"],
            "ttft_ms_p50": m["time_to_first_token_ms"]["successful"]["median"],
            "ttft_ms_p95": m["time_to_first_token_ms"]["successful"]["percentiles"]["p95"],
            "itl_ms_p50": m["inter_token_latency_ms"]["successful"]["median"],
            "itl_ms_p95": m["inter_token_latency_ms"]["successful"]["percentiles"]["p95"],
            "duration_s": b["duration"],
            "start_time": b["scheduler_metrics"]["start_time"],
            "measure_end_time": b["scheduler_metrics"]["measure_end_time"],
            "end_time": b["scheduler_metrics"]["end_time"],
        }
        rows.append(row)
        for k in ("successful", "errored", "incomplete", "incomplete_made", "prompt_tokens_successful",
                  "output_tokens_successful", "output_tokens_incomplete"):
            tot[k] += row[k]
    return rows, tot


def rfc3339_ts(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def access_summary(path):
    by = collections.Counter()
    tokens = collections.Counter()
    ttft = []
    chat = []  # (finish time, status, error, prompt_tokens, completion_tokens)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if "request_id" not in d:
                continue
            by[(d.get("method"), d.get("path"), d.get("status"), d.get("error"))] += 1
            if d.get("path") == "/v1/chat/completions":
                chat.append((rfc3339_ts(d["time"]), d.get("status"), d.get("error"),
                             d.get("prompt_tokens") or 0, d.get("completion_tokens") or 0))
            if d.get("path") == "/v1/chat/completions" and d.get("status") == 200 and d.get("error") is None:
                tokens["prompt"] += d.get("prompt_tokens") or 0
                tokens["completion"] += d.get("completion_tokens") or 0
                if d.get("ttft_ms") is not None:
                    ttft.append(d["ttft_ms"])
    return by, tokens, sorted(ttft), chat


def per_benchmark(rows, chat):
    """Put tollgate's chat requests into guidellm's benchmark windows (by finish time).

    A benchmark's window runs from its start to the next one's start. In it: `before` = requests
    tollgate completed (200, no error) before guidellm's end of measurement, `all` = every one
    it completed. guidellm cancels what is in flight at the end of measurement and calls it
    incomplete, even when the server had already sent the last bytes, so its successful count
    must lie in [before, all] -- and so must its token sums.
    """
    out = []
    for i, r in enumerate(rows):
        start = r["start_time"] - 0.5
        nxt = rows[i + 1]["start_time"] - 0.5 if i + 1 < len(rows) else float("inf")
        win = [c for c in chat if start <= c[0] < nxt]
        ok = [c for c in win if c[1] == 200 and c[2] is None]
        before = [c for c in ok if c[0] < r["measure_end_time"]]
        late = sorted(c[0] - r["measure_end_time"] for c in ok if c[0] >= r["measure_end_time"])
        out.append({
            "strategy": r["strategy"],
            "guidellm_ok": r["successful"],
            "tollgate_ok_before_end": len(before),
            "tollgate_ok_all": len(ok),
            "tollgate_ok_after_end_max_ms": round(late[-1] * 1000, 1) if late else 0.0,
            "guidellm_prompt": r["prompt_tokens_successful"],
            "tollgate_prompt_before": sum(c[3] for c in before),
            "tollgate_prompt_all": sum(c[3] for c in ok),
            "guidellm_completion": r["output_tokens_successful"],
            "tollgate_completion_before": sum(c[4] for c in before),
            "tollgate_completion_all": sum(c[4] for c in ok),
            "guidellm_incomplete": r["incomplete"],
            "guidellm_incomplete_made": r["incomplete_made"],
            "tollgate_client_closed": sum(1 for c in win if c[2] == "client_closed"),
            "tollgate_incomplete_body": sum(1 for c in win if c[2] == "incomplete_body"),
            "tollgate_other": sum(1 for c in win if not (c[1] == 200 and c[2] in (None, "client_closed"))
                                  and c[2] != "incomplete_body"),
        })
        pb = out[-1]
        pb["ok"] = (pb["tollgate_ok_before_end"] <= pb["guidellm_ok"] <= pb["tollgate_ok_all"]
                    and pb["tollgate_prompt_before"] <= pb["guidellm_prompt"] <= pb["tollgate_prompt_all"]
                    and pb["tollgate_completion_before"] <= pb["guidellm_completion"] <= pb["tollgate_completion_all"]
                    and pb["tollgate_other"] == 0
                    and (pb["tollgate_ok_all"] - pb["guidellm_ok"]) + pb["tollgate_client_closed"]
                    + pb["tollgate_incomplete_body"] <= pb["guidellm_incomplete_made"])
    return out


def pct(xs, p):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    for a in ("report", "console", "metrics-before", "metrics-after", "access-log", "command-file",
              "facts", "results-dir", "out", "date", "run-seconds", "model"):
        ap.add_argument("--" + a, required=True)
    a = ap.parse_args()

    report = json.load(open(a.report, encoding="utf-8"))
    rows, g = guidellm_totals(report)
    md = delta(parse_metrics(a.metrics_before), parse_metrics(a.metrics_after))
    acc, acc_tokens, acc_ttft, acc_chat = access_summary(a.access_log)
    pbs = per_benchmark(rows, acc_chat)
    tables, warnings = console_tables(a.console)
    command = open(a.command_file, encoding="utf-8").read().strip()
    facts = open(a.facts, encoding="utf-8").read().rstrip()
    model = a.model

    # tollgate's view of the run (deltas over the run)
    tg_200 = msum(md, "tollgate_requests_total", model=model, status="200")
    tg_model_all = msum(md, "tollgate_requests_total", model=model)
    tg_aborts = msum(md, "tollgate_client_aborts_total")
    tg_prompt = msum(md, "tollgate_tokens_total", model=model, type="prompt")
    tg_completion = msum(md, "tollgate_tokens_total", model=model, type="completion")
    tg_stream_err = msum(md, "tollgate_stream_errors_total")
    tg_upstream_err = msum(md, "tollgate_upstream_errors_total")
    tg_retries = msum(md, "tollgate_upstream_retries_total")
    tg_scan = msum(md, "tollgate_scan_hits_total")
    tg_status = collections.Counter()
    for (n, ls), v in md.items():
        if n == "tollgate_requests_total" and v:
            tg_status[dict(ls).get("status")] += v
    tg_5xx = sum(v for s, v in tg_status.items() if s and s.startswith("5"))
    by_backend = {dict(ls).get("backend"): v for (n, ls), v in md.items()
                  if n == "tollgate_requests_total" and dict(ls).get("model") == model and v}

    chat = {k: v for k, v in acc.items() if k[1] == "/v1/chat/completions"}
    acc_ok = sum(v for k, v in chat.items() if k[2] == 200 and k[3] is None)
    acc_closed = sum(v for k, v in chat.items() if k[3] == "client_closed")
    acc_incomplete_body = sum(v for k, v in chat.items() if k[3] == "incomplete_body")
    acc_other = {"%s %s %s %s" % k: v for k, v in acc.items()
                 if not (k[1] == "/v1/chat/completions" and (k[2] == 200 or k[3] == "incomplete_body"))}

    tg_ok_all = sum(p["tollgate_ok_all"] for p in pbs)
    tg_ok_before = sum(p["tollgate_ok_before_end"] for p in pbs)
    bad_4xx = sum(v for k, v in acc.items() if isinstance(k[2], int) and 400 <= k[2] < 500
                  and k[3] != "incomplete_body")
    rng = lambda lo, hi: "%d … %d" % (lo, hi)
    checks = [
        ("errors seen by guidellm", g["errored"], 0, g["errored"] == 0),
        ("tollgate 5xx responses; other 4xx than `incomplete_body`", 0, "%d; %d" % (tg_5xx, bad_4xx),
         tg_5xx == 0 and bad_4xx == 0),
        ("tollgate upstream errors / stream errors / retries", "0 / 0 / 0",
         "%d / %d / %d" % (tg_upstream_err, tg_stream_err, tg_retries),
         tg_upstream_err == 0 and tg_stream_err == 0 and tg_retries == 0),
        ("completed requests: guidellm successful vs tollgate completed before … including after "
         "guidellm's end of measurement (access log, per benchmark, summed)",
         g["successful"], rng(tg_ok_before, tg_ok_all),
         all(tg_ok_before_b <= gb <= tg_ok_all_b for tg_ok_before_b, gb, tg_ok_all_b in
             ((p["tollgate_ok_before_end"], p["guidellm_ok"], p["tollgate_ok_all"]) for p in pbs))),
        ("prompt tokens (server usage) of completed requests, same bracket",
         g["prompt_tokens_successful"], rng(sum(p["tollgate_prompt_before"] for p in pbs),
                                            sum(p["tollgate_prompt_all"] for p in pbs)),
         all(p["tollgate_prompt_before"] <= p["guidellm_prompt"] <= p["tollgate_prompt_all"] for p in pbs)),
        ("completion tokens (server usage) of completed requests, same bracket",
         g["output_tokens_successful"], rng(sum(p["tollgate_completion_before"] for p in pbs),
                                            sum(p["tollgate_completion_all"] for p in pbs)),
         all(p["tollgate_completion_before"] <= p["guidellm_completion"] <= p["tollgate_completion_all"]
             for p in pbs)),
        ("cancelled by guidellm at a benchmark's end (its `requests_made.incomplete`) ≥ tollgate "
         "client_closed + incomplete_body + completed-but-uncounted",
         g["incomplete_made"], sum(p["tollgate_client_closed"] + p["tollgate_incomplete_body"]
                                   + p["tollgate_ok_all"] - p["guidellm_ok"] for p in pbs),
         all(p["ok"] for p in pbs)),
        ("tollgate self-consistency: access-log completed = `requests_total{status=200}` − `client_aborts_total`",
         acc_ok, tg_200 - tg_aborts, acc_ok == tg_200 - tg_aborts == tg_ok_all),
        ("tollgate self-consistency: access-log tokens = `tokens_total` (prompt / completion)",
         "%d / %d" % (acc_tokens["prompt"], acc_tokens["completion"]), "%d / %d" % (tg_prompt, tg_completion),
         acc_tokens["prompt"] == tg_prompt and acc_tokens["completion"] == tg_completion),
    ]
    ok = all(c[3] for c in checks)

    out = []
    w = out.append
    w(f"# guidellm against tollgate, unchanged ({a.date})")
    w("")
    w("A third-party LLM benchmark, [guidellm](https://github.com/vllm-project/guidellm), driving "
      "`tollgate demo` (gateway + embedded simulated fleet: 2 vLLM + 1 SGLang + 1 MindIE, latency "
      "model) over its OpenAI HTTP backend. Nothing in tollgate was changed for it; only guidellm's "
      "invocation is adapted (offline tokenizer, health route). Made by `scripts/third-party-check.sh`.")
    w("")
    w(f"**Result: {'PASS' if ok else 'FAIL'}** — guidellm errors: {int(g['errored'])}; "
      f"{int(g['successful'])} completed streamed chat completions; every cross-check below "
      f"{'matches' if ok else 'does NOT match (see ✗)'}. Whole run (install checks, start, benchmark, "
      f"stop): {a.run_seconds} s.")
    w("")
    w("## Tool, command, machine")
    w("")
    w("```")
    w(facts)
    w("```")
    w("")
    w("Command (run from the work directory; environment `HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
      "HF_DATASETS_OFFLINE=1`, plus the `GUIDELLM__*` settings shown):")
    w("")
    w("```sh")
    w(command)
    w("```")
    w("")
    w("What each non-default part is for:")
    w("")
    w("- `api_routes./health=v1/models`: guidellm validates a backend with `GET {target}/health` "
      "(vLLM's route) and aborts on a non-2xx. tollgate's data listener serves only `/v1/*` "
      "(its health check is `GET /healthz` on the admin port), so `/health` is a JSON 404 "
      "(`not_found`). The mapping makes the validation probe `GET /v1/models` instead; "
      "`validate_backend=false` would also do.")
    w("- `--tokenizer kind=hf_auto,model=<dir>`: guidellm needs a tokenizer to size synthetic "
      "prompts; its default downloads the served model's tokenizer from the Hugging Face hub, "
      "unreachable here. `loadtest/third-party/make_tokenizer.py` trains a local byte-level BPE "
      "(vocab 8192) on local text instead. So the prompts are 256 tokens *of that tokenizer*; the "
      "simulator counts ~4 bytes/token and reports ~210 prompt tokens per request, and guidellm "
      "reports the server's count (`prefer_response_metrics=true`).")
    w("- `--profile kind=sweep`: synchronous, then throughput (at most `max_concurrency` streams), "
      "then constant rates evenly between the two; each benchmark bounded by `max_duration`.")
    w("- `GUIDELLM__MAX_WORKER_PROCESSES`: guidellm defaults to 10 spawned worker processes, each "
      "importing torch/transformers (~10 s per benchmark on 2 cores); fewer keeps the run short.")
    w("- `--metrics sample_size=2`: keeps 2 full request records per status group, so the JSON "
      "report stays small; statistics still cover every request.")
    w("")
    w("Request guidellm sends (from a stored sample; prompt shortened): `POST /v1/chat/completions`, "
      "`{\"model\":\"%s\",\"stream\":true,\"stream_options\":{\"include_usage\":true,"
      "\"continuous_usage_stats\":true},\"max_completion_tokens\":64,\"ignore_eos\":true,"
      "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"…\"}]}]}`. "
      "tollgate passes it through as is (content-part arrays, `max_completion_tokens`, "
      "`ignore_eos` and vLLM's `continuous_usage_stats` included)." % model)
    w("")
    w("## What guidellm measured (its console tables, verbatim)")
    w("")
    w("Caveat for reading them: the load generator (Python, up to %s worker processes), the gateway "
      "(2 workers) and the simulated fleet share the same 2 cores, so the throughput point and the "
      "top rates are client-bound, not gateway- or GPU-bound; TTFT/ITL come from the simulator's "
      "H100/Llama-3-8B latency model plus the client's own scheduling delay." % "{workers}")
    lm = re.search(r"other processes (\d+) \(([0-9.]+)% of capacity\)", facts)
    if lm and float(lm.group(2)) > 5.0:
        w("")
        w("**Other work shared the cores during this run**: other processes used %s core-seconds, "
          "%s%% of the machine's capacity over the run (see `cpu:` above), so the latency and "
          "throughput figures below are from shared cores. The compatibility result (errors, "
          "counts, tokens) does not depend on it." % (lm.group(1), lm.group(2)))
    for title in TABLES:
        if title in tables:
            w("")
            w(f"### {title}")
            w("")
            w("```")
            w(tables[title])
            w("```")
    if warnings:
        w("")
        w("guidellm's own warnings:")
        w("")
        w("```")
        w("\n".join(warnings))
        w("```")
        w("")
        w("Both kinds are about guidellm's own side: *generation delay* is its time to build a "
          "request relative to a TTFT that is only ~11 ms here, *root dispatch delay* is requests "
          "leaving its queue late once the Python client is CPU-bound.")
    w("")
    w("## Headline figures (from the JSON report)")
    w("")
    w("| benchmark | ok | err | incomplete | req/s | out tok/s | TTFT p50 / p95 ms | ITL p50 / p95 ms |")
    w("|---|---|---|---|---|---|---|---|")
    for r in rows:
        w("| %s | %d | %d | %d | %.1f | %.0f | %.1f / %.1f | %.2f / %.2f |" % (
            r["strategy"], r["successful"], r["errored"], r["incomplete"], r["req_per_s"],
            r["out_tok_per_s"], r["ttft_ms_p50"], r["ttft_ms_p95"], r["itl_ms_p50"], r["itl_ms_p95"]))
    w("")
    w("## Cross-check against tollgate's own counters")
    w("")
    w("tollgate's `/metrics` (admin port) was scraped just before guidellm started and after it "
      "finished (the numbers are the difference), and its access log (JSON lines, one per request, "
      "stamped when the request finished) was read for the same span.")
    w("")
    w("Why a bracket and not one number: when a benchmark reaches `max_duration`, guidellm cancels "
      "whatever is in flight and counts it as *incomplete*, even a stream whose last chunk, usage "
      "and `[DONE]` tollgate had already sent (the client, sharing 2 cores, had not yet read them). "
      "tollgate rightly logs those as completed. So, per benchmark, guidellm's successful count "
      "and its token sums must lie between what tollgate completed *before* guidellm's end of "
      "measurement and what it completed in that benchmark *in all*. A cancelled stream shows in "
      "tollgate as a 200 with `error=client_closed` (and in `tollgate_client_aborts_total`, with "
      "no usage, so no tokens); a request cancelled after its head but before its body shows as a "
      "400 `incomplete_body` (logged; nobody is left to receive it).")
    w("")
    w("| check | guidellm | tollgate | |")
    w("|---|---|---|---|")
    for name, gv, tv, good in checks:
        fmt = lambda v: ("%d" % v) if isinstance(v, (int, float)) else str(v)
        w(f"| {name} | {fmt(gv)} | {fmt(tv)} | {'✓' if good else '✗'} |")
    w("")
    w("Per benchmark (tollgate columns from the access log):")
    w("")
    w("| benchmark | guidellm ok | tollgate ok before end … in all | latest tollgate completion after guidellm's end | guidellm incomplete (sent / made) | tollgate client_closed / incomplete_body | completion tokens: guidellm vs tollgate bracket | |")
    w("|---|---|---|---|---|---|---|---|")
    for p in pbs:
        w("| %s | %d | %d … %d | %s | %d / %d | %d / %d | %d vs %d … %d | %s |" % (
            p["strategy"], p["guidellm_ok"], p["tollgate_ok_before_end"], p["tollgate_ok_all"],
            ("+%.0f ms" % p["tollgate_ok_after_end_max_ms"]) if p["tollgate_ok_all"] > p["tollgate_ok_before_end"] else "—",
            p["guidellm_incomplete"], p["guidellm_incomplete_made"], p["tollgate_client_closed"],
            p["tollgate_incomplete_body"], p["guidellm_completion"], p["tollgate_completion_before"],
            p["tollgate_completion_all"], "✓" if p["ok"] else "✗"))
    w("")
    w("tollgate over the run: `tollgate_requests_total` by status %s; for model `%s` by backend %s; "
      "`tollgate_client_aborts_total` %d; `tollgate_scan_hits_total` %d. Access log, chat "
      "completions: %d × 200 ok, %d × 200 `client_closed`, %d × 400 `incomplete_body`; "
      "other requests: %s. Gateway-side TTFT (first response byte) over the ok requests, from the "
      "access log: p50 %.1f ms, p95 %.1f ms." % (
          json.dumps({k: int(v) for k, v in sorted(tg_status.items())}), model,
          json.dumps({k: int(v) for k, v in sorted(by_backend.items())}), tg_aborts, tg_scan,
          acc_ok, acc_closed, acc_incomplete_body, json.dumps(acc_other),
          pct(acc_ttft, 50), pct(acc_ttft, 95)))
    w("")
    w("## Did tollgate need anything?")
    w("")
    w("No change to tollgate. Observations, for the record:")
    w("")
    w("1. **No `/health` on the data port.** guidellm's backend check is `GET /health` "
      "(vLLM/SGLang serve it); tollgate answers `404 {\"error\":{\"code\":\"not_found\",...}}` "
      "and guidellm stops with *Backend validation request failed*. Worked around with "
      "`api_routes./health=v1/models`. A `/health` alias on the data listener would make guidellm "
      "(and other vLLM-oriented tools) work with no option.")
    w("2. **Cancelled-before-body requests count as 400s.** %d request(s) in this run were "
      "cancelled by guidellm at a benchmark's end after sending the request head but before the "
      "body (`bytes_in` 216, the head alone; the body is sent in a second write). tollgate "
      "logs them as `status=400 error=incomplete_body` and counts them in "
      "`tollgate_requests_total{model=\"-\",status=\"400\"}`, not in "
      "`tollgate_client_aborts_total`, although no client was left to receive the 400 — a client "
      "abort that shows up as a client error on dashboards." % acc_incomplete_body)
    w("3. Everything else guidellm relies on worked as is: streamed chat completions with "
      "content-part arrays, `max_completion_tokens`, `ignore_eos`, `stream_options` with vLLM's "
      "`continuous_usage_stats` (forwarded; the simulator reports usage once at the end), the "
      "final usage chunk (guidellm's token counts are the server's), `[DONE]`, `GET /v1/models`, "
      "keep-alive, and client cancellation mid-stream (logged as `client_closed`, counted in "
      "`tollgate_client_aborts_total`). guidellm's HTTP client defaults to `http2=True`, which over plain `http://` stays HTTP/1.1.")
    w("")
    w("## Files")
    w("")
    w("In `%s/`: `benchmarks.json.gz` (guidellm's full JSON report, gzipped; "
      "`gunzip -k` then `guidellm export` can re-render it), `benchmarks.csv`, `benchmarks.html` "
      "(guidellm's self-contained HTML report), `console.txt` (its console output), "
      "`tollgate-metrics-before.txt` / `-after.txt`, `access-log-summary.json`, `crosscheck.json`, "
      "`pip-freeze.txt`." % a.results_dir.rstrip("/").split("/")[-1])
    text = "\n".join(out) + "\n"

    workers = re.search(r"GUIDELLM__MAX_WORKER_PROCESSES=(\d+)", command)
    text = text.replace("{workers}", workers.group(1) if workers else "10")
    open(a.out, "w", encoding="utf-8").write(text)

    json.dump({
        "pass": ok,
        "checks": [{"name": n, "guidellm": gv, "tollgate": tv, "ok": good} for n, gv, tv, good in checks],
        "per_benchmark": pbs,
        "guidellm_benchmarks": rows,
        "guidellm_totals": dict(g),
        "tollgate_status": dict(tg_status),
        "tollgate_by_backend": by_backend,
        "tollgate_tokens": {"prompt": tg_prompt, "completion": tg_completion},
        "access_log": {"%s %s %s %s" % k: v for k, v in acc.items()},
        "access_log_tokens_ok": dict(acc_tokens),
    }, open(a.results_dir.rstrip("/") + "/crosscheck.json", "w"), indent=1, default=str)
    json.dump({"%s %s %s %s" % k: v for k, v in acc.items()},
              open(a.results_dir.rstrip("/") + "/access-log-summary.json", "w"), indent=1)
    print(f"summarise: {'PASS' if ok else 'FAIL'} -> {a.out}")
    for name, gv, tv, good in checks:
        print(f"  {'ok ' if good else 'BAD'} {name}: guidellm={gv} tollgate={tv}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
