#!/usr/bin/env bash
# Streaming latency with content scanning on vs off, side by side in one run (loopback only):
#
#   scripts/bench-scan.sh            # ~2–4 min; results in loadtest/results/<date>-scan-itl.md
#
# Starts one simulated vLLM backend in *model* mode (the latency model: real prefill/decode step
# times, so inter-token gaps are milliseconds, as on a GPU), and two tollgate instances in front
# of it: one without [scan], one with the shipped rules (rules/pii.toml, secrets.toml,
# words.toml). loadtest/itl.py then runs CONC concurrent streams, TOTAL per target, ROUNDS rounds
# interleaved over direct / scan_off / scan_on and reports TTFT and ITL percentiles.
# Knobs: CONC=16 TOTAL=160 ROUNDS=3 MAX_TOKENS=64 SKIP_BUILD=0 CARGO_TARGET_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CONC="${CONC:-16}" TOTAL="${TOTAL:-160}" ROUNDS="${ROUNDS:-3}" MAX_TOKENS="${MAX_TOKENS:-64}"
SIM_ADDR=127.0.0.1:19200 OFF_ADDR=127.0.0.1:18090 ON_ADDR=127.0.0.1:18091
DAY="$(date -u +%Y-%m-%d)"
OUT="$ROOT/loadtest/results/$DAY-scan-itl.md"
RUN="$(mktemp -d /tmp/tollgate-bench-scan.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 100); do ss -ltnH "sport = :${1##*:}" | grep -q . && return 0; sleep 0.1; done
  echo "bench-scan: nothing listens on $1" >&2; exit 1
}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tollgate -p tollgate-simfleet)
fi
TG="$TARGET_DIR/release/tollgate"; SIM="$TARGET_DIR/release/tollgate-simfleet"
cat >"$RUN/fleet.toml" <<TOML
seed = 42
threads = 1
[[backends]]
name = "vllm-0"
personality = "vllm"
listen = "$SIM_ADDR"
default_max_tokens = $MAX_TOKENS
TOML
gw_conf() { # listen admin scan?
  cat <<TOML
workers = 2
[listen]
http = "$1"
admin = "$2"
[log]
access_log = "off"
[[backends]]
name = "sim-0"
url = "http://$SIM_ADDR"
kind = "vllm"
[[models]]
name = "llama-3-8b"
backends = ["sim-0"]
TOML
  if [ "$3" = on ]; then
    printf '[scan]\nrules = ["%s/rules/pii.toml", "%s/rules/secrets.toml", "%s/rules/words.toml"]\n' "$ROOT" "$ROOT" "$ROOT"
  fi
}
gw_conf "$OFF_ADDR" 127.0.0.1:19291 off >"$RUN/off.toml"
gw_conf "$ON_ADDR" 127.0.0.1:19292 on >"$RUN/on.toml"
"$TG" check --config "$RUN/on.toml"
"$SIM" --config "$RUN/fleet.toml" >"$RUN/sim.log" 2>&1 & PIDS+=($!)
"$TG" serve --config "$RUN/off.toml" >"$RUN/off.log" 2>&1 & PIDS+=($!)
"$TG" serve --config "$RUN/on.toml" >"$RUN/on.log" 2>&1 & PIDS+=($!)
for a in "$SIM_ADDR" "$OFF_ADDR" "$ON_ADDR"; do wait_port "$a"; done
RES="$(timeout 900 python3 "$ROOT/loadtest/itl.py" --target direct=$SIM_ADDR --target scan_off=$OFF_ADDR \
  --target scan_on=$ON_ADDR --conc "$CONC" --total "$TOTAL" --rounds "$ROUNDS" --max-tokens "$MAX_TOKENS")"
echo "$RES"
{
  echo "# Streaming latency, content scanning off vs on — $DAY"
  echo
  echo "Machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
  echo "Command: \`CONC=$CONC TOTAL=$TOTAL ROUNDS=$ROUNDS MAX_TOKENS=$MAX_TOKENS scripts/bench-scan.sh\`"
  echo "Backend: one simulated vLLM in model mode; gateways: 2 workers each, access log off; scan_on = shipped rules."
  echo
  echo '```'
  echo "$RES"
  echo '```'
} >"$OUT"
echo "bench-scan: wrote $OUT" >&2
