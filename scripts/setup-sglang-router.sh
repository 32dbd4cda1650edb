#!/usr/bin/env bash
# Install sglang-router (SGLang's Rust router, "SGLang Model Gateway") into a venv, as the outside
# peer of the routing benchmark (scripts/bench-route.sh). Idempotent; never run by CI. ~30 s.
#
#   scripts/setup-sglang-router.sh                      # -> /opt/tollgate-peers/sglang-router-venv
#   SGLANG_VENV=/some/dir SGLANG_ROUTER_VERSION=0.3.2 scripts/setup-sglang-router.sh
#
# Pinned to 0.3.2 by default: the version the benchmark's flags and the notes below were checked
# against (PyPI wheel, the router is a Rust extension module; no GPU, no model download).
#
# How bench-route.sh launches it (loopback only; every flag explicit so the report is exact):
#   $SGLANG_VENV/bin/python -m sglang_router.launch_router \
#     --worker-urls http://127.0.0.1:19300 ... http://127.0.0.1:19307 \
#     --policy cache_aware --cache-threshold 0.3 --balance-abs-threshold 64 \
#     --balance-rel-threshold 1.5 --eviction-interval-secs 60 --max-tree-size 67108864 \
#     --host 127.0.0.1 --port 18190 --prometheus-host 127.0.0.1 --prometheus-port 18191 \
#     --log-level warn
# (0.3.2 defaults for cache_aware are 0.3 / 64 / 1.5; its Prometheus exporter binds 0.0.0.0:29000
# unless told otherwise.) The router starts listening before its workers are registered:
# wait until GET /workers lists every worker with "is_healthy":true before sending traffic.
#
# What 0.3.2 asks of each worker (observed through a logging proxy in front of a simulated
# SGLang backend):
#   start-up: GET /health; two HTTP/2 "PRI *" prefaces (it probes for an SGLang and a vLLM gRPC
#             server first, then falls back to HTTP); GET /server_info, then /get_server_info;
#             GET /model_info, then /get_model_info. The four info endpoints may 404: the router
#             logs a deprecation warning and registers the worker under model "unknown", which
#             routes requests for any model name.
#   running:  GET /health every --health-check-interval-secs (60); GET /get_load every
#             30 s only when a power_of_two policy exists; the requests themselves
#             (POST /v1/chat/completions, forwarded as sent, stream included).
set -euo pipefail
VENV="${SGLANG_VENV:-/opt/tollgate-peers/sglang-router-venv}"
VERSION="${SGLANG_ROUTER_VERSION:-0.3.2}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "setup-sglang-router: apt-get install python3-venv"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
fi

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
have="$("$VENV/bin/python" -m pip show sglang-router 2>/dev/null | awk '/^Version:/ {print $2}')"
if [ "$have" != "$VERSION" ]; then
  echo "setup-sglang-router: pip install sglang-router==$VERSION into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "sglang-router==$VERSION"
fi

echo "--- versions"
"$VENV/bin/python" --version
"$VENV/bin/python" -m pip show sglang-router | grep -E '^(Name|Version):'
"$VENV/bin/python" -m sglang_router.launch_router --help >/dev/null && echo "launch_router: ok"
