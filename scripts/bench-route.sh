#!/usr/bin/env bash
# Routing quality, side by side (routing.md §4), loopback only, bounded in time:
#
#   scripts/setup-sglang-router.sh   # once (the outside peer; ~30 s)
#   scripts/bench-route.sh           # ~20-25 min; QUICK=1 ~5-6 min
#
# For every workload (loadtest/route/w1.toml, w3.toml, w4.toml) and every contender, it starts a
# FRESH simulated fleet (8 SGLang-personality backends in model mode, empty KV caches; config
# loadtest/route/fleet.toml.tmpl), starts the contender in front of it, drives it with
# tollgate-loadtest (same seeded requests, same arrival times for every contender), scrapes the
# 8 backends' /metrics, then stops both. Contenders:
#   tg-<policy>      tollgate `serve` with [[pools]] policy = <policy> (POLICIES)
#   sgl-<policy>     sglang-router 0.3.2 with --policy <policy> (SGLANG_POLICIES)
# W6 (stale load metrics): STALE_POLICIES run W1 again with [routing] scrape_interval_ms = each
# of STALE_INTERVALS other than 200 (stale_after_ms = 3 × interval); their 200 ms rows are the W1
# runs themselves.
# Output: loadtest/results/<date>-routing[-quick].md and, beside it, a directory of JSON reports
# (one per run; `tollgate-loadtest table <files>` rebuilds any table) plus the rendered configs.
#
# Knobs (env):
#   QUICK=1                 short runs, fewer contenders (see below), no W6
#   POLICIES="round_robin least_request p2c least_load prefix_affinity"
#   SGLANG_POLICIES="cache_aware round_robin"   ("" skips sglang-router)
#   WORKLOADS="w1 w3 w4"    STALE_POLICIES="least_load prefix_affinity"  STALE_INTERVALS="200 1000"
#   DURATION=30 WARMUP=6    seconds per run (sending stops at DURATION; in-flight requests drain)
#   KV=9000 SPEED=0.25 SEED=1   fleet KV capacity (tokens per backend), speed factor, seed
#   BUDGET_S=1500           skip the remaining runs once the script has used this much time
#   TASKSET_FLEET= TASKSET_GW= TASKSET_DRIVER=   CPU lists for `taskset -c` (unset: no pinning)
#   SKIP_BUILD=0  CARGO_TARGET_DIR  SGLANG_VENV=/opt/tollgate-peers/sglang-router-venv  KEEP_RUN=0
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  POLICIES="${POLICIES-round_robin least_load prefix_affinity}"
  SGLANG_POLICIES="${SGLANG_POLICIES-cache_aware}"
  STALE_INTERVALS="${STALE_INTERVALS-200}"
  DURATION="${DURATION:-15}" WARMUP="${WARMUP:-4}" BUDGET_S="${BUDGET_S:-330}"
fi
POLICIES="${POLICIES-round_robin least_request p2c least_load prefix_affinity}"
SGLANG_POLICIES="${SGLANG_POLICIES-cache_aware round_robin}"
WORKLOADS="${WORKLOADS:-w1 w3 w4}"
STALE_POLICIES="${STALE_POLICIES-least_load prefix_affinity}"
STALE_INTERVALS="${STALE_INTERVALS-200 1000}"
DURATION="${DURATION:-30}" WARMUP="${WARMUP:-6}" BUDGET_S="${BUDGET_S:-1500}"
KV="${KV:-9000}" SPEED="${SPEED:-0.25}" SEED="${SEED:-1}"
SGLANG_VENV="${SGLANG_VENV:-/opt/tollgate-peers/sglang-router-venv}"
FLEET_BASE=19300 TG_HTTP=127.0.0.1:18180 TG_ADMIN=127.0.0.1:18181
SGL_ADDR=127.0.0.1:18190 SGL_PROM=18191
MODEL=llama-3-8b
DAY="$(date -u +%Y-%m-%d)"
SUFFIX=""; [ "$QUICK" = 1 ] && SUFFIX="-quick"
OUT_MD="$ROOT/loadtest/results/$DAY-routing$SUFFIX.md"
OUT_DIR="$ROOT/loadtest/results/$DAY-routing$SUFFIX"
RUN="$(mktemp -d /tmp/tollgate-bench-route.XXXXXX)"
T0=$(date +%s) # reset after the build: BUDGET_S counts benchmark time only
PIDS=()
LOADAVG=()

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  if [ "${KEEP_RUN:-0}" = 1 ]; then echo "bench-route: kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench-route: $*" >&2; }
pin() { # pin <cpu-list-or-empty> cmd... — execs, so `pin … &` leaves $! = the process itself
  local cpus="$1"; shift
  if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
wait_port() {
  for _ in $(seq 100); do ss -ltnH "sport = :${1##*:}" | grep -q . && return 0; sleep 0.1; done
  log "nothing listens on $1"; return 1
}
wait_free() {
  for _ in $(seq 50); do ss -ltnH "sport = :${1##*:}" | grep -q . || return 0; sleep 0.1; done
  log "port ${1##*:} still busy"; return 1
}
stop_pid() { # stop one process we started, and forget it
  local p="$1"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  local keep=()
  for q in "${PIDS[@]:-}"; do [ "$q" != "$p" ] && [ -n "$q" ] && keep+=("$q"); done
  PIDS=("${keep[@]:-}")
}

# --- build and check the tools
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q \
    -p tollgate -p tollgate-simfleet -p tollgate-loadtest)
