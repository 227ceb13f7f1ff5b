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

logs=$(mktemp -d)
pids=()
names=()
failed=1

cleanup() {
	local i
	for i in "${!pids[@]}"; do
		kill "${pids[$i]}" 2>/dev/null || true
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" 2>/dev/null || true
	done
	if [ "$failed" = 1 ]; then
		# Show what the processes said; the failure is usually there.
		for i in "${!names[@]}"; do
			if [ -s "$logs/${names[$i]}.log" ]; then
				echo "--- ${names[$i]} (last lines) ---" >&2
				tail -n 20 "$logs/${names[$i]}.log" >&2
			fi
		done
	fi
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "demo: $*" >&2; }

# start NAME CMD...: runs CMD in the background with its output in a log,
# and remembers its PID for cleanup.
start() {
	local name=$1
	shift
	"$@" >"$logs/$name.log" 2>&1 &
	pids+=("$!")
	names+=("$name")
}

# free_port: a loopback port nobody listens on now and that this script
# has not handed out yet.
taken=" "
free_port() {
	local port
	for _ in $(seq 200); do
		port=$((20000 + RANDOM % 40000))
		case $taken in *" $port "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			taken="$taken$port "
			echo "$port"
			return
		fi
	done
	say "no free loopback port found"
	return 1
}

# wait_http NAME URL: polls URL until it answers 2xx, for up to 15 s, and
# gives up early if the process died.
wait_http() {
	local name=$1 url=$2 pid=${pids[${#pids[@]} - 1]}
	for _ in $(seq 150); do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited before it answered"
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			say "$name is up ($url)"
			return
		fi
		sleep 0.1
	done
	say "$name did not answer $url within 15s"
	return 1
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

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
	PORT="$b_port" LISTEN_ADDR=127.0.0.1 ./bin/pqrelay
wait_http "relay B" "$relay_b/api/mte-echo"

# Relay A is the outbound side; its UPSTREAM is required but unused there.
start relay-a env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$a_port" LISTEN_ADDR=127.0.0.1 ALLOWED_PEERS="$relay_b" ./bin/pqrelay
wait_http "relay A" "$relay_a/api/mte-echo"

say "loading $CONNS connections, $DURATION each side after a $WARMUP warm-up, $SIZE bodies"
# The loader runs in the background and the script waits for it: bash
# runs a trap only between commands, and "wait" is the one command a
# signal interrupts, so SIGTERM stops the demo at once, not after the run.
./bin/pqrelay-loadtest run \
	--control "$upstream" \
	--relay "$relay_a" \
	--relay-header "x-mte-upstream: $relay_b" \
	--relay-header "x-mte-outbound-token: $token" \
	-c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --rate "$RATE" \
	--size "$SIZE" --verify auto \
	--json demo-results.json --html demo-report.html &
pids+=("$!")
names+=(loadtest)
loader=$!
status=0
wait "$loader" || status=$?
if [ "$status" != 0 ]; then
	say "the load test failed (exit $status)"
	exit "$status"
fi

failed=0
say "wrote $root/demo-results.json and $root/demo-report.html"
