#!/usr/bin/env bash
# Side-by-side comparison, one box, loopback only: plain reverse proxies (nginx, HAProxy), AI
# gateways (LiteLLM proxy, Portkey gateway OSS) and tollgate twice (plain, and "tollgate-ai" with
# content scanning + prefix-aware routing on), all in front of the SAME simulated vLLM backend,
# plus direct-to-backend; the same scenarios against each; a ratio table at the end.
#
#   scripts/compare.sh                 # full run: ~12 min on a quiet 2-core box, at most ≈ BUDGET_S (25 min)
#                                      # of measurement when it has to wait for quiet; installs peers if missing
#   SCENARIOS="nonstream_c64" CONTENDERS="direct nginx tollgate" scripts/compare.sh   # a subset
#
# What it does (bounded in time; everything it starts is stopped on exit, also on Ctrl-C):
#   1. installs missing peers with scripts/setup-peers.sh (nginx, haproxy: Debian; LiteLLM: pip in
#      loadtest/peers/venv; Portkey 1.15.2: npm in loadtest/peers/portkey with its two fixes; oha),
#      builds release tollgate, tollgate-simfleet and tollgate-loadtest (SKIP_BUILD=1 skips);
#   2. starts one backend `tollgate-simfleet --instant --personality vllm --events 64` and every
#      contender in front of it, checks that each listens on loopback only, then a smoke check:
#      each contender answers chat.json and chat_stream.json with 200, the stream is
#      text/event-stream with >= 64 content events and [DONE]; tollgate-ai must show scan hits;
#   3. per scenario and per contender (scenario-major, contenders interleaved): resume the
#      contender, freeze (SIGSTOP) every other contender so idle peers take no CPU from its core,
#      warm up, wait for a quiet machine, measure; re-run a row when processes outside the rig used
#      more than FOREIGN_MAX cores (as scripts/bench.sh: quiet wait, foreign-CPU check and CPU
#      accounting from /proc);
#   4. writes loadtest/results/<date>-compare.md and raw JSON in loadtest/results/<date>-compare/
#      (a re-run on the same day replaces both).
#
# Scenarios (SCENARIOS, names resolved in loadtest/scenarios/ or paths):
#   NAME.env  -> oha (classic request/response; bodies loadtest/bodies/*.json; as bench.sh)
#   NAME.toml -> tollgate-loadtest (LLM-aware driver: TTFT/ITL, closed or open loop)
#   Default: nonstream_c64 stream_c64 nonstream_c1 chat-small stream64 long-prompt-scan (a missing
#   driver file is skipped with a note). DRIVER_DURATION / DRIVER_WARMUP override every driver
#   scenario's duration_s / warmup_s; DRIVER_ARGS adds raw arguments to `tollgate-loadtest run`.
#   Contenders that need headers (LiteLLM: Authorization; Portkey: x-portkey-*) are driven by
#   tollgate-loadtest only if it has `--header` (otherwise those rows are skipped with a note).
#
# Pinning (PIN=1, default): two CPU sets, given to `taskset -c`.
#   PROXY_CPUS  (default "0"): the contender under test — every contender, one at a time.
#   CLIENT_CPUS (default "1"): the load generator (oha / tollgate-loadtest) AND the backend.
#   Every contender is configured with as many workers as PROXY_CPUS has CPUs: nginx
#   worker_processes, haproxy nbthread, tollgate `workers`, LiteLLM --num_workers; Portkey is one
#   node process (its libuv/V8 helper threads share the same set). On a 2-core box each contender
#   thus gets exactly core 0, and the "direct" row shows the ceiling that load generator + backend
#   reach on core 1 alone: a contender at 1.0x direct is not the bottleneck. tollgate pins its
#   workers itself (core_affinity::get_core_ids(), which reads the inherited mask): the report
#   lists every contender thread's Cpus_allowed_list to show all stay inside PROXY_CPUS.
#   PIN=0 disables taskset (everything shares every core, as bench.sh); WORKERS then = nproc.
#
# Knobs (environment):
#   CONTENDERS="direct nginx haproxy tollgate tollgate-ai litellm portkey"  SCENARIOS=...
#   PIN=1  PROXY_CPUS=0  CLIENT_CPUS=1  WORKERS=(CPUs in PROXY_CPUS)  IO_DRIVER=auto (tollgate)
#   BUDGET_S=1500: counted from the moment the rig is up (install/build excluded); quiet waits are
#     shortened so the run ends near it, and after it no more quiet waits or retries
#   QUIET_IDLE_PCT=85  QUIET_MAX_S=60  FOREIGN_MAX=0.15  RETRIES=3  FREEZE_IDLE=1
#   LITELLM_START_S=240 (bound on LiteLLM's start-up)  START_S=30 (other contenders)
#   SKIP_BUILD=0  NO_SETUP=0  KEEP_RUN=0  RESULTS_TAG=compare  CARGO_TARGET_DIR (default <repo>/target)
#   SETUP_TIMEOUT_S=1800 (setup-peers.sh)  BUILD_TIMEOUT_S=3600 (cargo build)
#   Ports (all must be 127.x): BACKEND_ADDR=127.0.0.1:19400 NGINX_ADDR=127.0.0.1:18401
#   HAPROXY_ADDR=127.0.0.1:18402 TOLLGATE_ADDR=127.0.0.1:18403 TOLLGATE_ADMIN=127.0.0.1:19403
#   TGAI_ADDR=127.0.0.1:18404 TGAI_ADMIN=127.0.0.1:19404 LITELLM_ADDR=127.0.0.1:18405
#   PORTKEY_ADDR=127.0.0.1:18406
#   OHA, NGINX, HAPROXY, NODE, VENV (LiteLLM venv), PORTKEY_DIR: tool locations
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LT="$ROOT/loadtest"
PEERS="$LT/peers"
OHA="${OHA:-$PEERS/cargo/bin/oha}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
HAPROXY="${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}"
NODE="${NODE:-$(command -v node || echo /usr/bin/node)}"
VENV="${VENV:-$PEERS/venv}"
PORTKEY_DIR="${PORTKEY_DIR:-$PEERS/portkey}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CONTENDERS="${CONTENDERS:-direct nginx haproxy tollgate tollgate-ai litellm portkey}"
SCENARIOS="${SCENARIOS:-nonstream_c64 stream_c64 nonstream_c1 chat-small stream64 long-prompt-scan}"
BACKEND_ADDR="${BACKEND_ADDR:-127.0.0.1:19400}"
NGINX_ADDR="${NGINX_ADDR:-127.0.0.1:18401}"
HAPROXY_ADDR="${HAPROXY_ADDR:-127.0.0.1:18402}"
TOLLGATE_ADDR="${TOLLGATE_ADDR:-127.0.0.1:18403}"
TOLLGATE_ADMIN="${TOLLGATE_ADMIN:-127.0.0.1:19403}"
TGAI_ADDR="${TGAI_ADDR:-127.0.0.1:18404}"
TGAI_ADMIN="${TGAI_ADMIN:-127.0.0.1:19404}"
LITELLM_ADDR="${LITELLM_ADDR:-127.0.0.1:18405}"
PORTKEY_ADDR="${PORTKEY_ADDR:-127.0.0.1:18406}"
PIN="${PIN:-1}" PROXY_CPUS="${PROXY_CPUS:-0}" CLIENT_CPUS="${CLIENT_CPUS:-1}"
IO_DRIVER="${IO_DRIVER:-auto}"
LITELLM_START_S="${LITELLM_START_S:-240}" START_S="${START_S:-30}"
export QUIET_IDLE_PCT="${QUIET_IDLE_PCT:-85}" QUIET_MAX_S="${QUIET_MAX_S:-60}" FOREIGN_MAX="${FOREIGN_MAX:-0.15}"
export RETRIES="${RETRIES:-3}" BUDGET_S="${BUDGET_S:-1500}" FREEZE_IDLE="${FREEZE_IDLE:-1}"
export DRIVER_DURATION="${DRIVER_DURATION:-}" DRIVER_WARMUP="${DRIVER_WARMUP:-}" DRIVER_ARGS="${DRIVER_ARGS:-}"
DAY="$(date -u +%Y-%m-%d)"
TAG="${RESULTS_TAG:-compare}"
OUT_MD="$LT/results/$DAY-$TAG.md"
OUT_RAW="$LT/results/$DAY-$TAG"
T_SCRIPT=$(date +%s)
LOADAVG_START="$(cat /proc/loadavg)"

