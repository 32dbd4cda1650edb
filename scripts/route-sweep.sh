#!/usr/bin/env bash
# Virtual-time routing sweep: tollgate-route's policies in front of 8 simulated vLLM engines on the
# routing.md §4.1 workloads (W1, W1h, W3, W4, W6), no network, no GPU:
#
#   scripts/route-sweep.sh                 # ~3–5 min on 2 cores; loadtest/results/<date>-routing-virtual.md
#   SEEDS=1 ARGS=--quick scripts/route-sweep.sh   # ~20 s smoke run (0.3× requests)
#
# The example (crates/tollgate-route/examples/virtual_sweep/) prints Markdown tables and a goals
# section on stdout; this script adds the header (machine, commit, parameters) and writes the
# file. Knobs: SEEDS=3, ARGS (extra example arguments, e.g. "--only W1 --policies a,b"), OUT,
# SKIP_BUILD=0, CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SEEDS="${SEEDS:-3}"
ARGS="${ARGS:-}"
DAY="$(date -u +%Y-%m-%d)"
OUT="${OUT:-$ROOT/loadtest/results/$DAY-routing-virtual.md}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tollgate-route --example virtual_sweep)
fi
BIN="$TARGET_DIR/release/examples/virtual_sweep"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$ROOT" status --porcelain -- crates/tollgate-route crates/tollgate-simfleet 2>/dev/null | wc -l)"
CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
TMP="$(mktemp)"
trap 'rm -f "$TMP"' EXIT
START=$(date +%s)
# shellcheck disable=SC2086  # ARGS is a list of arguments
"$BIN" --seeds "$SEEDS" $ARGS >"$TMP"
ELAPSED=$(( $(date +%s) - START ))
{
  cat <<EOF
# Routing policies in virtual time — $DAY

Machine: $(nproc) cores, $(uname -r), ${CPU:-unknown CPU}. Commit: \`$COMMIT\`$( [ "$DIRTY" -gt 0 ] && echo " + uncommitted changes in tollgate-route / tollgate-simfleet ($DIRTY files)" ).
Command: \`SEEDS=$SEEDS ARGS="$ARGS" scripts/route-sweep.sh\` (sweep wall time ${ELAPSED} s).
Harness: \`crates/tollgate-route/examples/virtual_sweep/\` (\`main.rs\` docs say what is real and what is modelled).

## Set-up

- **Fleet**: 8 vLLM-personality engines of \`tollgate-simfleet\` (Llama-3-8B BF16 / H100 step model of
  routing.md §3.2, block 16, max 1024 seqs, 8192-token step budget, ±5% seeded step jitter),
  **160k KV tokens each** — W1's 150 × 6,000-token contexts need 900k tokens, ≈ 70% of the
  cluster's 1.28M (≈ 5.6 backends' worth), as in routing.md §4.1. Same fleet for every workload.
- **Gateway**: \`tollgate_route::pick\` with \`Settings::default()\` (scrape every 200 ms, stale after
  1 s, saturation queue 64, least_load weights 2/2/1, 256-byte prefix blocks), one pool, one tier,
  one worker; an \`InflightGuard\` (prompt estimate + max_tokens) per request from pick to the
  engine's last token. The control thread is modelled: every 200 ms of virtual time it publishes
  the engines' gauges (waiting, running, KV usage and capacity, prefix counters, preemptions) with
  the gateway's in-flight counts at the moment the gauges were taken.
- **Prompts**: seeded pseudo-text; the router hashes the raw \`messages\` JSON
  (\`[{"content":…,"role":"system"},{"content":…,"role":"user"}]\`), the engines get the same text
  through the simfleet tokenizer (≈ 4.2 bytes/token) with a chat template, so both see the same
  sharing. \`Ask.prompt_tokens\` = JSON bytes / 4; \`Ask.output_tokens\` = max_tokens = the exact
  output length (as \`vllm bench serve\` with ignore_eos).
- **Workloads** (requests per run; first 20% of the arrival window is warm-up, excluded from latency,
  hit-rate and throughput figures):
  - **W1** shared prefix (llm-d B2B, inference-perf \`shared_prefix\` semantics): 150 groups ×
    6,000-token system context, 5 users per group with a fixed 1,200-token question each (750
    distinct prompts; a request is a uniformly random one, so full prompts repeat), output uniform
    200–1,000 tokens, Poisson arrivals, 3,000 requests. Round-robin saturates near 12–13 QPS.
  - **W1h**: W1 with Zipf(1.0) group popularity (the top group gets 18% of requests, more than one
    backend's fair share): tests that affinity does not pin a hot prefix.
  - **W3** ShareGPT-like: 100-token common system prompt + lognormal user input (mean 230, σ 1.0,
    4–8,192) and output (mean 200, σ 0.9, 1–2,048), Poisson, 8,000 requests. Capacity ≈ 450 QPS.
  - **W4** bursty heavy-tail: W3 lengths, Gamma inter-arrivals with CV 3, 10% of inputs Pareto(α 1.2)
    16k–32k tokens, 3,000 requests.
  - **W6**: W1 at 12 QPS (round-robin's knee) and W4 at 30 QPS with the published gauges D ∈ {0, 50, 200, 1000} ms old
    (history sampled every gcd(200, D) ms), stamped with the publish time (the gateway cannot tell
    they are late) and carrying \`inflight_at_scrape\` from when they were taken.
- **Policies**: the crate's round_robin, least_request, p2c, least_load, prefix_affinity (crate at
  the commit above); \`random\` (harness); \`least_load_no_dr\` (W6 ablation: least_load with its
  dead reckoning switched off by publishing \`inflight_at_scrape = MAX\`); \`least_load_cand\` and
  \`pa_*_cand\` = candidate formulas prototyped in the harness (\`Router\` / \`Candidate\` in
  \`examples/virtual_sweep/gateway.rs\`), not crate policies.
- **Seeds**: $SEEDS (workload seed = engine seed = 1..$SEEDS; the W6 sections run twice as many,
  because their verdicts pair each stale run with the fresh run of the same seed); cells show the
  mean over seeds, with ± population standard deviation on TTFT p90/p99 and output tok/s.
- **Columns**: TTFT (mean, p50, p90, p99) / ITL / E2E in ms (s where marked); ITL mean is token-weighted and ITL p99 is
  over every inter-token gap; out tok/s = output tokens emitted between the end of warm-up and the
  last arrival, per second (the offered load below capacity, the capacity above it); prefix hit =
  Σ cached / Σ prompt tokens (engine-side); CV req / CV prompt tok = coefficient of variation of
  requests and prompt tokens per backend; max share = largest backend share of requests; herd
  share = share of each 200 ms interval's picks that went to that interval's most-picked backend
  (1 = herding); load CV = mean over scrapes of the CV of running + waiting across backends;
  preempt = preemptions; affinity picks = picks credited with a prefix match on the chosen backend.

EOF
  cat "$TMP"
} >"$OUT"
echo "route-sweep: wrote $OUT (${ELAPSED} s)"
