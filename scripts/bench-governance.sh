#!/usr/bin/env bash
# What governance costs on the data path: the same tollgate binary with and without API keys,
# limits and the usage ledger, side by side in one run, in front of one simulated backend.
#
#   scripts/setup-peers.sh (for oha) && scripts/bench-governance.sh
#
# Contenders (each 2 workers, access log off, pinned by tollgate itself):
#   plain    no [auth], no limits, no ledger (the dataplane as in scripts/bench.sh)
#   governed [auth] keys file (1 consumer, 1 key); 4 limits that all apply to every request:
#            requests/min per key, concurrency per consumer, total tokens/h per tenant, completion
#            tokens/h per (tenant, model) with stream_overrun = cut — all far above what the run
#            uses, so nothing is refused and the cost measured is admit + reserve + settle;
#            [ledger] with group commit every 20 ms (one record per request)
# Rows alternate (plain, governed, plain, governed, …: ROUNDS each); the idle contender is
# frozen with SIGSTOP while the other is measured. Scenarios: oha non-streaming and 64-event
# streaming chat at c=64 (loadtest/scenarios/*.env). Writes loadtest/results/<date>-governance.md.
#
# Knobs: SCENARIOS="nonstream_c64 stream_c64" ROUNDS=2 DURATION_S=(from the scenario) SKIP_BUILD=0
#        BASE_PORT=18300 QUIET_IDLE_PCT=80 QUIET_MAX_S=60 CARGO_TARGET_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LT="$ROOT/loadtest"
OHA="${OHA:-$LT/peers/cargo/bin/oha}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BASE_PORT="${BASE_PORT:-18300}"
export SCENARIOS="${SCENARIOS:-nonstream_c64 stream_c64}" ROUNDS="${ROUNDS:-2}"
export QUIET_IDLE_PCT="${QUIET_IDLE_PCT:-80}" QUIET_MAX_S="${QUIET_MAX_S:-60}"
[ -x "$OHA" ] || { echo "bench-governance: oha not found at $OHA (run scripts/setup-peers.sh)" >&2; exit 2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tollgate -p tollgate-simfleet)
fi
TG="$TARGET_DIR/release/tollgate"; SIM="$TARGET_DIR/release/tollgate-simfleet"

RUN="$(mktemp -d /tmp/tollgate-benchgov.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BACKEND="127.0.0.1:$BASE_PORT"
PLAIN="127.0.0.1:$((BASE_PORT + 1))"; PLAIN_ADMIN="127.0.0.1:$((BASE_PORT + 2))"
GOV="127.0.0.1:$((BASE_PORT + 3))"; GOV_ADMIN="127.0.0.1:$((BASE_PORT + 4))"
wait_http() { for _ in $(seq 100); do curl -sf "http://$1/health" -o /dev/null && return 0; sleep 0.1; done; echo "no answer on $1" >&2; return 1; }

"$SIM" --instant --listen "$BACKEND" --personality vllm --events 64 >"$RUN/sim.log" 2>&1 & PIDS+=($!); SIM_PID=$!
wait_http "$BACKEND"