die() { echo "compare: $*" >&2; exit 2; }
log() { echo "compare: $*" >&2; }
want() { case " $CONTENDERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- 0. arguments
for c in $CONTENDERS; do
  case "$c" in direct|nginx|haproxy|tollgate|tollgate-ai|litellm|portkey) ;;
    *) die "unknown contender '$c' (known: direct nginx haproxy tollgate tollgate-ai litellm portkey)" ;; esac
done
ADDRS=("$BACKEND_ADDR" "$NGINX_ADDR" "$HAPROXY_ADDR" "$TOLLGATE_ADDR" "$TOLLGATE_ADMIN" "$TGAI_ADDR" "$TGAI_ADMIN" "$LITELLM_ADDR" "$PORTKEY_ADDR")
for a in "${ADDRS[@]}"; do
  [[ "$a" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$ ]] || die "$a is not a loopback address (127.x.y.z:port)"
done
dups=$(printf '%s\n' "${ADDRS[@]}" | sed 's/.*://' | sort | uniq -d)
[ -z "$dups" ] || die "port(s) used twice in the address knobs: $dups"

expand_cpus() { # "0-2,5" -> "0 1 2 5"
  local out=() part i parts
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      for ((i = BASH_REMATCH[1]; i <= BASH_REMATCH[2]; i++)); do out+=("$i"); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then out+=("$part")
    else return 1; fi
  done
  [ ${#out[@]} -gt 0 ] || return 1
  echo "${out[*]}"
}
PROXY_PIN=() CLIENT_PIN=()
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || die "taskset not found (apt-get install util-linux), or run with PIN=0"
  P_LIST=$(expand_cpus "$PROXY_CPUS") || die "PROXY_CPUS='$PROXY_CPUS' is not a CPU list (e.g. 0 or 0-1,4)"
  C_LIST=$(expand_cpus "$CLIENT_CPUS") || die "CLIENT_CPUS='$CLIENT_CPUS' is not a CPU list"
  for p in $P_LIST; do for c in $C_LIST; do
    [ "$p" != "$c" ] || die "PROXY_CPUS ($PROXY_CPUS) and CLIENT_CPUS ($CLIENT_CPUS) overlap on CPU $p"
  done; done
  taskset -c "$PROXY_CPUS" true 2>/dev/null || die "cannot pin to PROXY_CPUS=$PROXY_CPUS (not in this machine's / this shell's CPU set: $(grep Cpus_allowed_list /proc/self/status | cut -f2))"
  taskset -c "$CLIENT_CPUS" true 2>/dev/null || die "cannot pin to CLIENT_CPUS=$CLIENT_CPUS (allowed: $(grep Cpus_allowed_list /proc/self/status | cut -f2))"
  read -ra _p <<<"$P_LIST"; read -ra _c <<<"$C_LIST"
  WORKERS="${WORKERS:-${#_p[@]}}"; CLIENT_THREADS="${CLIENT_THREADS:-${#_c[@]}}"
  PROXY_PIN=(taskset -c "$PROXY_CPUS"); CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
else
  WORKERS="${WORKERS:-$(nproc)}"; CLIENT_THREADS="${CLIENT_THREADS:-$(nproc)}"
fi
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "WORKERS=$WORKERS is not a positive number"

command -v python3 >/dev/null || die "python3 needed"
command -v curl >/dev/null || die "curl needed"
command -v ss >/dev/null || die "ss needed (apt-get install iproute2)"

# ---- 1. install what is missing, build
missing=()
[ -x "$OHA" ] || missing+=(oha)
{ want nginx && [ ! -x "$NGINX" ]; } && missing+=(apt)
{ want haproxy && [ ! -x "$HAPROXY" ]; } && missing+=(apt)
{ want litellm && [ ! -x "$VENV/bin/litellm" ]; } && missing+=(litellm)
if want portkey; then
  PK_START="$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
  if [ ! -x "$NODE" ] || [ ! -f "$PK_START" ] || ! grep -q 'overrideGlobalObjects:!1' "$PK_START"; then missing+=(apt portkey); fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  ONLY_SET=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  [ "${NO_SETUP:-0}" = 1 ] && die "missing: $ONLY_SET(NO_SETUP=1; run scripts/setup-peers.sh)"
  log "missing: $ONLY_SET-> ONLY=\"$ONLY_SET\" scripts/setup-peers.sh"
  ONLY="$ONLY_SET" timeout "${SETUP_TIMEOUT_S:-1800}" "$ROOT/scripts/setup-peers.sh" >&2 \
    || die "scripts/setup-peers.sh failed or took longer than SETUP_TIMEOUT_S=${SETUP_TIMEOUT_S:-1800} s"
fi
[ -x "$OHA" ] || die "oha not found at $OHA (run scripts/setup-peers.sh)"
if want nginx; then [ -x "$NGINX" ] || die "nginx not found (run scripts/setup-peers.sh)"; fi
if want haproxy; then [ -x "$HAPROXY" ] || die "haproxy not found (run scripts/setup-peers.sh)"; fi
if want litellm; then [ -x "$VENV/bin/litellm" ] || die "LiteLLM not found in $VENV (run scripts/setup-peers.sh)"; fi
if want portkey; then
  [ -f "$PK_START" ] || die "Portkey not found in $PORTKEY_DIR (run scripts/setup-peers.sh)"
  [ "$(grep -c 'overrideGlobalObjects:!1' "$PK_START")" = 1 ] || die "Portkey streaming fix missing in $PK_START (run scripts/setup-peers.sh)"
  [ -f "$LT/conf/portkey-force-loopback.cjs" ] || die "loadtest/conf/portkey-force-loopback.cjs missing"
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release -p tollgate -p tollgate-simfleet -p tollgate-loadtest (CARGO_TARGET_DIR=$TARGET_DIR)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" timeout "${BUILD_TIMEOUT_S:-3600}" cargo build --release -p tollgate -p tollgate-simfleet -p tollgate-loadtest) \
    || die "cargo build failed (or took longer than BUILD_TIMEOUT_S=${BUILD_TIMEOUT_S:-3600} s)"
fi
TG="$TARGET_DIR/release/tollgate"; SIM="$TARGET_DIR/release/tollgate-simfleet"; LTD="$TARGET_DIR/release/tollgate-loadtest"
for b in "$TG" "$SIM" "$LTD"; do [ -x "$b" ] || die "$b missing (build it, or set CARGO_TARGET_DIR)"; done

# driver scenarios: resolve names; does the driver have --header (needed for LiteLLM / Portkey)?
DRIVER_HEADER=0
if "$LTD" run --help 2>/dev/null | grep -q -- '--header'; then DRIVER_HEADER=1; fi
SCEN_SPECS=()   # kind:name:path
for s in $SCENARIOS; do
  if [ -f "$s" ]; then
    case "$s" in *.toml) SCEN_SPECS+=("driver:$(basename "$s" .toml):$(cd "$(dirname "$s")" && pwd)/$(basename "$s")") ;;
      *.env) SCEN_SPECS+=("oha:$(basename "$s" .env):$(cd "$(dirname "$s")" && pwd)/$(basename "$s")") ;;
      *) die "scenario file $s: expected .env (oha) or .toml (tollgate-loadtest)" ;; esac
  elif [ -f "$LT/scenarios/$s.env" ]; then SCEN_SPECS+=("oha:$s:$LT/scenarios/$s.env")
  elif [ -f "$LT/scenarios/$s.toml" ]; then SCEN_SPECS+=("driver:$s:$LT/scenarios/$s.toml")
  else SCEN_SPECS+=("missing:$s:"); log "scenario '$s' not found (loadtest/scenarios/$s.env or .toml): skipped"
  fi
done
SCEN_SPECS_STR=$(printf '%s\n' "${SCEN_SPECS[@]}"); export SCEN_SPECS_STR

# ---- 2. the rig
RUN="$(mktemp -d /tmp/tollgate-compare.XXXXXX)"
PIDS=()
tree_pids() { # pid -> the pid and all its descendants
  local all
  all=$(ps -eo pid=,ppid=)
  awk -v root="$1" '{ kids[$2] = kids[$2] " " $1 }
    END { n = 1; q[1] = root; seen[root] = 1; i = 1
          while (i <= n) { split(kids[q[i]], k, " "); for (j in k) if (!(k[j] in seen)) { seen[k[j]] = 1; q[++n] = k[j] }; i++ }
          for (p in seen) print p }' <<<"$all"
}
# shellcheck disable=SC2317  # only reached through the EXIT trap
cleanup() {
  local rc=$? all=() p alive
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do mapfile -t -O "${#all[@]}" all < <(tree_pids "$p"); done
  for p in "${all[@]}"; do kill -CONT "$p" 2>/dev/null || true; done   # frozen peers first
  for p in "${all[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for p in "${all[@]}"; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${KEEP_RUN:-0}" = 1 ]; then log "run directory kept: $RUN"; else rm -rf "$RUN"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { ss -ltnH "sport = :${1##*:}" | grep -q .; }
