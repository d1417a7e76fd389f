#!/usr/bin/env bash
# Runs certwatch's performance harness (bench/, see bench/README.md) and
# prints every figure beside its floor measured in the same run, the ratio,
# and PASS/FAIL against the targets, as one Markdown table.
#
#   scripts/bench.sh          full run: 1k/10k/100k files, 100/1,000 endpoints,
#                             10,000 Secrets, 1,000 hostile scrapes (~20 min on 2 cores),
#                             then the soak: 1,000 scrapes of the real binary against
#                             hostile servers and files, 2 s apart at most (~25 min more)
#   scripts/bench.sh quick    smaller sizes (~4 min): 1k/10k files, 100 endpoints,
#                             1,000 Secrets, 200 hostile scrapes, 100 soak scrapes (~3 min more)
#
# Environment:
#   CERTWATCH_BENCH_RUNS=5          repetitions of every timed measurement (medians reported)
#   CERTWATCH_BENCH_OUT=DIR         where results, profiles and the report go
#                                   (default .build/bench/<date-time>)
#   CERTWATCH_BENCH_CACHE=DIR       generated certificates kept between runs
#                                   (default ~/.cache/certwatch/bench)
#   CERTWATCH_BENCH_PROFILE=0       skip the pprof profiles of the exporter
#   CERTWATCH_SKIP_KUBE_TESTS=1     skip the Kubernetes figure (no kube-apiserver/etcd)
#   CERTWATCH_SKIP_PEERS=1          skip the side-by-side figure (bench peers)
#
# The machine should be otherwise idle: figures are CPU-bound, and floors are
# interleaved with the exporter's runs so that noise hits both alike.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-full}"
case "$MODE" in
full)
	FILES=1000,10000,100000 ENDPOINTS=100,1000 SECRETS=10000 SCRAPES=1000 SOAK=1000 ;;
quick)
	FILES=1000,10000 ENDPOINTS=100 SECRETS=1000 SCRAPES=200 SOAK=100 ;;
*)
	echo "usage: $0 [quick]" >&2
	exit 2 ;;
esac
RUNS="${CERTWATCH_BENCH_RUNS:-5}"
OUT="${CERTWATCH_BENCH_OUT:-.build/bench/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PROFILE=()
if [ "${CERTWATCH_BENCH_PROFILE:-1}" != 0 ]; then
	PROFILE=(-profile "$OUT/profiles")
fi

step() { printf '\n==> %s\n' "$*" >&2; }
start=$SECONDS

step "building the harness and the exporter (as make build does)"
export GOFLAGS="${GOFLAGS:-}" GOWORK=off
go build -o "$OUT/bench" ./bench
CGO_ENABLED=0 go build -trimpath -o "$OUT/certwatch" .

COMMON=(-runs "$RUNS" -results "$OUT" "${PROFILE[@]}")
if [ -n "${CERTWATCH_BENCH_CACHE:-}" ]; then
	COMMON+=(-cache "$CERTWATCH_BENCH_CACHE")
fi

figure() { # name args...
	local name="$1" t=$SECONDS
	shift
	step "figure: $name"
	"$OUT/bench" "$name" "$@" 2>&1 | tee -a "$OUT/bench.log"
	echo "($name took $((SECONDS - t)) s)" | tee -a "$OUT/bench.log" >&2
}

figure files -sizes "$FILES" "${COMMON[@]}"
figure endpoints -sizes "$ENDPOINTS" -certwatch "$OUT/certwatch" "${COMMON[@]}"
figure exposition -certs 10000 "${COMMON[@]}"
if [ "${CERTWATCH_SKIP_KUBE_TESTS:-}" = 1 ]; then
	step "figure: kube skipped (CERTWATCH_SKIP_KUBE_TESTS=1)"
else
	CERTWATCH_KUBE_BIN="$(scripts/kube-tools.sh)"
	export CERTWATCH_KUBE_BIN
	figure kube -secrets "$SECRETS" "${COMMON[@]}"
fi
figure growth -scrapes "$SCRAPES" "${COMMON[@]}"
figure soak -scrapes "$SOAK" -certwatch "$OUT/certwatch" "${COMMON[@]}"
# Side by side with the exporters users run today, when their binaries are
# in the tool cache or their sources where scripts/peers.sh looks for them
# (CERTWATCH_SKIP_PEERS=1 skips it). Its table is printed with the figure.
if [ "${CERTWATCH_SKIP_PEERS:-}" = 1 ]; then
	step "figure: peers skipped (CERTWATCH_SKIP_PEERS=1)"
elif scripts/peers.sh | awk '$3 == "-" { missing = 1 } END { exit missing }'; then
	PEER_SIZES=(-files "$FILES" -endpoints "$ENDPOINTS" -kube-secrets "$SECRETS")
	figure peers "${PEER_SIZES[@]}" -certwatch "$OUT/certwatch" "${COMMON[@]}"
else
	step "figure: peers skipped: a peer exporter could not be built (see scripts/peers.sh and bench/README.md)"
fi

step "report ($MODE run, $RUNS runs per measurement, $((SECONDS - start)) s in all)"
"$OUT/bench" report -results "$OUT" | tee "$OUT/report.md"
echo >&2
echo "results, log and profiles: $OUT (report.md is the table above)" >&2
