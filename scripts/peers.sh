#!/usr/bin/env bash
# Builds the exporters that "bench peers" (bench/README.md) measures certwatch
# against, pinned, once, into versioned folders of the tool cache:
#
#   ${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}/
#     peers-blackbox_exporter-v0.27.0/blackbox_exporter          module proxy, v0.27.0
#     peers-x509-certificate-exporter-v4.2.0/x509-certificate-exporter   from -x509-src
#     peers-ssl_exporter-v2.4.3/ssl_exporter                       from -ssl-src
#
#   scripts/peers.sh [X509_SRC_DIR [SSL_SRC_DIR]]
#
# blackbox_exporter comes from the Go module proxy. The two others are not
# served by every proxy, so they are built from source checkouts at the
# pinned tags (see bench/README.md, "peers", for the git clone commands);
# X509_SRC_DIR / SSL_SRC_DIR default to $CERTWATCH_PEERS_SRC/<name>-<tag>
# (CERTWATCH_PEERS_SRC defaults to ~/.cache/certwatch/peers-src). A binary
# already in the cache is reused; a peer whose source is missing or whose
# build fails is reported and skipped, and the others are still built.
#
# It prints one line per peer on stdout, "name version path" (path "-" when
# it could not be built), so callers can read the paths; progress goes to stderr.
set -uo pipefail
cd "$(dirname "$0")/.."

BLACKBOX_VERSION=v0.27.0
X509_VERSION=v4.2.0 # tag; commit 8bab222d43bad953d1dbab2bd7f6fd77ae70e1cb
SSL_VERSION=v2.4.3  # tag; commit 3f34a7b234ce861a5bc41d726a90d7be5e808cd8

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/certwatch"
TOOLS="${CERTWATCH_TOOLS:-$CACHE/tools}"
SRC="${CERTWATCH_PEERS_SRC:-$CACHE/peers-src}"
X509_SRC="${1:-$SRC/x509-certificate-exporter-$X509_VERSION}"
SSL_SRC="${2:-$SRC/ssl_exporter-$SSL_VERSION}"

# A clean build environment: no go.work of an enclosing checkout, no
# inherited flags; -mod=mod lets a checkout without vendor/ fetch its
# dependencies from the module proxy.
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod

status=0
trap 'rm -f "$TOOLS"/peers-*/*.tmp.$$' EXIT

report() { echo "$1 $2 $3"; }

# build NAME VERSION SRC_DIR PACKAGE: go build in SRC_DIR into the cache.
build_src() {
	local name="$1" version="$2" src="$3" pkg="$4"
	local dest="$TOOLS/peers-$name-$version"
	if [ -x "$dest/$name" ]; then
		report "$name" "$version" "$dest/$name"
		return
	fi
	if [ ! -f "$src/go.mod" ]; then
		echo "$name: no source checkout at $src (see bench/README.md, peers)" >&2
		report "$name" "$version" -
		status=1
		return
	fi
	mkdir -p "$dest"
	echo "building $name $version from $src" >&2
	local start=$SECONDS
	if (cd "$src" && go build -trimpath -o "$dest/$name.tmp.$$" "$pkg") >&2; then
		mv -f "$dest/$name.tmp.$$" "$dest/$name"
		echo "built $name in $((SECONDS - start)) s" >&2
		report "$name" "$version" "$dest/$name"
	else
		echo "$name: build failed after $((SECONDS - start)) s (see above for the module that failed)" >&2
		report "$name" "$version" -
		status=1
	fi
}

build_blackbox() {
	local name=blackbox_exporter version="$BLACKBOX_VERSION"
	local dest="$TOOLS/peers-$name-$version"
	if [ -x "$dest/$name" ]; then
		report "$name" "$version" "$dest/$name"
		return
	fi
	mkdir -p "$dest"
	echo "building $name $version from the module proxy" >&2
	local start=$SECONDS dir
	# The same as "GOBIN=$dest go install ...@$version", but without its
	# deprecation look-up (the module's @v/list), which a proxy serving only
	# pinned versions refuses: download the pinned module, build in its folder
	# (its go.sum pins every dependency).
	if dir="$(GOFLAGS= go mod download -json "github.com/prometheus/blackbox_exporter@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" && [ -n "$dir" ] &&
		(cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -o "$dest/$name.tmp.$$" .) >&2; then
		mv -f "$dest/$name.tmp.$$" "$dest/$name"
		echo "built $name in $((SECONDS - start)) s" >&2
		report "$name" "$version" "$dest/$name"
	else
		echo "$name: build failed after $((SECONDS - start)) s" >&2
		report "$name" "$version" -
		status=1
	fi
}

build_blackbox
build_src x509-certificate-exporter "$X509_VERSION" "$X509_SRC" ./cmd/x509-certificate-exporter
build_src ssl_exporter "$SSL_VERSION" "$SSL_SRC" .
exit $status
