#!/usr/bin/env bash
# Runs every certwatch test: formatting and vet, the whole Go test suite with
# the race detector (unit, real TLS servers, real daemons, end-to-end against
# the built binary, promtool), and a short fuzzing pass over the file parsers.
#
# It installs what the tests need first, and reuses what is already there:
#   - Debian packages for the real STARTTLS daemons (.ci/install-test-deps.sh, as root)
#   - promtool, built once into a versioned folder under $CERTWATCH_TOOLS
set -euo pipefail
cd "$(dirname "$0")/.."

PROMETHEUS_VERSION=v0.316.0
TOOLS="${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}"
FUZZTIME="${CERTWATCH_FUZZTIME:-10s}"

step() { printf '\n==> %s\n' "$*"; }

if [ -x .ci/install-test-deps.sh ]; then
	if [ "$(id -u)" = 0 ]; then
		step "Debian packages for the daemon tests"
		.ci/install-test-deps.sh
	elif [ -z "${CERTWATCH_SKIP_DAEMON_TESTS:-}" ]; then
		echo "not root: run .ci/install-test-deps.sh as root once, or set CERTWATCH_SKIP_DAEMON_TESTS=1" >&2
	fi
fi

step "promtool ${PROMETHEUS_VERSION}"
promdir="$TOOLS/prometheus-${PROMETHEUS_VERSION}"
if [ ! -x "$promdir/promtool" ]; then
	mkdir -p "$promdir"
	echo "building promtool once into $promdir (several minutes on a cold module cache)"
	GOFLAGS= GOBIN="$promdir" go install "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}"
fi
export PATH="$promdir:$PATH"
promtool --version >/dev/null

step "gofmt and go vet"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.build/*'))"
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

step "go test -race ./..."
go test -race -count=1 -timeout 20m ./...

step "fuzzing the file parsers for ${FUZZTIME}"
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$FUZZTIME" ./source/files/

step "all tests passed"
