#!/usr/bin/env bash
# Third-party check: run guidellm (PyPI `guidellm`, pinned) against `tollgate demo`, unchanged, and
# keep its report. Idempotent; never run by CI; needs only loopback plus PyPI (first run).
#
#   scripts/third-party-check.sh   # first time: pip ~7 min (~6 GB venv) + cargo build ~10 min;
#                                  # then ~2.5-3.5 min (guidellm 148-193 s measured on 2 cores)
#
# What it does:
#   1. venv at loadtest/peers/venv-3p (gitignored) with guidellm==$GUIDELLM_VERSION, pinned by
#      loadtest/third-party/guidellm-constraints.txt (torch comes with its CUDA wheels from PyPI:
#      the venv is ~6 GB; nothing GPU is ever loaded);
#   2. a local HF-format tokenizer (loadtest/third-party/make_tokenizer.py) at
#      loadtest/peers/tokenizer-3p, since the hub is unreachable (HF_HUB_OFFLINE=1);
#   3. cargo build --release -p tollgate (CARGO_TARGET_DIR honoured), then `tollgate demo` on
#      127.0.0.1:$PORT (admin $ADMIN_PORT), both ports checked free first;
#   4. guidellm sweep (synchronous, throughput, constant rates), each benchmark bounded by
#      $MAX_SECONDS, the whole tool run by $TOOL_TIMEOUT;
#   5. stops tollgate (trap), copies guidellm's reports to loadtest/results/<date>-guidellm/ and
#      writes loadtest/results/<date>-guidellm.md with a cross-check against tollgate's /metrics.
# Exit status: 0 when guidellm saw no errors and its counts match tollgate's, else non-zero.
#
# Environment: PORT (18480), ADMIN_PORT (19480), MAX_SECONDS (12), SWEEP_SIZE (8),
# MAX_CONCURRENCY (128), WORKERS (4: guidellm worker processes), TOOL_TIMEOUT (420), PYTHON
# (python3), RESULTS_DATE (UTC date), KEEP_WORK=1 keeps the scratch directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="$ROOT/loadtest/peers"
THIRD="$ROOT/loadtest/third-party"
VENV="$PEERS/venv-3p"
TOKDIR="$PEERS/tokenizer-3p"
GUIDELLM_VERSION="0.8.1"
MODEL="llama-3-8b"            # what `tollgate demo` serves
PORT="${PORT:-18480}"
ADMIN_PORT="${ADMIN_PORT:-19480}"
MAX_SECONDS="${MAX_SECONDS:-12}"
SWEEP_SIZE="${SWEEP_SIZE:-8}"
MAX_CONCURRENCY="${MAX_CONCURRENCY:-128}"
WORKERS="${WORKERS:-4}"
TOOL_TIMEOUT="${TOOL_TIMEOUT:-420}"
PYTHON="${PYTHON:-python3}"
DATE="${RESULTS_DATE:-$(date -u +%F)}"
RESULTS="$ROOT/loadtest/results/$DATE-guidellm"
RESULTS_MD="$ROOT/loadtest/results/$DATE-guidellm.md"
T0=$(date +%s)