fi
TG="$TARGET_DIR/release/tollgate"; SIM="$TARGET_DIR/release/tollgate-simfleet"
LT="$TARGET_DIR/release/tollgate-loadtest"
T0=$(date +%s)
SGL_VERSION=""
if [ -n "$SGLANG_POLICIES" ]; then
  if [ -x "$SGLANG_VENV/bin/python" ] && "$SGLANG_VENV/bin/python" -c 'import sglang_router' 2>/dev/null; then
    SGL_VERSION="$("$SGLANG_VENV/bin/python" -m pip show sglang-router 2>/dev/null | awk '/^Version:/ {print $2}')"
  else
    log "sglang-router not installed in $SGLANG_VENV (run scripts/setup-sglang-router.sh): skipping it"
    SGLANG_POLICIES=""
  fi
fi
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*.json "$OUT_DIR"/*.toml # never mix two runs' files in one report

# --- configs
PORTS=(); BACKEND_URLS=(); METRICS=()
for i in 0 1 2 3 4 5 6 7; do
  PORTS+=($((FLEET_BASE + i)))
  BACKEND_URLS+=("http://127.0.0.1:$((FLEET_BASE + i))")
  METRICS+=("http://127.0.0.1:$((FLEET_BASE + i))/metrics")
done
render_fleet() {
  local s="s/@KV@/$KV/g; s/@SPEED@/$SPEED/g; s/@SEED@/$SEED/g"
  for i in 0 1 2 3 4 5 6 7; do s="$s; s/@PORT$i@/${PORTS[$i]}/g"; done
  sed -e "$s" "$ROOT/loadtest/route/fleet.toml.tmpl"
}
render_fleet >"$OUT_DIR/fleet.toml"
render_tollgate() { # policy scrape_interval_ms stale_after_ms
  local s="s/@POLICY@/$1/g; s/@SCRAPE_MS@/$2/g; s/@STALE_MS@/$3/g; s/@LISTEN@/$TG_HTTP/g; s/@ADMIN@/$TG_ADMIN/g"
  for i in 0 1 2 3 4 5 6 7; do s="$s; s/@PORT$i@/${PORTS[$i]}/g"; done
  sed -e "$s" "$ROOT/loadtest/route/tollgate.toml.tmpl"
}
SGL_FLAGS_cache_aware="--cache-threshold 0.3 --balance-abs-threshold 64 --balance-rel-threshold 1.5 --eviction-interval-secs 60 --max-tree-size 67108864"
sgl_args() { # policy
  local extra=""
  [ "$1" = cache_aware ] && extra=" $SGL_FLAGS_cache_aware"
  echo "--worker-urls ${BACKEND_URLS[*]} --policy $1$extra --host ${SGL_ADDR%%:*} --port ${SGL_ADDR##*:} --prometheus-host 127.0.0.1 --prometheus-port $SGL_PROM --log-level warn"
}
render_tollgate prefix_affinity 200 1000 >"$RUN/check.toml"
if ! "$TG" check --config "$RUN/check.toml" >"$RUN/check.log" 2>&1; then
  log "this tollgate does not accept loadtest/route/tollgate.toml.tmpl ([routing]/[[pools]]):"
  cat "$RUN/check.log" >&2
  log "skipping the tollgate contenders"
  POLICIES=""; STALE_POLICIES=""
fi

# --- one run: fresh fleet + contender + driver
SKIPPED=()
run_one() { # workload label kind(tg|sgl) policy scrape_ms
  local wl="$1" label="$2" kind="$3" policy="$4" scrape_ms="${5:-200}"
  local used=$(( $(date +%s) - T0 ))
  if [ $((used + DURATION + 15)) -gt "$BUDGET_S" ]; then
    log "budget ($BUDGET_S s) would be exceeded: skipping $wl/$label"
    SKIPPED+=("$wl/$label"); return 0
  fi
  local json="$OUT_DIR/$wl-$label.json" target
  for p in "${PORTS[@]}"; do wait_free "$p"; done
  pin "${TASKSET_FLEET:-}" "$SIM" --config "$OUT_DIR/fleet.toml" >"$RUN/sim-$wl-$label.log" 2>&1 &
  local sim=$!; PIDS+=("$sim")
  for p in "${PORTS[@]}"; do wait_port "127.0.0.1:$p"; done
  local gw
  if [ "$kind" = tg ]; then
    wait_free "$TG_HTTP"
    local stale=$((scrape_ms * 5))
    if [ "$scrape_ms" -gt 200 ]; then stale=$((scrape_ms * 3)); fi
    render_tollgate "$policy" "$scrape_ms" "$stale" >"$OUT_DIR/tollgate-$label.toml"
    pin "${TASKSET_GW:-}" "$TG" serve --config "$OUT_DIR/tollgate-$label.toml" >"$RUN/gw-$wl-$label.log" 2>&1 &
    gw=$!; PIDS+=("$gw"); target="http://$TG_HTTP"
    wait_port "$TG_HTTP"
  else
    wait_free "$SGL_ADDR"
    # shellcheck disable=SC2046
    pin "${TASKSET_GW:-}" "$SGLANG_VENV/bin/python" -m sglang_router.launch_router $(sgl_args "$policy") \
      >"$RUN/gw-$wl-$label.log" 2>&1 &
    gw=$!; PIDS+=("$gw"); target="http://$SGL_ADDR"
    wait_port "$SGL_ADDR"
    local ok=0
    for _ in $(seq 100); do
      ok=$(curl -s -m 1 "http://$SGL_ADDR/workers" | grep -o '"is_healthy":true' | wc -l || true)
      [ "$ok" -ge 8 ] && break; sleep 0.1
    done
    [ "$ok" -ge 8 ] || { log "sglang-router registered only $ok workers"; tail -5 "$RUN/gw-$wl-$label.log" >&2; }
  fi
  log "$wl / $label (t=${used}s)"
  LOADAVG+=("$wl/$label $(cut -d' ' -f1 /proc/loadavg)")
  (pin "${TASKSET_DRIVER:-}" "$LT" run --scenario "$ROOT/loadtest/route/$wl.toml" --target "$target" \
    --model "$MODEL" --label "$label" --duration "$DURATION" --warmup "$WARMUP" --out "$json" \
    --backend-metrics "${METRICS[@]}" --scrape-interval-ms 1000 --quiet) >"$RUN/lt-$wl-$label.out" 2>&1 \
    || { log "driver failed:"; tail -5 "$RUN/lt-$wl-$label.out" >&2; }
  tail -1 "$RUN/lt-$wl-$label.out" >&2
  if ! kill -0 "$gw" 2>/dev/null; then log "$label exited during the run:"; tail -5 "$RUN/gw-$wl-$label.log" >&2; fi
  stop_pid "$gw"; stop_pid "$sim"
}

for wl in $WORKLOADS; do
  for p in $POLICIES; do run_one "$wl" "tg-$p" tg "$p" 200; done
  for p in $SGLANG_POLICIES; do run_one "$wl" "sgl-$p" sgl "$p"; done
done
if [ -n "$STALE_POLICIES" ] && [[ " $WORKLOADS " == *" w1 "* ]]; then
  for iv in $STALE_INTERVALS; do
    [ "$iv" = 200 ] && continue
    for p in $STALE_POLICIES; do run_one w1 "tg-$p-scrape$iv" tg "$p" "$iv"; done
  done
fi

# --- report
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)"
files_for() { # workload -> existing JSON files in contender order
  local wl="$1" f
  for p in $POLICIES; do f="$OUT_DIR/$wl-tg-$p.json"; [ -f "$f" ] && echo "$f"; done
  for p in $SGLANG_POLICIES; do f="$OUT_DIR/$wl-sgl-$p.json"; [ -f "$f" ] && echo "$f"; done
  return 0
}
{
  echo "# Routing benchmark — $DAY${SUFFIX:+ (QUICK)}"
  echo
  echo "Machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $commit$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted file(s)")."
  echo "Command: \`QUICK=$QUICK POLICIES=\"$POLICIES\" SGLANG_POLICIES=\"$SGLANG_POLICIES\" WORKLOADS=\"$WORKLOADS\" DURATION=$DURATION WARMUP=$WARMUP KV=$KV SPEED=$SPEED SEED=$SEED scripts/bench-route.sh\`"
  echo "Pinning: fleet=${TASKSET_FLEET:-none} gateway=${TASKSET_GW:-none} driver=${TASKSET_DRIVER:-none}. Wall time: $(( $(date +%s) - T0 )) s."
  echo
  echo "Fleet: 8 simulated SGLang backends (model mode), \`kv_capacity_tokens = $KV\`, \`speed_factor = $SPEED\`, jitter 0.02, seed $SEED; a fresh fleet (empty caches) for every run. Config: \`$(basename "$OUT_DIR")/fleet.toml\`."
  echo "tollgate: \`tollgate serve\`, 2 workers, \`[routing] scrape_interval_ms = 200, stale_after_ms = 1000\` unless stated, one pool of the 8 backends (\`$(basename "$OUT_DIR")/tollgate-tg-*.toml\`)."
  if [ -n "$SGL_VERSION" ]; then
    echo "sglang-router $SGL_VERSION: \`python -m sglang_router.launch_router $(sgl_args '<policy>')\` (cache_aware adds \`$SGL_FLAGS_cache_aware\`, its defaults)."
  fi
  echo "Driver: tollgate-loadtest, streaming chat completions with \`stream_options.include_usage\`, the same seeded requests and arrival times for every contender; each run sends for $DURATION s, the first $WARMUP s are warm-up (excluded), then in-flight requests drain."
  echo
  echo "Columns: latencies in ms, client-side (TTFT = first content token; ITL = every gap between content events). *hit %* = Σ usage.cached_tokens / Σ usage.prompt_tokens. *imbal. CV* = coefficient of variation of the requests each backend finished (from its \`sglang:num_requests_total\`). *good %* = requests meeting the scenario's TTFT and TPOT SLOs. Per-backend shares, load-gauge CV over time and everything else are in the JSON files."
  for wl in $WORKLOADS; do
    echo
    echo "## $wl — $(awk -F' = ' '/^description/ {gsub(/"/, "", $2); print $2}' "$ROOT/loadtest/route/$wl.toml")"
    echo
    echo "Scenario \`loadtest/route/$wl.toml\`; SLO: $(awk '/^\[slo\]/{s=1;next} s && /=/ {printf "%s%s = %s ms", sep, $1, $3; sep=", "}' "$ROOT/loadtest/route/$wl.toml" | sed 's/_ms = / ≤ /g')."
    echo
    mapfile -t fs < <(files_for "$wl")
    if [ ${#fs[@]} -gt 0 ]; then "$LT" table "${fs[@]}"; else echo "(no runs)"; fi
  done
  if [ -n "$STALE_POLICIES" ] && [[ " $WORKLOADS " == *" w1 "* ]] && [ -n "${STALE_INTERVALS//200/}" ]; then
    fs=()
    for p in $STALE_POLICIES; do
      for iv in $STALE_INTERVALS; do
        if [ "$iv" = 200 ]; then f="$OUT_DIR/w1-tg-$p.json"; else f="$OUT_DIR/w1-tg-$p-scrape$iv.json"; fi
        [ -f "$f" ] && fs+=("$f")
      done
    done
    if [ ${#fs[@]} -gt 0 ]; then
      echo
      echo "## W6 — W1 with stale load metrics"
      echo
      echo "tollgate \`[routing] scrape_interval_ms\` = $STALE_INTERVALS (stale_after_ms = 5× at 200 ms, 3× otherwise). Rows without a suffix are the W1 runs above (200 ms)."
      echo
      "$LT" table "${fs[@]}"
    fi
  fi
  echo
  echo "1-min load average when each run started (2 cores; anything above ~2 means other work shared the machine): ${LOADAVG[*]/%/;}"
  if [ ${#SKIPPED[@]} -gt 0 ]; then
    echo
    echo "Skipped (time budget $BUDGET_S s): ${SKIPPED[*]}"
  fi
  notes="$(grep -l '"notes": \[$' "$OUT_DIR"/*.json 2>/dev/null || true)"
  for f in $notes; do
    echo; echo "Notes from $(basename "$f"):"; sed -n '/"notes": \[/,/\]/p' "$f" | sed '1d;$d' | sed 's/^ */- /'
  done
} >"$OUT_MD"
cat "$OUT_MD"
log "wrote $OUT_MD and $OUT_DIR/ in $(( $(date +%s) - T0 )) s"
