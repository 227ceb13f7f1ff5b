#!/usr/bin/env bash
# benchmarks/loadgen/users.sh — can the loader hold 10,000 users on this
# machine? It starts the bundled upstream at --delay 50ms and runs a users
# tier (1 s think time) against it, then, in the same run, a closed-loop
# tier against an instant upstream at 100 connections for comparison. It
# prints the loader's peak RSS and its CPU per request in both, and fails
# (exit 1) if the users tier had a failure or the loader's RSS went over
# MAX_RSS_MIB.
#
# Env: USERS (10000), DURATION (10s), RAMP (3s), MAX_RSS_MIB (300).
set -euo pipefail

USERS=${USERS:-10000}
DURATION=${DURATION:-10s}
RAMP=${RAMP:-3s}
MAX_RSS_MIB=${MAX_RSS_MIB:-300}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/lib.sh
lib_init users
if ! command -v jq >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y jq >/dev/null
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((USERS + 500)) ]; then
	ulimit -n $((USERS + 1000)) || die "ulimit -n $(ulimit -n) is too low for $USERS users"
fi

go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest
slow_port=$(free_port)
fast_port=$(free_port)
start slow ./bin/pqrelay-loadtest upstream --port "$slow_port" --delay 50ms
slow_pid=$!
start fast ./bin/pqrelay-loadtest upstream --port "$fast_port"
fast_pid=$!
wait_http "upstream (50 ms)" "http://127.0.0.1:$slow_port/"
wait_http "upstream (instant)" "http://127.0.0.1:$fast_port/"

# run NAME ARGS...: one loader run; its RSS line goes to $work/NAME.err.
run() {
	local name=$1
	shift
	./bin/pqrelay-loadtest run --quiet --warmup 1s -d "$DURATION" --json "$work/$name.json" "$@" \
		>"$work/$name.md" 2>"$work/$name.err" &
	servers+=("$!")
	wait "$!" || true
}
run users --control "http://127.0.0.1:$slow_port" --control-pid "$slow_pid" -c "$USERS" --think 1s --ramp "$RAMP"
run closed --control "http://127.0.0.1:$fast_port" --control-pid "$fast_pid" -c 100

rss() { sed -n 's/.*peak RSS was \([0-9,]*\) MiB.*/\1/p' "$work/$1.err" | tr -d ,; }
per_req() { jq -r '.tiers[0].control | if .cpu and .requests > 0 then (.cpu.loader_s / .requests * 1e6 * 10 | round / 10 | tostring) else "n/a" end' "$work/$1.json"; }
field() { jq -r ".tiers[0].control.$2" "$work/$1.json"; }

users_rss=$(rss users)
echo "| run | requests | req/s | failed | p50 ms | p99 ms | loader CPU µs/request | loader peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for r in users closed; do
	failed=$(jq -r '.tiers[0].control | .errors + .timeouts + .non_2xx + .bad_body' "$work/$r.json")
	echo "| $r | $(field "$r" requests) | $(field "$r" rps | cut -d. -f1) | $failed | $(field "$r" p50_ms) | $(field "$r" p99_ms) | $(per_req "$r") | $(rss "$r") |"
done
echo
echo "users: $USERS users thinking 1 s against a 50 ms upstream; closed: 100 connections, instant upstream."
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs."
finished=1

failed=$(jq -r '.tiers[0].control | .errors + .timeouts + .non_2xx + .bad_body' "$work/users.json")
if [ "$failed" != 0 ]; then
	die "$failed requests failed with $USERS users"
fi
if [ -z "$users_rss" ] || [ "$users_rss" -gt "$MAX_RSS_MIB" ]; then
	die "the loader's peak RSS with $USERS users was ${users_rss:-unknown} MiB, over $MAX_RSS_MIB MiB"
fi