for a in "${ADDRS[@]}"; do port_busy "$a" && die "$a is already in use (ss -ltnp 'sport = :${a##*:}')"; done

wait_port() { # addr pid name timeout_s
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    port_busy "$1" && return 0
    kill -0 "$2" 2>/dev/null || { log "$3 exited during start-up; last lines of its log:"; tail -20 "$RUN/$3.log" >&2 || true; return 1; }
    sleep 0.1
  done
  log "$3 did not listen on $1 within $4 s; last lines of its log:"; tail -20 "$RUN/$3.log" >&2 || true; return 1
}
only_loopback() { # name pid: every listening socket of the process tree is on 127.x
  local p bad
  for p in $(tree_pids "$2"); do
    bad=$(ss -ltnpH | grep "pid=$p," | awk '{print $4}' | grep -Ev '^(127\.|\[::ffff:127\.)' || true)
    [ -z "$bad" ] || die "$1 (pid $p) listens on a non-loopback address: $bad"
  done
}
render() { # template listen [admin]
  sed -e "s#@WORKERS@#$WORKERS#g" -e "s#@IO_DRIVER@#$IO_DRIVER#g" -e "s#@RUN@#$RUN#g" -e "s#@ROOT@#$ROOT#g" \
      -e "s#@LISTEN@#$2#g" -e "s#@BACKEND@#$BACKEND_ADDR#g" -e "s#@ADMIN@#${3:-}#g" "$1"
}
declare -A CPID
launch() { # name cmd... (stdout+stderr -> RUN/name.log)
  local name=$1; shift
  "$@" >"$RUN/$name.log" 2>&1 &
  CPID[$name]=$!; PIDS+=("$!")
  printf '%s\n' "$*" >"$RUN/$name.cmd"
}

launch backend "${CLIENT_PIN[@]}" "$SIM" --instant --listen "$BACKEND_ADDR" --personality vllm --events 64
wait_port "$BACKEND_ADDR" "${CPID[backend]}" backend "$START_S" || die "backend did not start"

if want nginx; then
  mkdir -p "$RUN/nginx-tmp"
  render "$LT/conf/nginx-compare.conf.tmpl" "$NGINX_ADDR" >"$RUN/nginx.conf"
  launch nginx "${PROXY_PIN[@]}" "$NGINX" -p "$RUN" -e "$RUN/nginx-error.log" -c "$RUN/nginx.conf"
fi
if want haproxy; then
  render "$LT/conf/haproxy-compare.cfg.tmpl" "$HAPROXY_ADDR" >"$RUN/haproxy.cfg"
  "$HAPROXY" -c -q -f "$RUN/haproxy.cfg" || die "haproxy rejects $RUN/haproxy.cfg"
  launch haproxy "${PROXY_PIN[@]}" "$HAPROXY" -db -f "$RUN/haproxy.cfg"
fi
if want tollgate; then
  render "$LT/conf/tollgate-compare.toml.tmpl" "$TOLLGATE_ADDR" "$TOLLGATE_ADMIN" >"$RUN/tollgate.toml"
  "$TG" check --config "$RUN/tollgate.toml" >/dev/null || die "tollgate check rejects $RUN/tollgate.toml"
  launch tollgate "${PROXY_PIN[@]}" "$TG" serve --config "$RUN/tollgate.toml"
fi
if want tollgate-ai; then
  render "$LT/conf/tollgate-ai-compare.toml.tmpl" "$TGAI_ADDR" "$TGAI_ADMIN" >"$RUN/tollgate-ai.toml"
  "$TG" check --config "$RUN/tollgate-ai.toml" >/dev/null || die "tollgate check rejects $RUN/tollgate-ai.toml"
  launch tollgate-ai "${PROXY_PIN[@]}" "$TG" serve --config "$RUN/tollgate-ai.toml"
fi
LITELLM_MASTER_KEY="sk-compare-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
if want litellm; then
  render "$LT/conf/litellm-compare.yaml.tmpl" "$LITELLM_ADDR" >"$RUN/litellm.yaml"
  # HTTP(S)_PROXY points at a closed loopback port: anything LiteLLM would fetch from outside fails
  # fast on loopback instead of leaving the machine; NO_PROXY keeps the backend direct.
  launch litellm env LITELLM_MASTER_KEY="$LITELLM_MASTER_KEY" LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    HF_HUB_OFFLINE=1 HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
    "${PROXY_PIN[@]}" "$VENV/bin/litellm" --config "$RUN/litellm.yaml" --host "${LITELLM_ADDR%:*}" \
    --port "${LITELLM_ADDR##*:}" --num_workers "$WORKERS"
fi
if want portkey; then
  # one node process (Portkey has no worker option); the preload keeps its listener on 127.0.0.1
  launch portkey env NODE_ENV=production "${PROXY_PIN[@]}" "$NODE" --require "$LT/conf/portkey-force-loopback.cjs" \
    "$PK_START" "--port=${PORTKEY_ADDR##*:}" --headless
fi

for c in nginx haproxy tollgate tollgate-ai portkey; do
  want "$c" || continue
  case $c in nginx) a=$NGINX_ADDR ;; haproxy) a=$HAPROXY_ADDR ;; tollgate) a=$TOLLGATE_ADDR ;;
    tollgate-ai) a=$TGAI_ADDR ;; portkey) a=$PORTKEY_ADDR ;; esac
  wait_port "$a" "${CPID[$c]}" "$c" "$START_S" || die "$c did not start (log: $RUN/$c.log; KEEP_RUN=1 keeps it)"
done
if want litellm; then
  log "waiting for LiteLLM (/health/liveliness, up to $LITELLM_START_S s)"
  t0=$(date +%s)
  until curl -fs -o /dev/null --max-time 2 "http://$LITELLM_ADDR/health/liveliness"; do
    kill -0 "${CPID[litellm]}" 2>/dev/null || { tail -30 "$RUN/litellm.log" >&2; die "LiteLLM exited during start-up"; }
    [ $(($(date +%s) - t0)) -lt "$LITELLM_START_S" ] || { tail -30 "$RUN/litellm.log" >&2; die "LiteLLM not live after $LITELLM_START_S s"; }
    sleep 1
  done
  log "LiteLLM live after $(($(date +%s) - t0)) s"
  echo $(($(date +%s) - t0)) >"$RUN/litellm.start_s"
fi
only_loopback backend "${CPID[backend]}"
for c in nginx haproxy tollgate tollgate-ai litellm portkey; do want "$c" && only_loopback "$c" "${CPID[$c]}"; done

# ---- 3./4. smoke, measure, report
export LT ROOT RUN OUT_MD OUT_RAW OHA LTD TG SIM NGINX HAPROXY NODE VENV PORTKEY_DIR CONTENDERS
export BACKEND_ADDR NGINX_ADDR HAPROXY_ADDR TOLLGATE_ADDR TOLLGATE_ADMIN TGAI_ADDR TGAI_ADMIN LITELLM_ADDR PORTKEY_ADDR
export LOADAVG_START PIN PROXY_CPUS CLIENT_CPUS WORKERS CLIENT_THREADS IO_DRIVER DRIVER_HEADER LITELLM_MASTER_KEY T_SCRIPT
export CPIDS_STR
CPIDS_STR=$(for k in "${!CPID[@]}"; do printf '%s=%s ' "$k" "${CPID[$k]}"; done)
CLIENT_PIN_STR="${CLIENT_PIN[*]}"; export CLIENT_PIN_STR
# a re-run replaces the previous results of the same day and tag (as bench.sh does), so no stale
# raw file of another scenario set is left next to the new report
if [ -d "$OUT_RAW" ]; then log "replacing the previous results in $OUT_RAW"; rm -rf "$OUT_RAW"; fi
mkdir -p "$OUT_RAW"
log "rig up ($CPIDS_STR); pinning: PIN=$PIN proxy=$PROXY_CPUS client=$CLIENT_CPUS workers=$WORKERS; results -> $OUT_MD"

python3 - <<'PY' &
import json, os, re, shlex, signal, statistics as stt, subprocess, sys, time, tomllib, http.client