"$TG" keys add-consumer --keys "$RUN/keys.toml" --name bench --tenant acme --project load 2>/dev/null
KEY=$("$TG" keys add --keys "$RUN/keys.toml" --consumer bench --models 'llama-*' 2>/dev/null)
base() { # listen admin
  printf 'workers = 2\n[listen]\nhttp = "%s"\nadmin = "%s"\n[log]\naccess_log = "off"\n' "$1" "$2"
}
models() { printf '[[backends]]\nname = "sim-0"\nurl = "http://%s"\nkind = "vllm"\n[[models]]\nname = "llama-3-8b"\nbackends = ["sim-0"]\n' "$BACKEND"; }
{ base "$PLAIN" "$PLAIN_ADMIN"; models; } >"$RUN/plain.toml"
{ base "$GOV" "$GOV_ADMIN"; cat <<EOF
[auth]
keys_file = "$RUN/keys.toml"
[ledger]
dir = "$RUN/ledger"
commit_interval_ms = 20
[quota]
default_max_tokens = 256
[[quota.limits]]
name = "rpm-per-key"
kind = "requests"
per = ["key"]
limit = 100000000
window = "1m"
[[quota.limits]]
name = "concurrency-per-consumer"
kind = "concurrency"
per = ["consumer"]
limit = 10000
[[quota.limits]]
name = "tokens-per-tenant"
kind = "tokens"
tokens = "total"
per = ["tenant"]
limit = 100000000000
window = "1h"
[[quota.limits]]
name = "completion-per-tenant-model"
kind = "tokens"
tokens = "completion"
per = ["tenant", "model"]
limit = 100000000000
window = "1h"
timezone = "Europe/Berlin"
stream_overrun = "cut"
EOF
models; } >"$RUN/gov.toml"
"$TG" serve --config "$RUN/plain.toml" >"$RUN/plain.log" 2>&1 & PIDS+=($!); PLAIN_PID=$!
"$TG" serve --config "$RUN/gov.toml" >"$RUN/gov.log" 2>&1 & PIDS+=($!); GOV_PID=$!
wait_http "$PLAIN"; wait_http "$GOV"
# Smoke: governed refuses without the key, answers with it.
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data-binary "@$LT/bodies/chat.json" "http://$GOV/v1/chat/completions")
[ "$code" = 401 ] || { echo "governed gateway answered $code without a key" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $KEY" -H 'content-type: application/json' --data-binary "@$LT/bodies/chat.json" "http://$GOV/v1/chat/completions")
[ "$code" = 200 ] || { echo "governed gateway answered $code with the key" >&2; exit 1; }

export LT OHA RUN KEY SIM_PID PLAIN_PID GOV_PID PLAIN GOV GOV_ADMIN ROOT
export OUT="$LT/results/$(date -u +%Y-%m-%d)-governance.md"
python3 - <<'PY'
import json, os, shlex, signal, statistics as st, subprocess, sys, time, urllib.request
E = os.environ
sys.path.insert(0, os.path.join(E["LT"], "lib"))
from procstat import TICK, cpu, stat
log = lambda *a: print("bench-governance:", *a, file=sys.stderr, flush=True)
PIDS = {"plain": int(E["PLAIN_PID"]), "governed": int(E["GOV_PID"])}
ADDR = {"plain": E["PLAIN"], "governed": E["GOV"]}
HDR = {"plain": [], "governed": ["-H", f"authorization: Bearer {E['KEY']}"]}

def quiet():
    t0 = time.time()
    while True:
        b0, i0 = stat(); time.sleep(2); b1, i1 = stat()
        idle = 100 * (i1 - i0) / max(1, (b1 - b0) + (i1 - i0))
        if idle >= float(E["QUIET_IDLE_PCT"]) or time.time() - t0 > float(E["QUIET_MAX_S"]):
            return idle

def scen(name):
    d = {}
    for line in open(f"{E['LT']}/scenarios/{name}.env"):
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1); d[k] = shlex.split(v)[0] if v else ""
    return d

def oha(who, body, c, z):
    cmd = [E["OHA"], "--no-tui", "--output-format", "json", "-z", f"{z}s", "-c", str(c), "-m", "POST",
           "-T", "application/json", "-D", body] + HDR[who] + [f"http://{ADDR[who]}/v1/chat/completions"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=z + 30)
    return json.loads(p.stdout)

