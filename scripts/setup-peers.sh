#!/usr/bin/env bash
# Install the peers/tools the benchmarks need (scripts/bench.sh, scripts/compare.sh). Idempotent;
# never run by CI. Everything except the Debian packages goes under loadtest/peers/ (gitignored).
#   - nginx, haproxy, wrk, jq (Debian)  : the reference reverse proxies, a cross-check load generator
#   - nodejs, npm (Debian, if missing)  : for the Portkey gateway
#   - oha 1.x (cargo install --locked)  : the load generator bench.sh / compare.sh use (JSON output)
#   - LiteLLM proxy (pip 'litellm[proxy]' in loadtest/peers/venv)
#   - Portkey gateway OSS 1.15.2 (npm, in loadtest/peers/portkey) with the two fixes from
#     notes/performance.md B.1/B.5: @hono/node-server pinned to 1.14.2 (Portkey-AI/gateway#1389)
#     and `overrideGlobalObjects:!1` patched into the installed start-server.js (without it every
#     streaming request answers 500 `TypeError: immutable`); the force-loopback preload lives in
#     loadtest/conf/portkey-force-loopback.cjs and is passed with `node --require` by compare.sh.
# `--locked` is required for oha on rustc 1.95 (without it a transitive dep needs rustc 1.96). The
# oha build takes ~5-6 min on 2 cores; LiteLLM ~1-2 min; Portkey ~1 min.
# Knobs: ONLY="apt oha litellm portkey" (subset, default all)  LITELLM_SPEC='litellm[proxy]'
#        PORTKEY_VERSION=1.15.2  PYTHON=python3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="$ROOT/loadtest/peers"
ONLY="${ONLY:-apt oha litellm portkey}"
LITELLM_SPEC="${LITELLM_SPEC:-litellm[proxy]}"
PORTKEY_VERSION="${PORTKEY_VERSION:-1.15.2}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$PEERS"
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
die() { echo "setup-peers: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_install() {
  echo "setup-peers: apt-get install $*"
  # refresh the package lists only if they are missing or older than a day
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@"
}

if want apt; then
  need_apt=()
  command -v nginx   >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]   || need_apt+=(nginx)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
  command -v wrk     >/dev/null 2>&1 || need_apt+=(wrk)
  command -v jq      >/dev/null 2>&1 || need_apt+=(jq)
  command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
  if want portkey; then
    command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
    command -v npm  >/dev/null 2>&1 || need_apt+=(npm)
  fi
  if want litellm; then
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
  fi
  if [ ${#need_apt[@]} -gt 0 ]; then
    apt_install "${need_apt[@]}"
    # the Debian packages may start a system nginx on :80 / haproxy; the benchmarks run their own instances only
    if command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
      $SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
    fi
  fi
fi

OHA="$PEERS/cargo/bin/oha"
if want oha && [ ! -x "$OHA" ]; then
  echo "setup-peers: cargo install oha --locked (takes ~5 min on 2 cores)"
  CARGO_TARGET_DIR="$PEERS/cargo-target" cargo install oha --locked --root "$PEERS/cargo"
  rm -rf "$PEERS/cargo-target"
fi

VENV="$PEERS/venv"
if want litellm && [ ! -x "$VENV/bin/litellm" ]; then
  echo "setup-peers: pip install '$LITELLM_SPEC' into $VENV (~1-2 min)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$LITELLM_SPEC"
  [ -x "$VENV/bin/litellm" ] || die "pip install finished but $VENV/bin/litellm is missing"
fi

PK="$PEERS/portkey"
PK_START="$PK/node_modules/@portkey-ai/gateway/build/start-server.js"
PK_HONO="$PK/node_modules/@hono/node-server/package.json"
portkey_ok() {
  [ -f "$PK_START" ] && grep -q 'overrideGlobalObjects:!1' "$PK_START" \
    && [ -f "$PK_HONO" ] && grep -q '"version": *"1\.14\.2"' "$PK_HONO"
}
if want portkey && ! portkey_ok; then
  command -v npm >/dev/null 2>&1 || die "npm not found (ONLY must include apt, or apt-get install npm)"
  echo "setup-peers: npm install @portkey-ai/gateway@$PORTKEY_VERSION into $PK (~1 min)"
  mkdir -p "$PK"
  [ -f "$PK/package.json" ] || (cd "$PK" && npm init -y >/dev/null)
  # fix 1: pin @hono/node-server (1.14.2) via npm overrides, then install the gateway
  (cd "$PK" && node -e '
    const fs = require("fs"); const p = JSON.parse(fs.readFileSync("package.json"));
    p.overrides = Object.assign({}, p.overrides, {"@hono/node-server": "1.14.2"});
    p.dependencies = Object.assign({}, p.dependencies, {"@portkey-ai/gateway": process.argv[1]});
    fs.writeFileSync("package.json", JSON.stringify(p, null, 2) + "\n");' "$PORTKEY_VERSION")
  (cd "$PK" && npm install --no-audit --no-fund --loglevel=error)
  [ -f "$PK_START" ] || die "npm install did not produce $PK_START"
  grep -q '"version": *"1\.14\.2"' "$PK_HONO" 2>/dev/null \
    || die "@hono/node-server is not 1.14.2 after the override: $(grep '"version"' "$PK_HONO" 2>/dev/null || echo missing)"
  # fix 2: serve with overrideGlobalObjects:false (streaming answers 500 `TypeError: immutable` otherwise)
  if ! grep -q 'overrideGlobalObjects:!1' "$PK_START"; then
    sed -i 's/Gu(e({fetch:Lu.fetch,port:Ku}))/Gu(e({fetch:Lu.fetch,port:Ku,overrideGlobalObjects:!1}))/' "$PK_START"
  fi
  n=$(grep -c 'overrideGlobalObjects:!1' "$PK_START" || true)
  [ "$n" = 1 ] || die "the overrideGlobalObjects fix did not apply to $PK_START (found $n occurrences; the minified call site changed? look for 'fetch:Lu.fetch,port:Ku')"
fi
if want portkey; then
  [ -f "$ROOT/loadtest/conf/portkey-force-loopback.cjs" ] || die "loadtest/conf/portkey-force-loopback.cjs is missing"
fi

echo "--- versions"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -v 2>&1
if want apt; then
  HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
  "$HAPROXY" -v 2>&1 | sed -n 1p
fi
wrk -v 2>&1 | sed -n 1p || true
[ -x "$OHA" ] && "$OHA" --version
jq --version
python3 --version
if want litellm; then echo "litellm $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"; fi
if want portkey; then
  echo "node $(node --version)"
  echo "@portkey-ai/gateway $(node -p "require('$PK/node_modules/@portkey-ai/gateway/package.json').version")," \
       "@hono/node-server $(node -p "require('$PK_HONO').version")"
fi