E = os.environ
T_START = time.time()
BUDGET = float(E["BUDGET_S"]); RETRIES = int(E["RETRIES"])
FOREIGN_MAX = float(E["FOREIGN_MAX"]); QUIET = int(E["QUIET_IDLE_PCT"]); QUIET_MAX = float(E["QUIET_MAX_S"])
LT, OHA, LTD, OUT_RAW, RUN = E["LT"], E["OHA"], E["LTD"], E["OUT_RAW"], E["RUN"]
PIN = E["PIN"] == "1"
FREEZE = E["FREEZE_IDLE"] == "1"
CLIENT_PIN = E["CLIENT_PIN_STR"].split()
CPID = {k: int(v) for k, v in (x.split("=") for x in E["CPIDS_STR"].split())}
URL = "/v1/chat/completions"
MODEL = "llama-3-8b"
KEY = E["LITELLM_MASTER_KEY"]
DRIVER_HEADER = E["DRIVER_HEADER"] == "1"
def log(*a): print("compare:", *a, file=sys.stderr, flush=True)

def cpuset(spec):
    out = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-"); out |= set(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out
NCPU = os.cpu_count()
PSET = cpuset(E["PROXY_CPUS"]) if PIN else set(range(NCPU))
CSET = cpuset(E["CLIENT_CPUS"]) if PIN else set(range(NCPU))

# ---------- contenders
ADDR = {"direct": E["BACKEND_ADDR"], "nginx": E["NGINX_ADDR"], "haproxy": E["HAPROXY_ADDR"],
        "tollgate": E["TOLLGATE_ADDR"], "tollgate-ai": E["TGAI_ADDR"], "litellm": E["LITELLM_ADDR"],
        "portkey": E["PORTKEY_ADDR"]}
HEADERS = {
    "litellm": [("Authorization", f"Bearer {KEY}")],
    "portkey": [("x-portkey-provider", "openai"), ("x-portkey-custom-host", f"http://{E['BACKEND_ADDR']}/v1"),
                ("Authorization", "Bearer sk-fake")],
}
DESC = {
    "direct": "the backend alone (no proxy)",
    "nginx": "nginx, plain reverse proxy",
    "haproxy": "HAProxy, plain reverse proxy",
    "tollgate": "tollgate, plain (no scanning, one backend)",
    "tollgate-ai": "tollgate with PII/secret/word scanning (requests + streamed responses) and prefix_affinity routing",
    "litellm": "LiteLLM proxy (Python), openai/ provider",
    "portkey": "Portkey gateway OSS (Node), provider chosen by header",
}
ORDER = ["direct", "nginx", "haproxy", "tollgate", "tollgate-ai", "litellm", "portkey"]
contenders = [c for c in ORDER if c in E["CONTENDERS"].split()]
failed = {}      # name -> reason (excluded from load)
anomalies = []
notes = []

def redact(s): return s.replace(KEY, "$LITELLM_MASTER_KEY")

# ---------- /proc helpers: loadtest/lib/procstat.py (shared with scripts/bench.sh)
sys.path.insert(0, os.path.join(LT, "lib"))
from procstat import TICK, alive, busy_pct, cpu, percpu, rss_kib, stat, tree  # noqa: E402
def ptree(name):  # the processes of a contender (direct = the backend)
    return tree(CPID["backend" if name == "direct" else name])
def rig():
    s = set()
    for k in CPID: s |= set(tree(CPID[k]))
    return sorted(s)

frozen = set()
def freeze_others(active):
    """Only the contender under test (and the backend) may run: SIGSTOP the others (FREEZE_IDLE=1)."""
    for c in contenders:
        if c == "direct": continue
        want_frozen = FREEZE and c != active
        if want_frozen and c not in frozen:
            for p in ptree(c): os.kill(p, signal.SIGSTOP)
            frozen.add(c)
        elif not want_frozen and c in frozen:
            for p in ptree(c): os.kill(p, signal.SIGCONT)
            frozen.discard(c)
def thaw_all():
    for c in list(frozen):
        for p in ptree(c):
            try: os.kill(p, signal.SIGCONT)
            except Exception: pass
        frozen.discard(c)

# ---------- smoke check: both bodies, 200, the stream is SSE with >= 64 content events and [DONE]
def post(addr, body, headers, timeout=30):
    h, p = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=timeout)
    hd = {"content-type": "application/json"}; hd.update(dict(headers))
    t0 = time.time(); c.request("POST", URL, body=body, headers=hd); r = c.getresponse()
    first = r.read(1); t1 = time.time(); rest = r.read(); t2 = time.time()
    data = first + rest
    out = {"status": r.status, "ctype": r.getheader("content-type", ""), "te": r.getheader("transfer-encoding", ""),
           "clen": r.getheader("content-length", ""), "bytes": len(data), "first_byte_ms": 1e3 * (t1 - t0), "total_ms": 1e3 * (t2 - t0)}
    c.close()
    return out, data

def sse_summary(data):
    ev = content = 0; done = False; usage = False; err = None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"): 
            if line.startswith("event: error"): err = line
            continue
        ev += 1; d = line[5:].strip()
        if d == "[DONE]": done = True; continue
        try:
            j = json.loads(d)
        except Exception:
            continue
        if j.get("usage"): usage = True
        for ch in j.get("choices") or []:
            if (ch.get("delta") or {}).get("content"): content += 1
    return {"data_lines": ev, "content_events": content, "done": done, "usage_chunk": usage, "error_event": err}

smoke = {}
bodies = {b: open(f"{LT}/bodies/{b}.json", "rb").read() for b in ("chat", "chat_stream")}
for c in contenders:
    res = {}
    try:
        for attempt in range(3):   # first requests of Python/Node gateways may be slow
            try:
                m, data = post(ADDR[c], bodies["chat"], HEADERS.get(c, []), timeout=60)
                break
            except Exception as e:
                if attempt == 2: raise
                time.sleep(2)
        open(f"{OUT_RAW}/sample-{c}-chat.txt", "wb").write(data)
        chat_data = data; j = {}
        try: j = json.loads(data)
        except Exception: pass
        m["has_choices"] = bool(j.get("choices"))
        res["chat"] = m
        m, data = post(ADDR[c], bodies["chat_stream"], HEADERS.get(c, []), timeout=60)
        open(f"{OUT_RAW}/sample-{c}-chat_stream.txt", "wb").write(data)
        m.update(sse_summary(data)); res["chat_stream"] = m
        why = []
        if res["chat"]["status"] != 200: why.append(f"chat -> HTTP {res['chat']['status']}: {chat_data[:300]!r}")
        elif not res["chat"]["has_choices"]: why.append("chat: no choices in the JSON answer")
        s = res["chat_stream"]
        if s["status"] != 200: why.append(f"chat_stream -> HTTP {s['status']}: {data[:300]!r}")
        else:
            if "text/event-stream" not in s["ctype"]: why.append(f"chat_stream: content-type {s['ctype']!r}, not text/event-stream")
            if s["content_events"] < 64: why.append(f"chat_stream: {s['content_events']} content events (< 64)")
            if not s["done"]: why.append("chat_stream: no data: [DONE]")
            if s["error_event"]: why.append(f"chat_stream: {s['error_event']}")
        if why: failed[c] = "smoke: " + "; ".join(why)
    except Exception as e:
        failed[c] = f"smoke: {type(e).__name__}: {e}"
    smoke[c] = res
    log(f"smoke {c}: " + ("OK" if c not in failed else failed[c]))

def admin_metrics(addr):
    try:
        h, p = addr.rsplit(":", 1); c = http.client.HTTPConnection(h, int(p), timeout=5)
        c.request("GET", "/metrics"); t = c.getresponse().read().decode(); c.close(); return t
    except Exception as e:
        return f"# unavailable: {e}"
def scan_hits(text):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("tollgate_scan_hits_total") and " " in l)
if "tollgate-ai" in contenders and "tollgate-ai" not in failed:
    for _ in range(20):   # workers publish their counters every metrics.publish_interval_ms (250 ms)
        h = scan_hits(admin_metrics(E["TGAI_ADMIN"]))
        if h > 0: break
        time.sleep(0.25)
    smoke["tollgate-ai"]["scan_hits_after_smoke"] = h
    if h <= 0: failed["tollgate-ai"] = "smoke: tollgate_scan_hits_total is 0 after the smoke requests (scanning not active?)"
    log(f"smoke tollgate-ai: scan hits after smoke = {h:.0f}")

# ---------- pinning check: every thread's Cpus_allowed_list
def threads_affinity(pid):
    rows = []
    for t in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            st = open(f"/proc/{pid}/task/{t}/status").read()
            comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
            rows.append((int(t), comm, re.search(r"Cpus_allowed_list:\s*(\S+)", st).group(1)))
        except Exception:
            pass
    return rows
