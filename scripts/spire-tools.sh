#!/usr/bin/env bash
# Builds the real SPIRE components that certwatch's SPIFFE integration tests
# (internal/spiretest) run on loopback: spire-server and spire-agent.
#
# Both are built once, from the tool module in tools/spire, into a versioned
# folder:
#   ${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}/spire-v1.13.3/
# When both binaries are already there the script does nothing. It prints the
# folder on stdout (progress goes to stderr), so callers can do:
#   export CERTWATCH_SPIRE_BIN="$(scripts/spire-tools.sh)"
#
# Both are built with cgo, so a C compiler is needed: spire-server's SQLite
# datastore (github.com/mattn/go-sqlite3) is compiled out without cgo, and
# SQLite is the only datastore that needs no database server. spire-agent
# could do without, but one cgo build of both shares every common package.
#
# A cold build takes several minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

SPIRE_VERSION=v1.13.3 # keep in step with tools/spire/go.mod
TOOLS="${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}"
DEST="$TOOLS/spire-${SPIRE_VERSION}"

have_all() { [ -x "$DEST/spire-server" ] && [ -x "$DEST/spire-agent" ]; }

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
# Another run may have finished the build while this one waited.
if have_all; then
	echo "$DEST"
	exit 0
fi

# Build with a clean environment: no inherited GOFLAGS (-mod=vendor, tags, ...),
# no go.work of an enclosing checkout.
export GOFLAGS= GOWORK=off CGO_ENABLED=1

TMP="$DEST/.tmp.$$"
trap 'rm -rf "$TMP"' EXIT

echo "building spire-server and spire-agent once into $DEST (minutes on a cold cache)" >&2
start=$SECONDS
mkdir -p "$TMP"
# SPIRE's release builds stamp the version this way (its Makefile).
(cd tools/spire && go build -trimpath \
	-ldflags "-s -w -X github.com/spiffe/spire/pkg/common/version.gittag=${SPIRE_VERSION#v}" \
	-o "$TMP/" github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent)
# Rename only complete binaries, so an interrupted build is redone next time.
mv -f "$TMP/spire-server" "$TMP/spire-agent" "$DEST/"
echo "built spire-server and spire-agent in $((SECONDS - start)) s" >&2

have_all
echo "$DEST"
