#!/usr/bin/env bash
# Installs what the Kubernetes tests need into .kube-bin/ (git-ignored), idempotently:
#   kube-apiserver   built from the Go module k8s.io/kubernetes (pinned below) through the Go
#                    module proxy: a throwaway module in .kube-bin/build/ requires it, with each
#                    k8s.io/* staging module replaced by its published v0.x.y (k8s.io/kubernetes
#                    points them at ./staging, which its module zip does not carry)
#   crds/*.yaml      the Gateway API standard-channel CRDs, from the Go module
#                    sigs.k8s.io/gateway-api (pinned below; its zip carries config/crd/standard)
# etcd comes from Debian (etcd-server, pinned in scripts/install-debian.sh); this script checks
# it is there. A second run finds everything in place and changes nothing (well under a second).
# The first build takes about 12 minutes on 2 cores with cold Go caches (module downloads
# included); with a warm Go build cache, under a minute.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.4}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.5.1}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${KUBE_BIN_DIR:-$root/.kube-bin}"
mkdir -p "$dest"

if [ -x /usr/local/go/bin/go ] && ! command -v go >/dev/null 2>&1; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null 2>&1 || { echo "error: go is needed to build kube-apiserver (Go 1.24 or newer)" >&2; exit 1; }
export GOFLAGS="-mod=mod -buildvcs=false"

have_version() { [ -e "$dest/$1" ] && [ "$(cat "$dest/$1.version" 2>/dev/null)" = "$2" ]; }

# v1.34.4 → v0.34.4: the version the staging modules are published at.
staging_version="v0.${KUBERNETES_VERSION#v1.}"

build_apiserver() {
  local build="$dest/build" gomod
  rm -rf "$build"
  mkdir -p "$build"
  cd "$build"
  cat > go.mod <<EOF
module model-canary.local/kube-build

go 1.24
EOF
  cat > tools.go <<'EOF'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF
  # k8s.io/kubernetes's go.mod: its `k8s.io/x => ./staging/src/k8s.io/x` lines name the
  # staging modules; each one becomes `k8s.io/x => k8s.io/x v0.N.M` here.
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { echo "error: go mod download k8s.io/kubernetes@$KUBERNETES_VERSION gave no go.mod" >&2; return 1; }
  {
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    grep -oE '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" \
      | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >> go.mod
  grep -q "k8s.io/apiserver => k8s.io/apiserver $staging_version" go.mod \
    || { echo "error: found no staging modules in $gomod" >&2; return 1; }
  go mod tidy
  local pkg=k8s.io/component-base/version ldflags
  ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dest/kube-apiserver.partial" k8s.io/kubernetes/cmd/kube-apiserver
  mv -f "$dest/kube-apiserver.partial" "$dest/kube-apiserver"
  echo "$KUBERNETES_VERSION" > "$dest/kube-apiserver.version"
  cd "$root"
}

install_crds() {
  local dir
  dir="$(cd "$dest" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir/config/crd/standard" ] || { echo "error: sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION has no config/crd/standard" >&2; return 1; }
  rm -rf "$dest/crds.partial"
  mkdir -p "$dest/crds.partial"
  cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$dest/crds.partial/"
  chmod 644 "$dest"/crds.partial/*.yaml
  rm -rf "$dest/crds"
  mv "$dest/crds.partial" "$dest/crds"
  echo "$GATEWAY_API_VERSION" > "$dest/crds.version"
}

if have_version kube-apiserver "$KUBERNETES_VERSION"; then
  echo "kube-apiserver $KUBERNETES_VERSION already in $dest"
else
  echo "building kube-apiserver $KUBERNETES_VERSION from Go modules into $dest (takes minutes)"
  start=$SECONDS
  build_apiserver || { echo "error: could not build kube-apiserver" >&2; exit 1; }
  echo "built kube-apiserver in $((SECONDS - start))s"
fi

if have_version crds "$GATEWAY_API_VERSION"; then
  echo "Gateway API $GATEWAY_API_VERSION CRDs already in $dest/crds"
else
  echo "installing Gateway API $GATEWAY_API_VERSION standard-channel CRDs into $dest/crds"
  install_crds || { echo "error: could not install the Gateway API CRDs" >&2; exit 1; }
fi

command -v etcd >/dev/null 2>&1 \
  || { echo "error: etcd is not on PATH; run scripts/install-debian.sh (Debian etcd-server)" >&2; exit 1; }

"$dest/kube-apiserver" --version
echo "etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')"
ls "$dest/crds"
