#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules into bin/k8s/ for controller-runtime
# envtest (KUBEBUILDER_ASSETS=bin/k8s). Nothing is downloaded but Go modules: a throwaway
# module requires k8s.io/kubernetes and replaces every k8s.io/* staging module (which the
# kubernetes go.mod points at ./staging) with its published v0.x twin. The first run takes a
# few minutes; later runs reuse the binaries (or the Go build cache).
#
# The binaries are also kept in a per-user cache (ENVTEST_CACHE, default
# ~/.cache/portcullis/envtest/<versions>), so a fresh clone on the same machine copies them
# instead of building again.
#
# Usage: hack/setup-envtest.sh [DEST]        (DEST defaults to bin/k8s)
# Env:   KUBE_VERSION (default 1.37.1), ETCD_VERSION (default v3.7.0), ENVTEST_CACHE
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.1}
ETCD_VERSION=${ETCD_VERSION:-v3.7.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/bin/k8s}
STAMP="$DEST/.version"
WANT="kube-apiserver v$KUBE_VERSION etcd $ETCD_VERSION"

CACHE=${ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis/envtest/kube-v$KUBE_VERSION-etcd-$ETCD_VERSION}

have() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" && -f "$1/.version" && "$(cat "$1/.version")" == "$WANT" ]]; }

if have "$DEST"; then
  exit 0
fi
mkdir -p "$DEST"
if have "$CACHE"; then
  cp "$CACHE/kube-apiserver" "$CACHE/etcd" "$CACHE/.version" "$DEST/"
  echo ">> $WANT copied from $CACHE" >&2
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

echo ">> building $WANT into $DEST (first time: a few minutes)" >&2

# The staging modules are the k8s.io/* requirements at v0.0.0 in kubernetes' own go.mod.
DL=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION")
if grep -q '"Error"' <<<"$DL"; then echo "$DL" >&2; exit 1; fi
KMOD=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$DL")
STAGING=$(awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&$1 ~ /^k8s\.io\// && $2=="v0.0.0"{print $1}' "$KMOD")
[[ -n "$STAGING" ]] || { echo "no staging modules found in $KMOD" >&2; exit 1; }

{
  echo "module portcullis.local/envtest-assets"
  echo
  echo "go 1.26"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes v$KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in $STAGING; do echo "	$m => $m v0.${KUBE_VERSION#1.}"; done
  echo ")"
} > go.mod

mkdir -p etcd
cat > etcd/main.go <<'GO'
// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

# Modules whose checksum the database cannot vouch for (the staging twins are published
# tags, but a lookup failure must not stop a developer's build).
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}k8s.io/*"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

go build -trimpath -o "$DEST/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -o "$DEST/etcd" ./etcd
echo "$WANT" > "$STAMP"
mkdir -p "$CACHE" && cp "$DEST/kube-apiserver" "$DEST/etcd" "$STAMP" "$CACHE/" || true
echo ">> $("$DEST/kube-apiserver" --version) and etcd $ETCD_VERSION ready in $DEST" >&2
