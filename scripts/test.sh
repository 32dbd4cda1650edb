#!/usr/bin/env bash
# The one test command (README "Test"; .ci/run calls exactly this).
# Runs: format check, clippy -D warnings, the whole workspace test suite (unit, integration over
# loopback, proptests, fuzz-corpus replays), then real clients: the official `openai` Python SDK
# and curl against a simulated backend directly and through `tollgate demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
T="${CARGO_TARGET_DIR:-target}"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
# Every API key a test mints is a canary: tests append it (and its secret part) to this file,
# and after the suite nothing it printed may contain one (reliability.md §D item 24).
canaries=$(mktemp); testlog=$(mktemp)
export TOLLGATE_CANARY_FILE="$canaries"
cargo test --workspace 2>&1 | tee "$testlog"
unset TOLLGATE_CANARY_FILE
echo "== canary keys in the test suite's output"
n=$(grep -c . "$canaries" || true)
[ "$n" -gt 0 ] || { echo "no canary keys were recorded: the governance tests did not run"; exit 1; }
leftovers=$(find "${TMPDIR:-/tmp}" -maxdepth 2 -name 'tollgate-*' -type f 2>/dev/null || true)
if grep -F -l -f "$canaries" "$testlog" $leftovers 2>/dev/null; then
  echo "canary keys leaked into the files above"; exit 1
fi
echo "canaries: $n strings, 0 found in test output and leftover test files"
rm -f "$canaries" "$testlog"
cargo build -q -p tollgate -p tollgate-simfleet

echo "== real clients: openai Python SDK + curl"
PY="$T/py/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$T/py"
  "$T/py/bin/pip" install -q --disable-pip-version-check openai
fi
logdir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { # file pattern -> prints the captured address
  for _ in $(seq 1 100); do
    if a=$(grep -o "$2" "$1" | head -1) && [ -n "$a" ]; then echo "${a##*//}"; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# 1. The SDK straight against a simulated vLLM backend (latency model on).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[[backends]]\nname = "v"\npersonality = "vllm"\nlisten = "127.0.0.1:%s"\n' "$port" >"$logdir/fleet.toml"
"$T/debug/tollgate-simfleet" --config "$logdir/fleet.toml" >"$logdir/sim.log" 2>&1 & pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
"$PY" crates/tollgate-simfleet/tests/py/openai_sdk_check.py --base-url "http://127.0.0.1:$port/v1" --model llama-3-8b

# 2. The SDK and curl through the gateway (`tollgate demo`, ephemeral ports).
"$T/debug/tollgate" demo --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$logdir/demo.out" 2>"$logdir/demo.err" & demo=$!; pids+=($demo)
gw=$(wait_for "$logdir/demo.err" 'listening http://[0-9.:]*')
"$PY" crates/tollgate-simfleet/tests/py/openai_sdk_check.py --base-url "http://$gw/v1" --model llama-3-8b
curl -sfN "http://$gw/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"llama-3-8b","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}' | grep -q '^data: \[DONE\]'
# Graceful stop on SIGTERM exits 0.
kill -TERM "$demo"; wait "$demo"
echo "real clients: 3 passed, 0 failed"
