#!/usr/bin/env bash
# Builds the real Kubernetes components that certwatch's Kubernetes integration
# tests (internal/kubetest) run on loopback: kube-apiserver and etcd.
#
# Both are built once, from the tool modules in tools/kube-apiserver and
# tools/etcd, into a versioned folder:
#   ${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}/kube-v1.34.3/
# When both binaries are already there the script does nothing. It prints the
# folder on stdout (progress goes to stderr), so callers can do:
#   export CERTWATCH_KUBE_BIN="$(scripts/kube-tools.sh)"
#
# A cold build takes several minutes on 2 cores (kube-apiserver is the long one).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=v1.34.3 # keep in step with tools/kube-apiserver/go.mod
TOOLS="${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}"
DEST="$TOOLS/kube-${KUBE_VERSION}"

have_all() { [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ]; }

if have_all; then
	echo "$DEST"
	exit 0
fi

mkdir -p "$DEST"
# Serialise concurrent runs (two test scripts started at once).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$DEST/.lock"
	flock 9
fi

# Build with a clean environment: no inherited GOFLAGS (-mod=vendor, tags, ...),
# no go.work of an enclosing checkout, static binaries.
export GOFLAGS= GOWORK=off CGO_ENABLED=0

build() { # binary tool-module-dir package ldflags
	local bin="$1" dir="$2" pkg="$3" ldflags="$4"
	if [ -x "$DEST/$bin" ]; then
		return
	fi
	echo "building $bin once into $DEST (minutes on a cold cache)" >&2
	local start=$SECONDS
	(cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$DEST/$bin.tmp.$$" "$pkg")
	# Rename only a complete binary, so an interrupted build is redone next time.
	mv -f "$DEST/$bin.tmp.$$" "$DEST/$bin"
	echo "built $bin in $((SECONDS - start)) s" >&2
}

trap 'rm -f "$DEST"/*.tmp.$$' EXIT

build etcd tools/etcd go.etcd.io/etcd/server/v3 "-s -w"

minor="${KUBE_VERSION#v1.}"
minor="${minor%%.*}"
kv=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kv+=" -X $p.gitVersion=${KUBE_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor} -X $p.gitTreeState=clean"
done
build kube-apiserver tools/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "-s -w${kv}"

have_all
echo "$DEST"
