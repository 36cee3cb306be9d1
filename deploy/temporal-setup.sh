#!/usr/bin/env bash
# One-shot setup of a Temporal cluster for model-canary (docker-compose.yml's `temporal-setup`,
# run with the `temporal` CLI of the temporalio/auto-setup image; works with any `temporal` CLI):
#   1. waits until the frontend at $TEMPORAL_ADDRESS answers SERVING;
#   2. creates the namespace $TEMPORAL_NAMESPACE (retention $TEMPORAL_NAMESPACE_RETENTION) unless
#      it exists;
#   3. registers the search attributes in $SEARCH_ATTRIBUTES ("Name=Type ...", the ones
#      src/workflows/search-attributes.ts defines) that are missing, and waits until the server
#      lists them all: a rollout cannot start before they are.
# Idempotent: a second run changes nothing. Exits non-zero, saying why, when the server does not
# answer within $SETUP_TIMEOUT_SECONDS (300) or an attribute exists with another type.
set -euo pipefail

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS (host:port of the Temporal frontend) is required}"
: "${SEARCH_ATTRIBUTES:?SEARCH_ATTRIBUTES (\"Name=Type ...\") is required}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-720h}"
deadline=$((SECONDS + ${SETUP_TIMEOUT_SECONDS:-300}))
export TEMPORAL_ADDRESS

log() { echo "[temporal-setup] $*"; }
# Runs "$@" until it succeeds, every 2 s, until the deadline.
retry() {
  local what="$1"
  shift
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "gave up: $what (after ${SETUP_TIMEOUT_SECONDS:-300}s)" >&2
      return 1
    fi
    sleep 2
  done
}

serving() { [[ "$(temporal operator cluster health --address "$TEMPORAL_ADDRESS" 2>/dev/null)" == *SERVING* ]]; }
namespace_exists() { temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$namespace" >/dev/null 2>&1; }
# The type the server lists for attribute $1 in the namespace ("" when it has none).
attribute_type() {
  temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$namespace" |
    awk -v name="$1" '$1 == name { print $2; exit }'
}
all_listed() {
  local spec
  for spec in $SEARCH_ATTRIBUTES; do
    [ -n "$(attribute_type "${spec%%=*}")" ] || return 1
  done
}

log "waiting for Temporal at $TEMPORAL_ADDRESS"
retry "Temporal at $TEMPORAL_ADDRESS to answer SERVING" serving

if namespace_exists; then
  log "namespace $namespace exists"
else
  log "creating namespace $namespace (retention $retention)"
  # Another run may create it at the same time: what counts is that it exists afterwards.
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$namespace" --retention "$retention" \
    --description "model-canary rollouts" || true
  retry "namespace $namespace to exist" namespace_exists
fi
# The namespace may take a moment to be seen by every part of the server.
retry "namespace $namespace to list its search attributes" attribute_type WorkflowId >/dev/null

for spec in $SEARCH_ATTRIBUTES; do
  name="${spec%%=*}"
  type="${spec#*=}"
  have="$(attribute_type "$name")"
  if [ -z "$have" ]; then
    log "registering search attribute $name ($type)"
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$namespace" --name "$name" --type "$type"
  elif [ "$(echo "$have" | tr '[:upper:]' '[:lower:]')" = "$(echo "$type" | tr '[:upper:]' '[:lower:]')" ]; then
    log "search attribute $name ($type) exists"
  else
    log "search attribute $name exists with type $have, not $type: remove it or use another namespace" >&2
    exit 1
  fi
done
retry "search attributes $SEARCH_ATTRIBUTES to be listed" all_listed
log "ready: namespace $namespace with search attributes $SEARCH_ATTRIBUTES"
