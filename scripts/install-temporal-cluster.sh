#!/usr/bin/env bash
# Installs what test/e2e/cluster.test.ts needs for a real, multi-service Temporal cluster into
# .temporal-bin/cluster/ (git-ignored, under .temporal-bin/), idempotently:
#   temporal-server     go install go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION
#                       (binary `server`, kept as `temporal-server`)
#   temporal-sql-tool   go install go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION
#                       (binary `sql`, kept as `temporal-sql-tool`)
#   schema.dir          the path of the server module's SQL schema folder in the Go module cache
#                       (schema/postgresql/v12/temporal/versioned, .../visibility/versioned)
# Both are built through the Go module proxy with the machine's Go: the server module's go.mod
# says `go 1.25.0`, and the machine has Go 1.26, so no other toolchain is fetched (GOTOOLCHAIN=local).
# On a Go older than 1.25 the script asks for go1.25.0 instead, which the go command fetches as the
# module golang.org/toolchain from the Go module proxy.
# PostgreSQL comes from Debian (package postgresql, in scripts/install-debian.sh); this script
# checks that initdb and postgres are there.
# A second run finds everything in place and changes nothing (under a second).
# The first build took 10.6 minutes (7.6 CPU-minutes; module downloads included, cold Go caches)
# on 2 cores shared with other work; with a warm Go build cache (a fresh clone on the same
# machine), about 15 seconds.
set -euo pipefail

TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.29.1}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${TEMPORAL_CLUSTER_BIN_DIR:-$root/.temporal-bin/cluster}"
mkdir -p "$dest"

if [ -x /usr/local/go/bin/go ] && ! command -v go >/dev/null 2>&1; then export PATH="$PATH:/usr/local/go/bin"; fi
export GOFLAGS="-mod=mod -buildvcs=false"
# The machine's Go when it is new enough (1.25+); otherwise Go 1.25.0 from the module proxy.
export GOTOOLCHAIN=local
if command -v go >/dev/null 2>&1; then
  go_minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  if [ -n "$go_minor" ] && [ "$go_minor" -lt 25 ]; then export GOTOOLCHAIN=go1.25.0; fi
fi

# The stamp: the binaries, their version files, and the schema folder recorded for this version.
stamp_ok() {
  [ -x "$dest/temporal-server" ] && [ -x "$dest/temporal-sql-tool" ] \
    && [ "$(cat "$dest/temporal-server.version" 2>/dev/null)" = "$TEMPORAL_SERVER_VERSION" ] \
    && [ "$(cat "$dest/temporal-sql-tool.version" 2>/dev/null)" = "$TEMPORAL_SERVER_VERSION" ] \
    && [ -d "$(cat "$dest/schema.dir" 2>/dev/null)/postgresql/v12/temporal/versioned" ] \
    && [ -d "$(cat "$dest/schema.dir" 2>/dev/null)/postgresql/v12/visibility/versioned" ]
}

build() {
  command -v go >/dev/null 2>&1 || { echo "error: go is needed to build the Temporal server (Go 1.25 or newer)" >&2; return 1; }
  local gobin="$dest/gobin.partial" dir
  rm -rf "$gobin"
  mkdir -p "$gobin"
  GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
  dir="$(cd "$dest" && go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir/schema/postgresql/v12/temporal/versioned" ] && [ -d "$dir/schema/postgresql/v12/visibility/versioned" ] \
    || { echo "error: go.temporal.io/server@$TEMPORAL_SERVER_VERSION has no schema/postgresql/v12 in the module cache ($dir)" >&2; return 1; }
  mv -f "$gobin/server" "$dest/temporal-server"
  mv -f "$gobin/sql" "$dest/temporal-sql-tool"
  rm -rf "$gobin"
  echo "$dir/schema" > "$dest/schema.dir"
  echo "$TEMPORAL_SERVER_VERSION" > "$dest/temporal-server.version"
  echo "$TEMPORAL_SERVER_VERSION" > "$dest/temporal-sql-tool.version"
}

if stamp_ok; then
  echo "temporal-server and temporal-sql-tool $TEMPORAL_SERVER_VERSION already in $dest"
else
  echo "building temporal-server and temporal-sql-tool $TEMPORAL_SERVER_VERSION from Go modules into $dest (takes minutes)"
  start=$SECONDS
  build || { echo "error: could not build the Temporal server $TEMPORAL_SERVER_VERSION" >&2; exit 1; }
  echo "built the Temporal server in $((SECONDS - start))s"
fi

# PostgreSQL: Debian's server binaries live in /usr/lib/postgresql/<major>/bin, not on PATH.
pgbin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && pgbin="$d"; done
[ -n "$pgbin" ] || { echo "error: PostgreSQL's initdb/postgres not found; run scripts/install-debian.sh (Debian postgresql)" >&2; exit 1; }

"$dest/temporal-server" --version 2>/dev/null || "$dest/temporal-server" -v
echo "temporal-sql-tool $(cat "$dest/temporal-sql-tool.version")"
echo "schema: $(cat "$dest/schema.dir")"
echo "PostgreSQL: $("$pgbin/postgres" --version) ($pgbin)"