log() { printf 'third-party-check: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK="$(mktemp -d /tmp/tollgate-3p.XXXXXX)"
DEMO_PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    stop_demo
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  if [ "$rc" -eq 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; else log "scratch kept: $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SIGTERM drains (in-flight requests may finish, up to 30 s), then SIGKILL
stop_demo() {
  kill -TERM "$DEMO_PID" 2>/dev/null || true
  for _ in $(seq 1 350); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DEMO_PID" 2>/dev/null; then kill -KILL "$DEMO_PID" 2>/dev/null || true; fi
  wait "$DEMO_PID" 2>/dev/null || true
}
# CPU accounting, to tell whether other work shared the cores during the run: busy jiffies of the
# whole machine (/proc/stat, steal excluded) vs. CPU of this script's reaped children (cutime +
# cstime of $$: tollgate demo, guidellm and its workers, once they have exited and been waited for)
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }
cpu_children() { awk '{print $16+$17}' "/proc/$$/stat"; }
port_free() { [ -z "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

# ---------------------------------------------------------------- 1. venv + guidellm (idempotent)
mkdir -p "$PEERS"
if ! "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("guidellm") != sys.argv[1])' \
     "$GUIDELLM_VERSION" 2>/dev/null; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10 (guidellm needs >= 3.10)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV"; then
      log "python3 -m venv failed; installing python3-venv"
      [ "$(id -u)" -eq 0 ] || die "python3-venv missing and not root"
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
      rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
    fi
  fi
  log "pip install guidellm==$GUIDELLM_VERSION (first time: ~7 min, ~6 GB with torch's CUDA wheels)"
  "$VENV/bin/pip" install --quiet --no-cache-dir "guidellm==$GUIDELLM_VERSION" \
      -c "$THIRD/guidellm-constraints.txt"
fi
GL_VERSION="$("$VENV/bin/guidellm" --version 2>&1 | tail -1)"
log "guidellm: $GL_VERSION"

# ---------------------------------------------------------------- 2. local tokenizer (idempotent)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" "$THIRD/make_tokenizer.py" "$TOKDIR" "$ROOT" >&2

# ---------------------------------------------------------------- 3. build + start tollgate demo
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
log "cargo build --release -p tollgate (target $TARGET_DIR)"
BUILD_T0=$(date +%s)
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p tollgate --quiet)
BUILD_SECONDS=$(( $(date +%s) - BUILD_T0 ))
TOLLGATE="$TARGET_DIR/release/tollgate"
[ -x "$TOLLGATE" ] || die "no binary at $TOLLGATE"

port_free "$PORT" || die "port $PORT is in use"
port_free "$ADMIN_PORT" || die "port $ADMIN_PORT is in use"
"$TOLLGATE" demo --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN_PORT" >"$WORK/tollgate-demo.log" 2>&1 &
DEMO_PID=$!
ready=0
for _ in $(seq 1 100); do
  kill -0 "$DEMO_PID" 2>/dev/null || { cat "$WORK/tollgate-demo.log" >&2; die "tollgate demo exited"; }
  if curl -fsS --max-time 1 "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 &&
     curl -fsS --max-time 2 "http://127.0.0.1:$PORT/v1/models" 2>/dev/null | grep -q "\"$MODEL\""; then
    ready=1; break
  fi
  sleep 0.2
done
[ "$ready" = 1 ] || die "tollgate demo not ready after 20 s (log: $WORK/tollgate-demo.log)"
log "tollgate demo up (pid $DEMO_PID) on 127.0.0.1:$PORT, admin 127.0.0.1:$ADMIN_PORT"

# ---------------------------------------------------------------- 4. run guidellm (bounded)
OUT="$WORK/out"; mkdir -p "$OUT"
CMD=(
  "$VENV/bin/guidellm" run
  --backend "kind=openai_http,target=http://127.0.0.1:$PORT,model=$MODEL,api_routes./health=v1/models"
  --tokenizer "kind=hf_auto,model=$TOKDIR"
  --data "kind=synthetic_text,prompt_tokens=256,output_tokens=64"
  --profile "kind=sweep,sweep_size=$SWEEP_SIZE,max_concurrency=$MAX_CONCURRENCY"
  --constraint "kind=max_duration,seconds=$MAX_SECONDS"
  --metrics "kind=generative,sample_size=2"
  --output "kind=json,path=$OUT/benchmarks.json"
  --output "kind=csv,path=$OUT/benchmarks.csv"
  --output "kind=html,path=$OUT/benchmarks.html"
  --disable-progress
)
sleep 1   # let the per-worker metrics publish (metrics.publish_interval_ms = 250)
curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics-before.txt"
ACCESS_START=$(wc -l <"$WORK/tollgate-demo.log")
log "running guidellm: sweep of $SWEEP_SIZE benchmarks x ${MAX_SECONDS}s (timeout ${TOOL_TIMEOUT}s)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY0=$(cpu_busy); CHILD0=$(cpu_children); WALL0=$(date +%s.%N)
TOOL_T0=$(date +%s)
set +e
(cd "$WORK" && GUIDELLM__MAX_WORKER_PROCESSES="$WORKERS" \
   timeout --signal=INT --kill-after=30 "$TOOL_TIMEOUT" "${CMD[@]}") >"$OUT/console.txt" 2>&1
TOOL_RC=$?
set -e
TOOL_SECONDS=$(( $(date +%s) - TOOL_T0 ))
sleep 1.5 # metrics publish interval + access-log writer
curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics-after.txt"
tail -n +"$((ACCESS_START + 1))" "$WORK/tollgate-demo.log" >"$WORK/access.jsonl"
log "guidellm exited $TOOL_RC after ${TOOL_SECONDS}s"
if [ "$TOOL_RC" -ne 0 ] || [ ! -s "$OUT/benchmarks.json" ]; then
  tail -40 "$OUT/console.txt" >&2
  die "guidellm failed (rc $TOOL_RC); console: $OUT/console.txt"
fi

# stop tollgate now (the trap would too) so the run time below covers everything
STOP_T0=$(date +%s)
stop_demo
log "tollgate demo stopped in $(( $(date +%s) - STOP_T0 )) s"
DEMO_PID=""
BUSY1=$(cpu_busy); CHILD1=$(cpu_children); WALL1=$(date +%s.%N)
CPU_LINE=$(awk -v b0="$BUSY0" -v b1="$BUSY1" -v c0="$CHILD0" -v c1="$CHILD1" -v w0="$WALL0" -v w1="$WALL1" \
  -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
    wall = w1 - w0; busy = (b1 - b0) / hz; ours = (c1 - c0) / hz; other = busy - ours; if (other < 0) other = 0
    printf "%.0f s wall x %d cores = %.0f core-s; busy %.0f core-s, of which this run %.0f, other processes %.0f (%.1f%% of capacity)",
      wall, n, wall * n, busy, ours, other, 100 * other / (wall * n) }')

# ---------------------------------------------------------------- 5. keep the report
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
gzip -9 -c "$OUT/benchmarks.json" >"$RESULTS/benchmarks.json.gz"
cp "$OUT/benchmarks.csv" "$OUT/benchmarks.html" "$RESULTS/"
# console output without the absolute scratch path
sed "s#$WORK#\$WORK#g" "$OUT/console.txt" >"$RESULTS/console.txt"
cp "$WORK/metrics-before.txt" "$RESULTS/tollgate-metrics-before.txt"
cp "$WORK/metrics-after.txt" "$RESULTS/tollgate-metrics-after.txt"
"$VENV/bin/pip" freeze >"$RESULTS/pip-freeze.txt" 2>/dev/null

# which tollgate was measured: tracked Rust sources under crates/ against HEAD
SRC_CHANGED=$(git -C "$ROOT" diff --name-only HEAD -- crates 2>/dev/null | grep -c '\.rs$' || true)
if [ "$SRC_CHANGED" = 0 ]; then SRC_STATE="Rust sources under crates/ as committed"
else SRC_STATE="$SRC_CHANGED Rust source file(s) under crates/ differ from HEAD"; fi
{
  # shellcheck disable=SC2016  # $WORK / $REPO are meant literally
  printf 'cd $WORK && HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 GUIDELLM__MAX_WORKER_PROCESSES=%s \\\n  timeout --signal=INT %s' "$WORKERS" "$TOOL_TIMEOUT"
  for a in "${CMD[@]}"; do
    a="${a//$ROOT/\$REPO}"; a="${a//$WORK/\$WORK}"
    case "$a" in --*) printf ' \\\n  %s' "$a" ;; *) printf ' %s' "$a" ;; esac
  done
  printf '\n'
} >"$WORK/command.txt"
{
  echo "tool:      $GL_VERSION (PyPI guidellm==$GUIDELLM_VERSION), Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), transformers $("$VENV/bin/python" -c 'import transformers; print(transformers.__version__)'), torch $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
  echo "tokenizer: local byte-level BPE, vocab 8192 (loadtest/third-party/make_tokenizer.py)"
  echo "gateway:   $("$TOLLGATE" --version 2>&1 | head -1), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($SRC_STATE), \`tollgate demo --listen 127.0.0.1:$PORT --admin 127.0.0.1:$ADMIN_PORT\`"
  echo "date:      $(date -u '+%F %T UTC')"
  echo "machine:   nproc $(nproc), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2 " GiB RAM"}')"
  echo "kernel:    $(uname -sr)"
  echo "run time:  guidellm ${TOOL_SECONDS} s (cargo build ${BUILD_SECONDS} s); tool + gateway + fleet on the same 2 cores"
  echo "load avg:  $LOAD_BEFORE before guidellm (1/5/15 min)"
  echo "cpu:       $CPU_LINE"
} >"$WORK/facts.txt"

set +e
"$VENV/bin/python" "$THIRD/summarise_guidellm.py" \
  --report "$OUT/benchmarks.json" --console "$OUT/console.txt" \
  --metrics-before "$WORK/metrics-before.txt" --metrics-after "$WORK/metrics-after.txt" \
  --access-log "$WORK/access.jsonl" --command-file "$WORK/command.txt" --facts "$WORK/facts.txt" \
  --results-dir "$RESULTS" --out "$RESULTS_MD" --date "$DATE" --model "$MODEL" \
  --run-seconds "$(( $(date +%s) - T0 ))"
SUM_RC=$?
set -e
du -sh "$RESULTS" >&2
log "report: ${RESULTS_MD#"$ROOT"/} and ${RESULTS#"$ROOT"/}/ (total $(( $(date +%s) - T0 )) s)"
exit "$SUM_RC"