affinity = {}
for name in ["backend"] + [c for c in contenders if c != "direct"]:
    want = CSET if name == "backend" else PSET
    per = []
    for p in tree(CPID[name]):
        for tid, comm, lst in threads_affinity(p):
            per.append({"pid": p, "tid": tid, "comm": comm, "cpus": lst, "inside": cpuset(lst) <= want})
    affinity[name] = per
    out = [r for r in per if not r["inside"]]
    if out and PIN:
        anomalies.append(f"pinning: {len(out)} thread(s) of {name} may run outside {sorted(want)}: "
                         + ", ".join(f"{r['comm']}({r['tid']}) -> {r['cpus']}" for r in out[:6]))
json.dump(affinity, open(f"{OUT_RAW}/affinity.json", "w"), indent=1)
def tg_worker_lines(name):
    try: return [l for l in open(f"{RUN}/{name}.log").read().splitlines() if "worker" in l and "started" in l]
    except Exception: return []

# ---------- scenarios
specs = []
for s in E["SCEN_SPECS_STR"].splitlines():
    if not s.strip(): continue
    kind, name, path = s.split(":", 2)
    specs.append((kind, name, path))

def env_scen(path):
    d = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1); d[k] = shlex.split(v)[0] if v else ""
    return d

def drv_scen(path):
    d = tomllib.load(open(path, "rb"))
    if E["DRIVER_DURATION"]: d["duration_s"] = float(E["DRIVER_DURATION"])
    if E["DRIVER_WARMUP"]: d["warmup_s"] = float(E["DRIVER_WARMUP"])
    return d

def oha_cmd(c, addr, body, conc, z):
    cmd = CLIENT_PIN + [OHA, "--no-tui", "--output-format", "json", "-z", f"{z}s", "-c", str(conc), "-m", "POST",
                        "-T", "application/json", "-D", body]
    for k, v in HEADERS.get(c, []): cmd += ["-H", f"{k}: {v}"]
    return cmd + [f"http://{addr}{URL}"]

def drv_cmd(c, addr, path, out):
    cmd = CLIENT_PIN + [LTD, "run", "--scenario", path, "--target", f"http://{addr}", "--model", MODEL, "--label", c,
                        "--out", out, "--quiet", "--threads", E["CLIENT_THREADS"]]
    if E["DRIVER_DURATION"]: cmd += ["--duration", E["DRIVER_DURATION"]]
    if E["DRIVER_WARMUP"]: cmd += ["--warmup", E["DRIVER_WARMUP"]]
    cmd += shlex.split(E["DRIVER_ARGS"])
    for k, v in HEADERS.get(c, []): cmd += ["--header", f"{k}: {v}"]
    return cmd

plan = []   # (kind, scenario name, path, meta, contender, est_s)
for kind, sn, path in specs:
    if kind == "missing":
        notes.append(f"scenario `{sn}`: no loadtest/scenarios/{sn}.env or .toml yet — skipped"); continue
    meta = env_scen(path) if kind == "oha" else drv_scen(path)
    for c in contenders:
        if c in failed: continue
        if kind == "driver" and c in HEADERS and not DRIVER_HEADER:
            notes.append(f"{sn} / {c}: skipped — this tollgate-loadtest has no `--header` option ({c} needs "
                         + ", ".join(k for k, _ in HEADERS[c]) + ")")
            continue
        if kind == "oha":
            est = int(meta["WARMUP_S"]) + int(meta["DURATION_S"]) + 2.5
        else:
            est = float(meta.get("warmup_s", 0)) + float(meta.get("duration_s", 10)) + 3
            if c in ("litellm", "portkey"): est += 5      # drain of slow in-flight requests
        plan.append((kind, sn, path, meta, c, est))
SAMPLE_S = 3

def slack(i):
    """Seconds left for quiet waits / retries so that the run ends near BUDGET_S."""
    rest = sum(p[5] + SAMPLE_S + 1 for p in plan[i:])
    return BUDGET - (time.time() - T_START) - rest

def wait_quiet(max_s):
    t0 = time.time()
    while True:
        b0, i0 = stat(); time.sleep(SAMPLE_S if max_s > 0 else 1); b1, i1 = stat()
        idle = 100 * (i1 - i0) / max(1, (b1 - b0) + (i1 - i0))
        if idle >= QUIET: return True, idle
        if time.time() - t0 >= max_s:
            busy = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout.splitlines()[1:4]
            log(f"NOT quiet ({idle:.0f}% idle, waited {time.time()-t0:.0f}s); busy: " + "; ".join(" ".join(b.split()) for b in busy))
            return False, idle
        time.sleep(1)

