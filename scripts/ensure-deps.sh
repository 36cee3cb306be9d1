#!/usr/bin/env bash
# Installs node_modules from package-lock.json when they are missing (fresh clone), so
# `npm run serve` / `npm start` work straight away. Does nothing when they are present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ -x node_modules/.bin/tsx ] && [ -d node_modules/@temporalio/worker ] && [ -d node_modules/commander ] && [ -d node_modules/uplot ]; then
  exit 0
fi
echo "node_modules missing: running npm ci"
npm ci --no-audit --no-fund
