#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real, when they are missing:
# redis-server (relay and fault tests start their own), prometheus + promtool (scrape and rule
# checks), chromium (browser tests through playwright-core), systemd (systemd-analyze verify
# of the unit), shellcheck (install.sh) and openssl (TLS certificates). Needs root for apt-get.
set -euo pipefail
need=()
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "installing test dependencies: ${need[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# kubectl is optional (not every Debian mirror has it): the manifests are parsed and checked
# without it; with it, `kubectl kustomize` also builds them.
if ! command -v kubectl >/dev/null 2>&1 && apt-cache show kubectl >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive ${sudo_cmd:-} apt-get install -y -qq --no-install-recommends kubectl >/dev/null || true
fi