rows = {}
for sn in E["SCENARIOS"].split():
    s = scen(sn); c, z = int(s["CONCURRENCY"]), int(os.environ.get("DURATION_S") or s["DURATION_S"])
    body = f"{E['LT']}/bodies/{s['BODY']}"
    for rnd in range(int(E["ROUNDS"])):
        for who in ("plain", "governed"):
            other = "governed" if who == "plain" else "plain"
            os.kill(PIDS[other], signal.SIGSTOP)
            try:
                oha(who, body, c, 2)  # warm-up
                idle = quiet()
                c0, t0 = cpu([PIDS[who]]), time.time()
                d = oha(who, body, c, z)
                wall = time.time() - t0; dc = cpu([PIDS[who]]) - c0
            finally:
                os.kill(PIDS[other], signal.SIGCONT)
            codes = {str(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
            ok = codes.get("200", 0); lp = d["latencyPercentiles"]
            r = {"rps": ok / (d["summary"].get("total") or z), "p50": lp["p50"], "p99": lp["p99"],
                 "cpu_ms_per_req": 1000 * dc / max(1, ok), "non200": sum(codes.values()) - ok, "idle_before": idle}
            rows.setdefault(sn, {}).setdefault(who, []).append(r)
            log(f"{sn} {who} r{rnd+1}: {r['rps']:.0f} req/s p50 {1e3*r['p50']:.2f} ms p99 {1e3*r['p99']:.2f} ms cpu/req {r['cpu_ms_per_req']:.4f} ms non200 {r['non200']}")

metrics = urllib.request.urlopen(f"http://{E['GOV_ADMIN']}/metrics", timeout=5).read().decode()
led = [l for l in metrics.splitlines() if l.startswith(("tollgate_ledger_", "tollgate_quota_", "tollgate_requests_throttled", "tollgate_requests_denied"))]
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
med = lambda v: st.median(v)
cpu_model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
rev = sh(f"git -C {E['ROOT']} rev-parse --short HEAD")
L = [f"# Governance cost: tollgate with keys + 4 limits + ledger vs without ({time.strftime('%Y-%m-%d', time.gmtime())})\n",
     "Generated by `scripts/bench-governance.sh`. Same binary, same backend (`tollgate-simfleet --instant`, 64 events), "
     "2 workers each, access log off; rows alternate and the idle gateway is frozen (SIGSTOP) while the other is measured. "
     "oha and the backend share the 2 cores with the gateway under test.\n",
     f"* machine: {sh('nproc')} vCPU,{cpu_model}, {sh('uname -sr')}; tollgate {rev}",
     "* governed = `[auth]` (salted-hash key check), 4 applicable limits (requests/min per key, concurrency per consumer, "
     "total tokens/h per tenant, completion tokens/h per tenant+model with `stream_overrun = \"cut\"`), prompt tokens counted "
     "with the model's tokenizer for the reservation, settlement at the end, `[ledger]` group commit 20 ms.\n",
     "| scenario | contender | req/s (median) | p50 ms | p99 ms | CPU ms/req | non-200 | req/s per round |", "|---|---|---|---|---|---|---|---|"]
summary = []
for sn, by in rows.items():
    for who in ("plain", "governed"):
        rs = by[who]
        L.append(f"| {sn} | {who} | {med([r['rps'] for r in rs]):.0f} | {1e3*med([r['p50'] for r in rs]):.2f} | {1e3*med([r['p99'] for r in rs]):.2f} | "
                 f"{med([r['cpu_ms_per_req'] for r in rs]):.4f} | {sum(r['non200'] for r in rs)} | {' / '.join('%.0f' % r['rps'] for r in rs)} |")
    p, g = by["plain"], by["governed"]
    summary.append(f"| {sn} | {med([r['rps'] for r in g])/med([r['rps'] for r in p]):.2f}x | {med([r['p50'] for r in g])/med([r['p50'] for r in p]):.2f}x | "
                   f"{med([r['p99'] for r in g])/med([r['p99'] for r in p]):.2f}x | {med([r['cpu_ms_per_req'] for r in g])/med([r['cpu_ms_per_req'] for r in p]):.2f}x | "
                   f"{1e3*(med([r['cpu_ms_per_req'] for r in g])-med([r['cpu_ms_per_req'] for r in p])):+.1f} |")
L += ["", "## Ratios (governed / plain, same run)\n", "| scenario | throughput | p50 | p99 | CPU per request | extra CPU µs per request |", "|---|---|---|---|---|---|"] + summary
L += ["", "## Governed gateway's counters after the run\n", "```", *led, "```", "",
      "Caveat: 2 shared vCPUs; compare the ratios, not absolute numbers. Run-to-run spread on this machine is ±10–20 %."]
open(E["OUT"], "w").write("\n".join(L) + "\n")
log("wrote", E["OUT"])
PY
