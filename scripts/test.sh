#!/usr/bin/env bash
# Runs every certwatch test: formatting and vet, the whole Go test suite with
# the race detector (unit, real TLS servers, real daemons, end-to-end against
# the built binary, promtool), and a short fuzzing pass over the file parsers.
#
# It installs what the tests need first, and reuses what is already there:
#   - Debian packages for the real STARTTLS daemons (.ci/install-test-deps.sh, as root)
#   - kube-apiserver and etcd (scripts/kube-tools.sh) and spire-server and
#     spire-agent (scripts/spire-tools.sh, needs a C compiler), built in
#     parallel, and promtool, prometheus, amtool and helm, all built once into
#     versioned folders under $CERTWATCH_TOOLS (default ~/.cache/certwatch/tools)
#     CERTWATCH_SKIP_KUBE_TESTS=1 and CERTWATCH_SKIP_SPIRE_TESTS=1 skip building
#     the Kubernetes and SPIRE components and the tests that run them.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMETHEUS_VERSION=v0.316.0
ALERTMANAGER_VERSION=v0.34.2
HELM_VERSION=v3.22.0
TOOLS="${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}"
FUZZTIME="${CERTWATCH_FUZZTIME:-10s}"

step() { printf '\n==> %s\n' "$*"; }

if [ -x .ci/install-test-deps.sh ]; then
	if [ "$(id -u)" = 0 ]; then
		step "Debian packages for the daemon tests"
		.ci/install-test-deps.sh
	elif [ -z "${CERTWATCH_SKIP_DAEMON_TESTS:-}" ]; then
		echo "not root: run .ci/install-test-deps.sh as root once, or set CERTWATCH_SKIP_DAEMON_TESTS=1 (and CERTWATCH_SKIP_IMAGE_TESTS=1 without podman)" >&2
	fi
fi

# kube-apiserver + etcd (scripts/kube-tools.sh) and spire-server +
# spire-agent (scripts/spire-tools.sh) are started first, in the background,
# beside the Go-installed tools below and the download of certwatch's own
# modules: on a cold machine much of each build is waiting on module
# downloads, which overlap with the others' compiling that way. Each script
# prints its folder on stdout, exported as CERTWATCH_KUBE_BIN /
# CERTWATCH_SPIRE_BIN, and its progress on stderr, shown once all have
# finished.
tool_names=()
for name in kube spire; do
	skip="CERTWATCH_SKIP_${name^^}_TESTS"
	if [ "${!skip:-}" != 1 ]; then
		tool_names+=("$name")
	fi
done
if [ "${#tool_names[@]}" -gt 0 ]; then
	step "integration components: ${tool_names[*]}, built in the background (minutes the first time)"
	tools_out="$(mktemp -d)"
	declare -A tool_pid
	for name in "${tool_names[@]}"; do
		"scripts/$name-tools.sh" >"$tools_out/$name.dir" 2>"$tools_out/$name.log" &
		tool_pid[$name]=$!
	done
fi
go mod download >/dev/null 2>&1 &
modules_pid=$!

# Go-built tools, each built once into a versioned folder and reused.
install_tool() { # folder binary package@version
	local dir="$TOOLS/$1"
	if [ ! -x "$dir/$2" ]; then
		mkdir -p "$dir"
		echo "building $2 once into $dir (minutes on a cold module cache)"
		GOFLAGS= GOBIN="$dir" go install "$3"
	fi
	export PATH="$dir:$PATH"
}
step "test tools: promtool and prometheus ${PROMETHEUS_VERSION}, amtool ${ALERTMANAGER_VERSION}, helm ${HELM_VERSION}"
install_tool "prometheus-${PROMETHEUS_VERSION}" promtool "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}"
install_tool "prometheus-${PROMETHEUS_VERSION}" prometheus "github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_VERSION}"
install_tool "alertmanager-${ALERTMANAGER_VERSION}" amtool "github.com/prometheus/alertmanager/cmd/amtool@${ALERTMANAGER_VERSION}"
install_tool "helm-${HELM_VERSION}" helm "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
promtool --version >/dev/null
wait "$modules_pid" || true # go vet below downloads what is still missing

if [ "${#tool_names[@]}" -gt 0 ]; then
	step "waiting for the integration components: ${tool_names[*]}"
	tools_failed=0
	for name in "${tool_names[@]}"; do
		var="CERTWATCH_${name^^}_BIN"
		if wait "${tool_pid[$name]}"; then
			export "$var=$(cat "$tools_out/$name.dir")"
			echo "$name: $var=${!var}"
		else
			echo "$name: scripts/$name-tools.sh failed" >&2
			tools_failed=1
		fi
		sed "s/^/  $name: /" "$tools_out/$name.log"
	done
	rm -rf "$tools_out"
	[ "$tools_failed" = 0 ] || exit 1
fi

step "gofmt and go vet"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.build/*'))"
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

# Other platforms: go vet type-checks packages and their tests for another
# platform (it compiles what they need), which catches what only one
# platform lacks, such as syscall.Stat_t or syscall.Mkfifo. The test run
# below covers linux/amd64. By default: windows/amd64 for every package (the
# !unix files, and the whole binary's build), and darwin/arm64 for the two
# packages with darwin-specific files (source/files' ctimespec file,
# internal/hostile), whose dependencies are a small part of the module: a
# platform's whole module costs about 5 minutes on a cold cache (a cold run
# measured 869 s for three), those two packages well under one.
# CERTWATCH_CROSS=all checks every package on all eight; CERTWATCH_SKIP_CROSS=1
# skips this.
if [ "${CERTWATCH_SKIP_CROSS:-}" != 1 ]; then
	declare -A cross_pkgs=([windows/amd64]="./..." [darwin/arm64]="./source/files/ ./internal/hostile/")
	platforms="windows/amd64 darwin/arm64"
	if [ "${CERTWATCH_CROSS:-}" = all ]; then
		platforms="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64 freebsd/arm64"
		for p in $platforms; do cross_pkgs[$p]="./..."; done
	fi
	step "go vet on other platforms: ${platforms}"
	cross_start=$SECONDS
	cross_failed=0
	for p in $platforms; do
		# shellcheck disable=SC2086 # a list of packages
		if out="$(GOOS="${p%/*}" GOARCH="${p#*/}" go vet ${cross_pkgs[$p]} 2>&1)"; then
			echo "ok   $p (${cross_pkgs[$p]})"
		else
			printf 'FAIL %s\n%s\n' "$p" "$out"
			cross_failed=1
		fi
	done
	echo "other platforms took $((SECONDS - cross_start))s"
	[ "$cross_failed" = 0 ] || exit 1
fi

step "go test -race ./..."
go test -race -count=1 -timeout 20m ./...

step "fuzzing the file parsers for ${FUZZTIME}"
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$FUZZTIME" -fuzzminimizetime=2s ./source/decode/
go test -run='^$' -fuzz='^FuzzJCEKS$' -fuzztime="$FUZZTIME" -fuzzminimizetime=2s ./source/decode/

step "all tests passed"
