#!/usr/bin/env bash
# benchmarks/metrics/run.sh — what recording metrics costs the relay pair:
# two pairs of the same binary in front of one upstream, one with
# METRICS_PORT=0 (metrics.Nop) and one with metrics served and scraped,
# loaded in alternation with the bundled loader. For each round it reads
# the CPU time of the pair's two processes (utime + stime, /proc/<pid>/stat)
# from just before to just after the loader and divides by the requests the
# loader completed; the ratio of the sums is the cost of metrics.
#
#   loader ──▶ relay A (off) ══▶ relay B (off) ──▶ upstream
#   loader ──▶ relay A (on)  ══▶ relay B (on)  ──▶ upstream   (+ a scrape of both every SCRAPE)
#
# Writes benchmarks/metrics/results-<UTC date-time>.md. Every process it
# starts is stopped by PID on exit, failure and Ctrl-C alike.
#
# Env:
#   ROUNDS    loader runs per side, alternating which side goes first (6)
#   DURATION  measured time per run (10s)
#   CONNS     connections (100)
#   SIZE      request and response body (1KiB)
#   SCRAPE    pause between scrapes of the metrics side (1s: 15x Prometheus's default rate)
set -euo pipefail

ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-100}
SIZE=${SIZE:-1KiB}
SCRAPE=${SCRAPE:-1}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init metrics

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS must be one positive number"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

say "building bin/pqrelay and bin/pqrelay-loadtest"
go build -o bin/pqrelay ./cmd/pqrelay
go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest

secret=$(random_hex 32)
token=$(random_hex 24)
up_port=$(free_port)
upstream=http://127.0.0.1:$up_port
start upstream ./bin/pqrelay-loadtest upstream --port "$up_port" --size "$SIZE"
wait_http upstream "$upstream/"

declare -A pid_a pid_b url_a url_b
for side in off on; do
	b_port=$(free_port) a_port=$(free_port) mb=0 ma=0
	if [ "$side" = on ]; then mb=$(free_port) ma=$(free_port); fi
	url_b[$side]=http://127.0.0.1:$b_port
	url_a[$side]=http://127.0.0.1:$a_port
	start "relay-b-$side" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT="$mb" ./bin/pqrelay
	wait_http "relay B ($side)" "${url_b[$side]}/api/mte-echo"
	pid_b[$side]=${servers[-1]}
	start "relay-a-$side" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT="$ma" ALLOWED_PEERS="${url_b[$side]}" ./bin/pqrelay
	wait_http "relay A ($side)" "${url_a[$side]}/api/mte-echo"
	pid_a[$side]=${servers[-1]}
	if [ "$side" = on ]; then
		metrics_urls="http://127.0.0.1:$ma/metrics http://127.0.0.1:$mb/metrics"
		# shellcheck disable=SC2086
		start scraper bash -c "while :; do curl -fsS -o /dev/null --max-time 2 $metrics_urls; sleep $SCRAPE; done"
	fi
done

printf '%s\n' "x-mte-upstream: ${url_b[off]}" "x-mte-outbound-token: $token" >"$work/headers-off"
printf '%s\n' "x-mte-upstream: ${url_b[on]}" "x-mte-outbound-token: $token" >"$work/headers-on"
chmod 600 "$work"/headers-*

# pair_ticks SIDE: utime + stime of the side's two relays, in clock ticks.
pair_ticks() {
	local total=0 pid line rest fields
	for pid in "${pid_a[$1]}" "${pid_b[$1]}"; do
		read -r line <"/proc/$pid/stat" || die "relay $pid is gone"
		rest=${line##*) }
		read -r -a fields <<<"$rest"
		total=$((total + fields[11] + fields[12]))
	done
	echo "$total"
}

clk=$(getconf CLK_TCK)
rows=$work/rows.tsv
: >"$rows"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order="off on"; else order="on off"; fi
	for side in $order; do
		say "round $round: metrics $side"
		t0=$(pair_ticks "$side")
		./bin/pqrelay-loadtest run --control "${url_a[$side]}" --header @"$work/headers-$side" \
			-c "$CONNS" -d "$DURATION" --warmup 0s --size "$SIZE" --verify auto \
			--json "$work/run.json" >/dev/null 2>"$work/run.err" || { cat "$work/run.err" >&2; die "loader failed"; }
		t1=$(pair_ticks "$side")
		jq -r --arg side "$side" --arg round "$round" --arg ticks "$((t1 - t0))" \
			'.tiers[0].control | [$round, $side, .requests, .errors, $ticks] | @tsv' "$work/run.json" >>"$rows"
	done
done

stamp=$(date -u +%Y-%m-%d-%H%M)
results=$here/results-$stamp.md
{
	echo "# Metrics on vs off — $started"
	echo
	echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS SIZE=$SIZE SCRAPE=$SCRAPE benchmarks/metrics/run.sh\`"
	echo "at $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| round | metrics | requests | errors | pair CPU µs / request |"
	echo "|---|---|---|---|---|"
	awk -F'\t' -v clk="$clk" '{ printf "| %s | %s | %d | %d | %.1f |\n", $1, $2, $3, $4, $5 * 1e6 / clk / $3 }' "$rows"
	echo
	awk -F'\t' -v clk="$clk" '
		{ req[$2] += $3; ticks[$2] += $5 }
		END {
			on = ticks["on"] * 1e6 / clk / req["on"]; off = ticks["off"] * 1e6 / clk / req["off"]
			printf "All rounds: %.1f µs per request with metrics, %.1f without: **%.3fx**.\n", on, off, on / off
		}' "$rows"
} >"$results"
cat "$results"
finished=1
