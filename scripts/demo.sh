#!/usr/bin/env bash
# scripts/demo.sh (make demo) — pqrelay in the reference product's own test
# and in a cost view, on this machine, in under three minutes.
#
#   users (pqrelay-loadtest) ──▶ relay A ══ sealed ══▶ relay B ──▶ API (50 ms)
#   users (pqrelay-loadtest) ────────────────────────────────────▶ API (50 ms)
#   loader, closed loop      ──▶ relay A ══ sealed ══▶ relay B' ─▶ API (instant)
#   loader, closed loop      ────────────────────────────────────▶ API (instant)
#
# Builds bin/pqrelay and bin/pqrelay-loadtest and starts, on free loopback
# ports: two bundled APIs (one answering after 50 ms, one at once), a
# relay B in front of each, and relay A. Then:
#   1. the reference product's test shape: users who send a 1 KiB request,
#      wait for the answer and think 1 s, at 100, 200, 250, 300, 1,000 and
#      10,000 users, straight to the 50 ms API and through the pair;
#   2. the cost view: closed loop against the instant API at 100, 200 and
#      300 connections, with the CPU of the API and of both relays read
#      from /proc.
# Prints both views and writes demo-report.html, demo-users.json and
# demo-cost.json in the repository root. Every process it started is
# stopped by PID on exit, failure and Ctrl-C alike.
#
# Env: DURATION (5s measured per side and tier), USERS
# (100,200,250,300,1000,10000), THINK (1s), RAMP (2s), WARMUP (1s),
# CONNS (100,200,300, the cost view), SIZE (1KiB request and response),
# DELAY (50ms, the API's service time in the users view).
set -euo pipefail

DURATION=${DURATION:-5s}
USERS=${USERS:-100,200,250,300,1000,10000}
THINK=${THINK:-1s}
RAMP=${RAMP:-2s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-100,200,300}
SIZE=${SIZE:-1KiB}
DELAY=${DELAY:-50ms}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init demo

# 10,000 users are 10,000 sockets in the loader and in relay A.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10500 ]; then
	ulimit -n 20000 2>/dev/null || say "ulimit -n is $(ulimit -n): the 10,000-user tier may fail to connect"
fi

say "building bin/pqrelay and bin/pqrelay-loadtest"
mkdir -p bin
go build -o bin/pqrelay ./cmd/pqrelay
go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest

api_port=$(free_port)
fast_port=$(free_port)
b_port=$(free_port)
bfast_port=$(free_port)
a_port=$(free_port)
api=http://127.0.0.1:$api_port
fast_api=http://127.0.0.1:$fast_port
relay_b=http://127.0.0.1:$b_port
relay_bfast=http://127.0.0.1:$bfast_port
relay_a=http://127.0.0.1:$a_port

# go build records no commit in a git worktree; name it for the report.
commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

# Fresh secrets for every demo: they exist only in these processes.
secret=$(random_hex 32)
token=$(random_hex 24)

start api ./bin/pqrelay-loadtest upstream --port "$api_port" --size "$SIZE" --delay "$DELAY"
api_pid=$!
wait_http "API ($DELAY)" "$api/"
start fast-api ./bin/pqrelay-loadtest upstream --port "$fast_port" --size "$SIZE"
fast_pid=$!
wait_http "API (instant)" "$fast_api/"

start relay-b env UPSTREAM="$api" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ./bin/pqrelay
b_pid=$!
wait_http "relay B" "$relay_b/api/mte-echo"
start relay-b-fast env UPSTREAM="$fast_api" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$bfast_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ./bin/pqrelay
bfast_pid=$!
wait_http "relay B'" "$relay_bfast/api/mte-echo"

# Relay A is the outbound side; its UPSTREAM is required but unused there.
start relay-a env UPSTREAM="$api" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="$relay_b,$relay_bfast" ./bin/pqrelay
a_pid=$!
wait_http "relay A" "$relay_a/api/mte-echo"

# The token goes to the loader in a file: on its command line any user of
# the machine could read it in ps.
(umask 077 && echo "x-mte-outbound-token: $token" >"$work/relay-token")

# load NAME ARGS...: one loader run in the background, waited for, so that
# SIGTERM stops the demo at once (bash runs a trap only between commands,
# and "wait" is the one command a signal interrupts). Its tables go to
# $work/NAME.md; progress stays on the terminal.
load() {
	local name=$1 status=0
	shift
	./bin/pqrelay-loadtest run --relay-header "@$work/relay-token" --size "$SIZE" --verify auto --commit "$commit" \
		--warmup "$WARMUP" -d "$DURATION" "$@" >"$work/$name.md" &
	servers+=("$!")
	wait "$!" || status=$?
	if [ "$status" != 0 ]; then
		cat "$work/$name.md" >&2
		say "the $name run failed (exit $status)"
		exit "$status"
	fi
}

say "1/2 users: $USERS users thinking $THINK, API at $DELAY; $RAMP ramp, $WARMUP warm-up, $DURATION measured per side"
load users --control "$api" --relay "$relay_a" --relay-header "x-mte-upstream: $relay_b" \
	--control-pid "$api_pid" --relay-pid "$a_pid,$b_pid" \
	-c "$USERS" --think "$THINK" --ramp "$RAMP" --timeout 10s --json demo-users.json

say "2/2 cost: closed loop at $CONNS connections, instant API; $WARMUP warm-up, $DURATION measured per side"
load cost --control "$fast_api" --relay "$relay_a" --relay-header "x-mte-upstream: $relay_bfast" \
	--control-pid "$fast_pid" --relay-pid "$a_pid,$bfast_pid" \
	-c "$CONNS" --json demo-cost.json

echo
./bin/pqrelay-loadtest report --users demo-users.json --cost demo-cost.json --html demo-report.html
echo
finished=1
say "wrote $root/demo-report.html ($root/demo-users.json, $root/demo-cost.json hold every number)"
