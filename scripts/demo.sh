#!/usr/bin/env bash
# scripts/demo.sh (make demo) — pqrelay against its control API, on this
# machine, in about two and a half minutes.
#
#   app (pqrelay-loadtest) ──▶ relay A ══ sealed ══▶ relay B ──▶ upstream
#   app (pqrelay-loadtest) ─────────────────────────────────────▶ upstream
#
# Builds bin/pqrelay and bin/pqrelay-loadtest, starts the bundled upstream
# (the control API), relay B (inbound, UPSTREAM = the upstream) and relay A
# (outbound), all on free loopback ports, waits until each answers, then
# loads the control API and the relay pair tier by tier with the same
# requests and prints the comparison tables. Writes demo-results.json and
# demo-report.html in the repository root. Every process it started is
# stopped by PID on exit, failure and Ctrl-C alike.
#
# Env: DURATION (10s per side and tier), WARMUP (2s), SIZE (1KiB request
# and response), CONNS (100,200,250,300), RATE (0: closed loop).
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-1KiB}
CONNS=${CONNS:-100,200,250,300}
RATE=${RATE:-0}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init demo

say "building bin/pqrelay and bin/pqrelay-loadtest"
mkdir -p bin
go build -o bin/pqrelay ./cmd/pqrelay
go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest

up_port=$(free_port)
b_port=$(free_port)
a_port=$(free_port)
upstream=http://127.0.0.1:$up_port
relay_b=http://127.0.0.1:$b_port
relay_a=http://127.0.0.1:$a_port

# Fresh secrets for every demo: they exist only in these processes.
secret=$(random_hex 32)
token=$(random_hex 24)

start upstream ./bin/pqrelay-loadtest upstream --port "$up_port" --size "$SIZE"
wait_http upstream "$upstream/"

start relay-b env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ./bin/pqrelay
wait_http "relay B" "$relay_b/api/mte-echo"

# Relay A is the outbound side; its UPSTREAM is required but unused there.
start relay-a env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="$relay_b" ./bin/pqrelay
wait_http "relay A" "$relay_a/api/mte-echo"

# The token goes to the loader in a file: on its command line any user of
# the machine could read it in ps.
(umask 077 && echo "x-mte-outbound-token: $token" >"$work/relay-token")

say "loading $CONNS connections, $DURATION each side after a $WARMUP warm-up, $SIZE bodies"
# The loader runs in the background and the script waits for it: bash
# runs a trap only between commands, and "wait" is the one command a
# signal interrupts, so SIGTERM stops the demo at once, not after the run.
./bin/pqrelay-loadtest run \
	--control "$upstream" \
	--relay "$relay_a" \
	--relay-header "x-mte-upstream: $relay_b" \
	--relay-header "@$work/relay-token" \
	-c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --rate "$RATE" \
	--size "$SIZE" --verify auto \
	--json demo-results.json --html demo-report.html &
servers+=("$!")
loader=$!
status=0
wait "$loader" || status=$?
if [ "$status" != 0 ]; then
	say "the load test failed (exit $status)"
	exit "$status"
fi

finished=1
say "wrote $root/demo-results.json and $root/demo-report.html"