def run_proc(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p, None
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {timeout:.0f} s (hang?)"

def measure(kind, sn, path, meta, c, attempt):
    addr = ADDR[c]
    raw = f"{OUT_RAW}/{sn}_{c}.a{attempt}.json"
    if kind == "oha":
        conc, z = int(meta["CONCURRENCY"]), int(meta["DURATION_S"])
        cmd = oha_cmd(c, addr, f"{LT}/bodies/{meta['BODY']}", conc, z); tmo = z + 30
    else:
        cmd = drv_cmd(c, addr, path, raw)
        tmo = float(meta.get("warmup_s", 0)) + float(meta.get("duration_s", 10)) + float(meta.get("timeout_s", 60)) + 30
    pids, rp, bpids = ptree(c), rig(), [CPID["backend"]]
    c0, r0, s0, ch0, g0, pc0 = cpu(pids), cpu(bpids), stat()[0] / TICK, sum(os.times()[2:4]), cpu(rp), percpu()
    t0 = time.time(); p, err = run_proc(cmd, tmo); wall = time.time() - t0
    dc, dr = cpu(pids) - c0, cpu(bpids) - r0
    och = sum(os.times()[2:4]) - ch0
    foreign = ((stat()[0] / TICK - s0) - (cpu(rp) - g0) - och) / wall
    pc1 = percpu()
    row = {"contender": c, "scenario": sn, "kind": kind, "attempt": attempt, "wall_s": wall, "cmd": redact(" ".join(shlex.quote(x) for x in cmd)),
           "proxy_cpu_s": dc, "proxy_cpu_pct": 100 * dc / wall, "backend_cpu_pct": 100 * dr / wall, "gen_cpu_pct": 100 * och / wall,
           "foreign_cores": foreign, "proxy_cores_busy_pct": busy_pct(pc0, pc1, PSET), "client_cores_busy_pct": busy_pct(pc0, pc1, CSET)}
    if c == "direct": row["proxy_cpu_s"] = row["proxy_cpu_pct"] = None
    if p is None:
        row["error"] = err; return row, None
    if kind == "oha":
        try:
            d = json.loads(p.stdout)
        except Exception:
            row["error"] = f"oha rc={p.returncode}: {redact(p.stderr[-400:])}"; return row, None
        sm, lp = d["summary"], d["latencyPercentiles"]
        codes = {str(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
        errs_all = d.get("errorDistribution") or {}
        errs = {k: v for k, v in errs_all.items() if "deadline" not in k}
        ok = codes.get("200", 0); dur = sm.get("total") or int(meta["DURATION_S"])
        ms = lambda x: None if x is None else 1e3 * x
        row.update({"rps": ok / dur, "ok": ok, "p50": ms(lp.get("p50")), "p90": ms(lp.get("p90")), "p99": ms(lp.get("p99")),
                    "max": ms(sm.get("slowest")), "errors": sum(v for k, v in codes.items() if k != "200") + sum(errs.values()),
                    "error_detail": {**{f"HTTP {k}": v for k, v in codes.items() if k != "200"}, **errs},
                    "aborted_at_deadline": sum(v for k, v in errs_all.items() if "deadline" in k),
                    "bytes_per_resp": sm.get("sizePerRequest"), "reqs_for_cpu": ok})
        return row, d
    try:
        d = json.load(open(raw))
    except Exception:
        row["error"] = f"tollgate-loadtest rc={p.returncode}: {redact((p.stderr or p.stdout)[-400:])}"; return row, None
    rq = d["requests"]; errs = {k: v for k, v in rq["errors"].items() if v}
    row.update({"rps": d["requests_per_s"], "ok": rq["ok"], "p50": d["e2e_ms"]["p50"], "p90": d["e2e_ms"]["p90"], "p99": d["e2e_ms"]["p99"],
                "max": d["e2e_ms"]["max"], "ttft_p50": d["ttft_ms"]["p50"], "ttft_p99": d["ttft_ms"]["p99"],
                "itl_p50": d["itl_ms"]["p50"], "itl_p99": d["itl_ms"]["p99"], "out_tok_s": d["output_tokens_per_s"],
                "errors": sum(errs.values()), "error_detail": {**errs, **{f"HTTP {k}": v for k, v in rq.get("status_codes", {}).items()}},
                "error_examples": rq.get("error_examples", {}), "usage_missing": d.get("usage_missing"),
                "usage_mismatch": d.get("usage_mismatch"), "drain_s": d.get("drain_s"), "window_s": d.get("window_s"),
                "reqs_for_cpu": max(0, rq["finished"] - sum(errs.values())), "notes": d.get("notes", [])})
    return row, d

results = {}   # scenario -> contender -> row
for i, (kind, sn, path, meta, c, est) in enumerate(plan):
    if c != "direct" and not alive(CPID[c]):
        anomalies.append(f"{sn} / {c}: the process is gone (crashed?) — row skipped"); continue
    freeze_others(c)
    if kind == "oha" and int(meta.get("WARMUP_S", 0)):
        w = int(meta["WARMUP_S"]); run_proc(oha_cmd(c, ADDR[c], f"{LT}/bodies/{meta['BODY']}", int(meta["CONCURRENCY"]), w), w + 30)
    tries = []
    for attempt in range(1, RETRIES + 1):
        sl = slack(i)
        quiet, idle = wait_quiet(min(QUIET_MAX, max(0.0, sl / max(1, len(plan) - i))) if time.time() - T_START < BUDGET else 0)
        time.sleep(1)
        row, raw = measure(kind, sn, path, meta, c, attempt)
        row["quiet"], row["idle_before_pct"] = quiet, round(idle, 1)
        if "error" in row:
            log(f"{sn} {c} a{attempt}: FAILED: {row['error']}"); tries.append((row, raw)); break
        row["cpu_ms_per_req"] = None if row["proxy_cpu_s"] is None else 1e3 * row["proxy_cpu_s"] / max(1, row["reqs_for_cpu"])
        log(f"{sn} {c} a{attempt}: {row['rps']:.0f} req/s p50 {row['p50'] or 0:.2f} p99 {row['p99'] or 0:.2f} ms err {row['errors']} "
            f"proxy cpu {row['proxy_cpu_pct'] or 0:.0f}% cores P {row['proxy_cores_busy_pct']:.0f}% C {row['client_cores_busy_pct']:.0f}% foreign {row['foreign_cores']:.2f}")
        tries.append((row, raw))
        if row["foreign_cores"] <= FOREIGN_MAX or time.time() - T_START > BUDGET or slack(i) < est:
            break
        log(f"  re-run: {row['foreign_cores']:.2f} cores used outside the rig")
    row, raw = min(tries, key=lambda t: ("error" in t[0], max(t[0].get("foreign_cores", 9), FOREIGN_MAX), not t[0].get("quiet", False)))
    row["other_attempts_foreign_cores"] = [round(t[0].get("foreign_cores", 0), 3) for t in tries if t[0] is not row]
    row["attempts"] = len(tries)
    row["contaminated"] = row.get("foreign_cores", 0) > FOREIGN_MAX or not row.get("quiet", True)
    final = f"{OUT_RAW}/{sn}_{c}.json"
    if kind == "oha":
        json.dump({"row": row, "oha": raw}, open(final, "w"), indent=1, default=str)
    elif raw is not None:
        json.dump(raw, open(final, "w"), indent=1); json.dump(row, open(f"{OUT_RAW}/{sn}_{c}.row.json", "w"), indent=1, default=str)
    for t in tries:   # drop the per-attempt driver files
        try: os.remove(f"{OUT_RAW}/{sn}_{c}.a{t[0]['attempt']}.json")
        except Exception: pass
    if "error" in row: anomalies.append(f"{sn} / {c}: {row['error']}")
    elif row["errors"]:
        anomalies.append(f"{sn} / {c}: {row['errors']} errors {row['error_detail']}" + (f" e.g. {row.get('error_examples')}" if row.get("error_examples") else ""))
    if c != "direct" and not alive(CPID[c]): anomalies.append(f"{sn} / {c}: the process exited during the row")
    results.setdefault(sn, {})[c] = row
    time.sleep(0.5)
thaw_all()
T_END = time.time()

# ---------- report
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return "?"
f2 = lambda x, n=2: "-" if x is None else f"{x:.{n}f}"
def ratio(a, b): return None if a is None or b in (None, 0) else a / b
def rx(x): return "-" if x is None else f"{x:.2f}x"
def ms_(x): return "-" if x is None else (f"{x:.0f}" if x >= 100 else f"{x:.2f}")

root = E["ROOT"]; pk = E["PORTKEY_DIR"]
versions = [
    ("tollgate", sh(f"{E['TG']} --version") + " @ " + sh(f"git -C {root} rev-parse --short HEAD") + (" (+ uncommitted changes)" if sh(f"git -C {root} status --porcelain -uno") else "")),
    ("tollgate-loadtest", sh(f"{LTD} --version") + ("" if DRIVER_HEADER else " (no --header option)")),
    ("tollgate-simfleet", sh(f"{E['SIM']} --version") or "(repo build)"),
    ("nginx", sh(f"{E['NGINX']} -v 2>&1")), ("HAProxy", sh(f"{E['HAPROXY']} -v 2>&1 | sed -n 1p")),
    ("LiteLLM", sh(f"{E['VENV']}/bin/python -c 'import importlib.metadata as m; print(m.version(\"litellm\"))'") + " (Python " + sh(f"{E['VENV']}/bin/python -c 'import platform; print(platform.python_version())'") + ", uvicorn " + sh(f"{E['VENV']}/bin/python -c 'import importlib.metadata as m; print(m.version(\"uvicorn\"))'") + ")"),
    ("Portkey gateway", sh(f"{E['NODE']} -p \"require('{pk}/node_modules/@portkey-ai/gateway/package.json').version\"") + " (node " + sh(f"{E['NODE']} --version") + ", @hono/node-server " + sh(f"{E['NODE']} -p \"require('{pk}/node_modules/@hono/node-server/package.json').version\"") + ", overrideGlobalObjects fix + force-loopback preload)"),
    ("oha", sh(f"{OHA} --version")), ("rustc", sh("rustc --version")),
]
facts = [
    ("date (UTC)", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T_START))),
    ("nproc", sh("nproc")), ("CPU", sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()),
    ("memory", sh("free -g | awk '/Mem:/{print $2\" GiB\"}'")), ("kernel", sh("uname -srm")),
    ("load average at start", E.get("LOADAVG_START", "?")),
    ("run time", f"{(T_END - float(E['T_SCRIPT']))/60:.1f} min in all ({(T_END - T_START)/60:.1f} min of smoke + measurement; BUDGET_S={BUDGET:.0f})"),
]
thr_key = "rps"
L = []
day = facts[0][1][:10]
L.append(f"# Gateways side by side: nginx, HAProxy, LiteLLM, Portkey, tollgate, tollgate-ai vs direct ({day})\n")
L.append("Generated by `scripts/compare.sh` (see loadtest/README.md, section compare.sh). Loopback only; every contender "
         "in front of the same simulated vLLM backend (`tollgate-simfleet --instant`: precomputed answers, one `write` per response, "
         "64 content events per stream); the same load against each, one contender at a time.\n")
L.append("## Machine and versions\n")
L += [f"* {k}: {v}" for k, v in facts]
L += [f"* {k}: {v}" for k, v in versions]
L.append("")
L.append("## Pinning\n")
if PIN:
    L.append(f"* `PIN=1`: contender under test on CPU(s) **{E['PROXY_CPUS']}** (`taskset -c {E['PROXY_CPUS']}`), load generator and backend on "
             f"CPU(s) **{E['CLIENT_CPUS']}** (`taskset -c {E['CLIENT_CPUS']}`). Workers per contender: **{E['WORKERS']}** "
             f"(nginx worker_processes, haproxy nbthread, tollgate workers, LiteLLM --num_workers; Portkey: one node process). "
             f"Load generator threads: {E['CLIENT_THREADS']}.")
    L.append("* The **direct** row is the ceiling of load generator + backend on the client CPUs alone; a contender at 1.00x direct "
             "is not the bottleneck, below that its CPU set is.")
else:
    L.append(f"* `PIN=0`: no pinning, everything shares all {NCPU} CPUs; {E['WORKERS']} workers per contender.")
L.append(f"* Idle contenders frozen during other rows (SIGSTOP/SIGCONT): {'yes' if FREEZE else 'no (FREEZE_IDLE=0)'}.")
L.append("* Thread affinity as read from `/proc/PID/task/TID/status` (Cpus_allowed_list) after start-up:\n")
L.append("| process | threads | distinct Cpus_allowed_list | all inside the intended set |")
L.append("|---|---|---|---|")
for name, per in affinity.items():
    want = CSET if name == "backend" else PSET
    masks = sorted({r["cpus"] for r in per})
    L.append(f"| {name} | {len(per)} | {', '.join(masks)} | {'yes' if all(r['inside'] for r in per) else 'NO'} (want {','.join(map(str, sorted(want)))}) |")
for n in ("tollgate", "tollgate-ai"):
    if n in affinity:
        wl = tg_worker_lines(n)
        wt = [f"{r['comm']}={r['cpus']}" for r in affinity[n] if r["comm"].startswith("tollgate-w")]
        L.append(f"\n{n}: its own pinning (stderr) `" + "`; `".join(wl) + f"`; worker threads' masks: {', '.join(wt) or '?'}.")
L.append("")

# ratio table
SUM_AT = len(L)
scen_order = [sn for _, sn, _ in specs if sn in results]
ratio_rows = []
for sn in scen_order:
    rs = results[sn]; d = rs.get("direct"); n = rs.get("nginx")
    for c in contenders:
        r = rs.get(c)
        if not r or "error" in r: continue
        ratio_rows.append((sn, c, r, ratio(r[thr_key], d and d.get(thr_key)), ratio(r["p99"], d and d.get("p99")),
                           ratio(r[thr_key], n and n.get(thr_key)), ratio(r["p99"], n and n.get("p99")),
                           ratio(r.get("cpu_ms_per_req"), n and n.get("cpu_ms_per_req"))))
R = ["## Ratio table (throughput and p99, relative to direct and to nginx, same run)\n",
     "Throughput = 200-OK responses per second (oha) / successful completions per second in the steady window (tollgate-loadtest); "
     "p99 = whole-response latency (streams: until `[DONE]`). Throughput ratio > 1 is better, p99 ratio > 1 is worse.\n",
     "| scenario | contender | req/s | req/s vs direct | req/s vs nginx | p99 ms | p99 vs direct | p99 vs nginx | errors | proxy CPU ms/req | CPU/req vs nginx | P / C busy |",
     "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for sn, c, r, td, pd, tn, pn, cn in ratio_rows:
    flag = " ⚠" if r.get("contaminated") else ""
    R.append(f"| {sn} | {c}{flag} | {r[thr_key]:.0f} | {rx(td)} | {rx(tn)} | {ms_(r['p99'])} | {rx(pd)} | {rx(pn)} | {r['errors']} | "
             f"{f2(r.get('cpu_ms_per_req'), 4)} | {rx(cn)} | {r['proxy_cores_busy_pct']:.0f}% / {r['client_cores_busy_pct']:.0f}% |")
R.append("\n⚠ = foreign CPU above FOREIGN_MAX or the machine never went quiet before the row (see the scenario tables). "
         "CPU/req vs nginx = the contender's CPU per request over nginx's (the least machine-dependent ratio). "
         "P / C busy = proxy / client CPU set utilisation: P ≈ 100 % = the contender is the bottleneck; C ≈ 100 % with P well below = "
         "the client side is (then throughput ratios say more about how much client work a contender causes than about its own cost).\n")
# compact matrix
R.append("Throughput vs nginx at a glance (rows: contenders; columns: scenarios):\n")
R.append("| contender | " + " | ".join(scen_order) + " |"); R.append("|---|" + "---:|" * len(scen_order))
for c in contenders:
    cells = []
    for sn in scen_order:
        x = next((t[5] for t in ratio_rows if t[0] == sn and t[1] == c), None); cells.append(rx(x))
    R.append(f"| {c} | " + " | ".join(cells) + " |")
R.append("")
L[SUM_AT:SUM_AT] = R

L.append("## Contenders\n")
L.append("| contender | what | listens | start command (RUN = temp dir) |")
L.append("|---|---|---|---|")
for c in contenders:
    key = "backend" if c == "direct" else c
    try: cmdline = open(f"{RUN}/{key}.cmd").read().strip().replace(RUN, "RUN").replace(root + "/", "")
    except Exception: cmdline = "?"
    st = f" **FAILED: {failed[c]}**" if c in failed else ""
    L.append(f"| {c} | {DESC[c]}{st} | {ADDR[c]} | `{redact(cmdline)}` |")
L.append("")
L.append(f"* configs: rendered from `loadtest/conf/*-compare.*.tmpl` (copies in `{os.path.relpath(OUT_RAW, root)}/`); "
         "LiteLLM with `LITELLM_MASTER_KEY` = random per run, `LITELLM_LOCAL_MODEL_COST_MAP=True`, HTTP(S)_PROXY pointed at a closed loopback port "
         f"(nothing leaves the machine); started in {open(f'{RUN}/litellm.start_s').read().strip() if os.path.exists(f'{RUN}/litellm.start_s') else '-'} s.")
L.append("* headers: LiteLLM `Authorization: Bearer $LITELLM_MASTER_KEY`; Portkey `x-portkey-provider: openai`, "
         f"`x-portkey-custom-host: http://{E['BACKEND_ADDR']}/v1`, `Authorization: Bearer sk-fake`; others none.")
L.append("* every row: resume the contender (others frozen), warm-up (oha: a separate `-z WARMUP_S` run; driver: its own warm-up "
         f"window), wait for >= {QUIET}% idle over {SAMPLE_S} s (at most QUIET_MAX_S={QUIET_MAX:.0f} s, shortened to fit BUDGET_S), 1 s pause, "
         f"measured run; re-run (up to {RETRIES} attempts, cleanest kept) if processes outside the rig used > {FOREIGN_MAX} cores.")
L.append("* proxy CPU = utime+stime of the contender's process tree over the measured window (`/proc/PID/stat`); CPU ms/req = that / "
         "requests completed in the window (driver: including its warm-up requests, whose CPU is in the window too). "
         "P / C busy = utilisation of the proxy / client CPU set from `/proc/stat`.\n")

L.append("## Smoke check (before any load)\n")
L.append("| contender | chat.json | chat_stream.json | content-type | data: lines | content events | [DONE] | usage chunk | stream bytes | first byte / total ms |")
L.append("|---|---|---|---|---:|---:|---|---|---:|---|")
for c in contenders:
    s = smoke.get(c, {}); a = s.get("chat", {}); b = s.get("chat_stream", {})
    L.append(f"| {c} | {a.get('status', '-')} | {b.get('status', '-')} | {b.get('ctype', '-')} | {b.get('data_lines', '-')} | {b.get('content_events', '-')} | "
             f"{b.get('done', '-')} | {b.get('usage_chunk', '-')} | {b.get('bytes', '-')} | {f2(b.get('first_byte_ms'))} / {f2(b.get('total_ms'))} |")
if "tollgate-ai" in smoke and "scan_hits_after_smoke" in smoke["tollgate-ai"]:
    L.append(f"\ntollgate-ai `tollgate_scan_hits_total` after the 2 smoke requests: {smoke['tollgate-ai']['scan_hits_after_smoke']:.0f} (e-mail + phone in each request are masked).")
L.append("")

for kind, sn, path, meta in [(k, s, p, None) for k, s, p in specs if s in results]:
    rs = results[sn]
    if kind == "oha":
        m = env_scen(path)
        L.append(f"## {m.get('TITLE', sn)} (`{sn}`, oha: c={m['CONCURRENCY']}, {m['DURATION_S']} s, warm-up {m['WARMUP_S']} s)\n")
        ex = " ".join(shlex.quote(x) for x in oha_cmd("nginx", "ADDR", f"loadtest/bodies/{m['BODY']}", m["CONCURRENCY"], m["DURATION_S"]))
    else:
        m = drv_scen(path)
        arr = m.get("arrival", {})
        L.append(f"## {m.get('description', m.get('name', sn))} (`{sn}`, tollgate-loadtest: {arr.get('kind', '?')} "
                 f"{'c=' + str(arr.get('concurrency')) if arr.get('concurrency') else 'rate=' + str(arr.get('rate'))}, "
                 f"stream={m.get('stream')}, {m.get('duration_s')} s, warm-up {m.get('warmup_s')} s)\n")
        ex = " ".join(shlex.quote(x) for x in drv_cmd("nginx", "ADDR", os.path.relpath(path, root), f"{os.path.relpath(OUT_RAW, root)}/{sn}_CONTENDER.json"))
    ex = ex.replace(OHA, "loadtest/peers/cargo/bin/oha").replace(LTD, "tollgate-loadtest").replace("--label nginx", "--label CONTENDER")
    L.append("Command (ADDR = contender; LiteLLM / Portkey add their headers with `-H` / `--header`):\n")
    L.append("```\n" + ex + "\n```\n")
    drv = kind == "driver"
    hdr = "| contender | req/s | p50 ms | p90 ms | p99 ms | max ms |" + (" TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | out tok/s |" if drv else "") + \
          " errors | proxy CPU | CPU ms/req | backend CPU | load-gen CPU | P busy | C busy | foreign | attempts |"
    L.append(hdr); L.append("|" + "---|" * (hdr.count("|") - 1))
    for c in contenders:
        r = rs.get(c)
        if r is None: continue
        if "error" in r: L.append(f"| {c} | FAILED: {r['error']} |"); continue
        flag = " ⚠" if r["contaminated"] else ""
        L.append(f"| {c}{flag} | {r['rps']:.0f} | {ms_(r['p50'])} | {ms_(r['p90'])} | {ms_(r['p99'])} | {ms_(r['max'])} |"
                 + (f" {ms_(r['ttft_p50'])} | {ms_(r['ttft_p99'])} | {ms_(r['itl_p50'])} | {ms_(r['itl_p99'])} | {r['out_tok_s']:.0f} |" if drv else "")
                 + f" {r['errors']} | {'-' if r['proxy_cpu_pct'] is None else '%.0f%%' % r['proxy_cpu_pct']} | {f2(r.get('cpu_ms_per_req'), 4)} | "
                 f"{r['backend_cpu_pct']:.0f}% | {r['gen_cpu_pct']:.0f}% | {r['proxy_cores_busy_pct']:.0f}% | {r['client_cores_busy_pct']:.0f}% | "
                 f"{r['foreign_cores']:.2f} | {r['attempts']} |")
    if drv:
        files = [f"{OUT_RAW}/{sn}_{c}.json" for c in contenders if c in rs and "error" not in rs[c] and os.path.exists(f"{OUT_RAW}/{sn}_{c}.json")]
        if files:
            t = sh(" ".join([shlex.quote(LTD), "table"] + [shlex.quote(f) for f in files]))
            L.append("\n`tollgate-loadtest table` of the same runs:\n"); L.append(t)
            svg = f"{OUT_RAW}/{sn}.svg"
            sh(" ".join([shlex.quote(LTD), "plot", "--out", shlex.quote(svg)] + [shlex.quote(f) for f in files]))
            if os.path.exists(svg):
                L.append(f"\nPercentile curves (TTFT / ITL / E2E) and req/s over time: [{os.path.basename(svg)}]({os.path.basename(OUT_RAW)}/{os.path.basename(svg)})")
    L.append("")

L.append("## Memory after the runs (RSS)\n")
L.append("* " + "; ".join(f"{'backend' if c == 'direct' else c} {rss_kib(ptree(c))//1024} MiB" for c in ["direct"] + [c for c in contenders if c != "direct"]) + "\n")
# sockets to anything but loopback?
ext = []
allp = set(rig())
for line in sh("ss -tanpH").splitlines():
    m = re.search(r"pid=(\d+),", line)
    if m and int(m.group(1)) in allp:
        f = line.split()
        if len(f) >= 5 and not all(re.match(r"(127\.|\[::ffff:127\.|\*|0\.0\.0\.0:\*|\[::\]:\*)", x) for x in f[3:5]):
            ext.append(" ".join(f[:5]))
L.append("## Anomalies and notes\n")
if ext: anomalies.append("non-loopback sockets of rig processes at the end: " + "; ".join(ext[:5]))
for c, why in failed.items(): anomalies.append(f"{c}: excluded — {why}")
for n in ("tollgate", "tollgate-ai"):
    if n in CPID:
        try:
            lines = [l for l in open(f"{RUN}/{n}.log").read().splitlines() if not re.match(r"tollgate: (listening|admin|worker \d+ started)", l)]
        except Exception:
            lines = []
        if lines: anomalies.append(f"{n} stderr had {len(lines)} extra line(s); first: " + " | ".join(lines[:5])[:600])
        open(f"{OUT_RAW}/{n}-stderr.txt", "w").write(open(f"{RUN}/{n}.log").read())
if "litellm" in CPID:   # outbound attempts (blocked by the loopback proxy / HF_HUB_OFFLINE) cost time per request
    try:
        hosts = sorted(set(re.findall(r"requesting \w+ (https?://[^/\s]+)", open(f"{RUN}/litellm.log", errors="replace").read())))
        if hosts: anomalies.append(f"LiteLLM tried to reach {', '.join(hosts)} (blocked: nothing leaves loopback); see litellm.log")
    except Exception:
        pass
for c in contenders:
    fb = smoke.get(c, {}).get("chat_stream", {}).get("first_byte_ms")
    if fb and fb > 2000: anomalies.append(f"{c}: the smoke stream's first byte took {fb/1000:.1f} s")
for n in ("litellm", "portkey", "haproxy", "nginx"):
    if n in CPID:
        try: open(f"{OUT_RAW}/{n}.log", "w").write(redact(open(f"{RUN}/{n}.log", errors="replace").read()[-200000:]))
        except Exception: pass
L += [f"* {a}" for a in anomalies] or ["* none: every measured response was a success, no connection errors, every contender alive at the end"]
L += [f"* note: {n}" for n in notes]
L.append("\n## How to read, caveats\n")
L.append("* Compare ratios **within this run**; absolute numbers depend on the machine and on what else ran on it (foreign column).")
L.append("* With pinning, every contender has the same CPU budget (PROXY_CPUS), and the load generator + backend another one; "
         "`P busy` near 100 % = the contender is CPU-bound, `C busy` near 100 % = the client side is the limit (compare with direct).")
L.append("* tollgate forces `stream_options.include_usage` towards a vLLM backend (metering) and strips the extra usage chunk if the "
         "client did not ask for it, so its streaming rows make the backend send one event more than nginx's do.")
L.append("* tollgate-ai masks the e-mail and phone number of every request (both oha bodies carry them) and scans every streamed "
         "chunk of the answer; the backend's answers contain no PII, so responses pass unchanged (this measures scan cost, not rewriting).")
L.append("* The backend answers from precomputed templates: this is gateway overhead, not inference. LiteLLM and Portkey rows are "
         "slow by design of those gateways (Python / Node per-request work), not because of the rig; their rows run the same durations.")
L.append("* oha cuts requests still in flight at the end of `-z` (not counted as errors); tollgate-loadtest waits for them (drain, "
         "bounded by the scenario's timeout) and counts rates in its steady window only.")
L.append("* Client-bound rows (C busy ≈ 100 %) can exceed 1.00x direct: with a proxy in between, the backend's single write reaches the "
         "client through another core and in different read sizes, so the client side may spend less CPU per response than direct.")
L.append("* `foreign` slightly below 0 (down to about -0.25 at c=1) is accounting noise between per-process times and `/proc/stat` on this VM.")
L.append("* Response sizes differ by a few bytes between contenders because the backend's response id grows with its request counter (`chatcmpl-r<N>`).")
L.append("* The simulated backend keeps its last 100,000 request records, request bodies included (`fleet.rs` MAX_RECORDS): after the "
         "long-prompt scenario (~20 KB bodies) its RSS is about 2 GiB, and the copy costs backend CPU per request on the client cores.")
L.append(f"\nRaw data: `{os.path.relpath(OUT_RAW, root)}/` — `<scenario>_<contender>.json` (oha JSON + computed row, or the "
         "tollgate-loadtest report with `.row.json`), `summary.json`, `affinity.json`, sample responses, configs, logs.")
open(E["OUT_MD"], "w").write("\n".join(L) + "\n")
json.dump({"results": results, "failed": failed, "anomalies": anomalies, "notes": notes, "smoke": smoke}, open(f"{OUT_RAW}/summary.json", "w"), indent=1, default=str)
# stdout: the ratio table
print("\n".join(R))
log("wrote", E["OUT_MD"])
sys.exit(1 if failed else 0)
PY
PY_PID=$!; PIDS+=("$PY_PID")
py_rc=0; wait "$PY_PID" || py_rc=$?
for f in nginx.conf haproxy.cfg tollgate.toml tollgate-ai.toml litellm.yaml; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT_RAW/"; done
if want tollgate; then curl -s --max-time 5 "http://$TOLLGATE_ADMIN/metrics" >"$OUT_RAW/tollgate-metrics.txt" || true; fi
if want tollgate-ai; then curl -s --max-time 5 "http://$TGAI_ADMIN/metrics" >"$OUT_RAW/tollgate-ai-metrics.txt" || true; fi
log "done in $(( $(date +%s) - T_SCRIPT )) s -> $OUT_MD (exit $py_rc)"
exit "$py_rc"
