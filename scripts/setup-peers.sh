#!/usr/bin/env bash
# Install the peers/tools the data-plane benchmark (scripts/bench.sh) needs. Idempotent; never run by CI.
#   - nginx, wrk (Debian packages)      : the reference reverse proxy and a cross-check load generator
#   - oha 1.x (cargo install --locked)  : the load generator bench.sh uses (JSON output)
# oha goes to loadtest/peers/cargo (gitignored). `--locked` is required on rustc 1.95 (without it a
# transitive dep needs rustc 1.96). The oha build takes ~5-6 min on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="$ROOT/loadtest/peers"
mkdir -p "$PEERS"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v wrk   >/dev/null 2>&1 || need_apt+=(wrk)
command -v jq    >/dev/null 2>&1 || need_apt+=(jq)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-peers: apt-get install ${need_apt[*]}"
  # refresh the package lists only if they are missing or older than a day
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}"
  # the Debian package may start a system nginx on :80; the benchmark runs its own instances only
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
fi

OHA="$PEERS/cargo/bin/oha"
if [ ! -x "$OHA" ]; then
  echo "setup-peers: cargo install oha --locked (takes ~5 min on 2 cores)"
  CARGO_TARGET_DIR="$PEERS/cargo-target" cargo install oha --locked --root "$PEERS/cargo"
  rm -rf "$PEERS/cargo-target"
fi

echo "--- versions"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -v 2>&1
wrk -v 2>&1 | head -1 || true
"$OHA" --version
jq --version
python3 --version
