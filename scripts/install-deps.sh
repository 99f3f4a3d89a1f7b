#!/usr/bin/env bash
# Installs everything execution-sentinel needs to build, test and run on Debian 12.
# Usage: scripts/install-deps.sh        (as root, or with sudo available)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
packages=(
  g++ cmake make pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libyaml-cpp-dev libcli11-dev catch2 libbenchmark-dev
  # the run history store: SQLite (default) and PostgreSQL (shared); the tests start a real PostgreSQL server
  libsqlite3-dev libpq-dev postgresql
  # real clients for the fidelity tests (kubectl 1.32 is preinstalled; Debian's kubernetes-client 1.20 conflicts with it)
  python3 python3-kubernetes python3-yaml
  # the terminal view is checked in a real pseudo-terminal
  tmux
  # the metrics endpoint is checked by promtool and scraped by a real Prometheus server in the tests
  prometheus
  # real alert receivers for the alert tests: Alertmanager and an SMTP server for its e-mail receiver
  prometheus-alertmanager python3-aiosmtpd
  # the live page of `serve` is loaded and checked in headless Chromium
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # CI (ES_CLEAN_BUILDS=1): the downloaded packages are not needed again; their disk is.
  if [ "${ES_CLEAN_BUILDS:-0}" = 1 ]; then $SUDO apt-get clean; fi
else
  echo "all build and test dependencies are installed"
fi
if ! command -v kubectl >/dev/null; then
  echo "note: kubectl not found; the kubectl fidelity test will be skipped" >&2
fi
