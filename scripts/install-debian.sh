#!/usr/bin/env bash
# Installs the Debian packages the test suite needs beyond Node and Python, idempotently:
#   tmux               test/cli/watch-tty: `model-canary get --watch` on a real pseudo-terminal
#   chromium           test/cli/report-html: the HTML report opened in headless Chromium
#   fonts-dejavu-core  text in Chromium's screenshots
#   etcd-server        test/activities/gateway-api-router: the store of a real kube-apiserver
#   prometheus         test/activities/prometheus-source, test/e2e/prometheus: the Prometheus metric source
#   docker-compose     test/deploy/compose: `docker-compose config` validates docker-compose.yml (no engine needed)
#   nginx              test/activities/nginx-router: the NGINX traffic router against a real nginx
#   postgresql         test/e2e/cluster: the store of a real multi-service Temporal cluster (throwaway initdb per run)
# Only from the machine's apt sources (Debian's archive; nothing downloaded from elsewhere, no
# browser build of its own). Each package is pinned to the version below (Debian 12 "bookworm",
# tested) while Debian still serves it; once a security update has replaced it in the archive,
# Debian's current version is installed instead, saying so.
# Packages already installed are left as they are; `apt-get update` runs only when one is
# missing, so a second run changes nothing (and takes a fraction of a second).
set -euo pipefail

declare -A pinned=(
  [tmux]="3.3a-3"
  [chromium]="156.0.8078.114-1~deb12u1"
  [fonts-dejavu-core]="2.37-6"
  [etcd-server]="3.4.23-4+b4"
  [prometheus]="2.42.0+ds-5+deb12u1"
  [docker-compose]="1.29.2-3"
  [nginx]="1.22.1-9+deb12u11"
  [postgresql]="15+248+deb12u1"
)
packages=(tmux chromium fonts-dejavu-core etcd-server prometheus docker-compose nginx postgresql)

# No `| grep -q` here: under pipefail, grep's early exit can kill dpkg with SIGPIPE and fail the check.
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${missing[*]} missing and there is no apt-get (this script is for Debian); install them by hand" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: ${missing[*]} missing; run this script as root (or install sudo)" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing ${missing[*]} from Debian (apt-get update first)"
  "${sudo[@]}" apt-get update -qq
  specs=()
  for p in "${missing[@]}"; do
    want="${pinned[$p]:-}"
    if [ -n "$want" ] && apt-cache madison "$p" | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -xF "$want" >/dev/null; then
      specs+=("$p=$want")
    else
      echo "note: Debian no longer serves $p $want; installing its current $(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')"
      specs+=("$p")
    fi
  done
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${specs[@]}"
  for p in "${missing[@]}"; do installed "$p" || { echo "error: $p did not install" >&2; exit 1; }; done
fi

for bin in tmux chromium etcd; do
  command -v "$bin" >/dev/null 2>&1 || { echo "error: $bin is not on PATH after installing it" >&2; exit 1; }
done
for p in "${packages[@]}"; do
  now=""
  for m in "${missing[@]:-}"; do [ "$m" = "$p" ] && now=" (installed now)"; done
  echo "$p $(version_of "$p")$now"
done
