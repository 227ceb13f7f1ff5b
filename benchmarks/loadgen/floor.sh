#!/usr/bin/env bash
# benchmarks/loadgen/floor.sh — how little CPU per request can any loader
# spend in the users shape on this machine? It runs, in alternating order
# each round, against the same two bundled upstreams (one at --delay 50ms
# for users, one instant for the closed loop):
#
#   ours users     pqrelay-loadtest, USERS users thinking 1 s
#   floor users    floor.c, the same users, one thread, no runtime
#   floor users10  floor.c, sends batched on 10 ms ticks
#   gofloor users  gofloor (floor.c's design in Go: one goroutine, raw epoll)
#   wrk users      wrk -t1 with a Lua delay() of 0.5-1.5 s (its only think time)
#   ours jitter    pqrelay-loadtest, think 1 s ± 0.5 s (the shape wrk can do)
#   ours closed    pqrelay-loadtest, closed loop, 100 connections
#   floor closed   floor.c, closed loop, 100 connections
#   floor closed10k  floor.c, closed loop, USERS connections
#
# Every figure is CPU of the measured phase only (after ramp and warm-up):
# our loader's is its own (getrusage around the phase), split into user
# and system by /proc/PID/stat over the phase less 0.5 s at each end;
# floor.c's and gofloor's from their own getrusage around it. wrk has no
# warm-up and reports only a total, so its phase is a window of the run,
# its CPU from /proc/PID/stat and its requests from the upstream side's
# socket counters (ss bytes_received over the window / request length).
#
# Env: ROUNDS (3), USERS (10000), DURATION (6, seconds).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
USERS=${USERS:-10000}
DURATION=${DURATION:-6}
RAMP=2
WARMUP=1

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/lib.sh
lib_init floor
for dep in wrk:wrk jq:jq cc:gcc ss:iproute2; do
	command -v "${dep%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y "${dep#*:}" >/dev/null
done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((USERS + 500)) ]; then
	ulimit -n $((USERS + 1000)) || die "ulimit -n $(ulimit -n) is too low for $USERS users"
fi

go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest
cc -O2 -o "$work/floor" benchmarks/loadgen/floor.c -lpthread
(cd benchmarks/loadgen/gofloor && go build -o "$work/gofloor" .)
slow_port=$(free_port)
fast_port=$(free_port)
start slow ./bin/pqrelay-loadtest upstream --port "$slow_port" --delay 50ms
start fast ./bin/pqrelay-loadtest upstream --port "$fast_port"
wait_http "upstream (50 ms)" "http://127.0.0.1:$slow_port/"
wait_http "upstream (instant)" "http://127.0.0.1:$fast_port/"

hz=$(getconf CLK_TCK)
# ticks PID: "utime stime" of a process, in clock ticks.
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
# us T0 T1 N: "user sys total" µs per request between two ticks samples.
us() {
	awk -v a="$1" -v b="$2" -v n="$3" -v hz="$hz" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		u = (y[1] - x[1]) * 1e6 / hz / n; s = (y[2] - x[2]) * 1e6 / hz / n
		printf "%.2f %.2f %.2f", u, s, u + s }'
}

# ours NAME PORT ARGS...: one pqrelay-loadtest run, user/sys sampled
# around its measured phase.
ours() {
	local name=$1 port=$2 lead=$3
	shift 3
	./bin/pqrelay-loadtest run --quiet -d "${DURATION}s" --json "$work/$name.json" \
		--control "http://127.0.0.1:$port" "$@" >/dev/null 2>"$work/$name.err" &
	local pid=$!
	sleep "$lead.5"
	local t0 t1
	t0=$(ticks "$pid" 2>/dev/null || true)
	sleep "$((DURATION - 1))"
	t1=$(ticks "$pid" 2>/dev/null || true)
	wait "$pid" || die "$name: pqrelay-loadtest failed: $(tail -n 3 "$work/$name.err")"
	[ -n "$t0" ] && [ -n "$t1" ] || die "$name: pqrelay-loadtest ended before its measured phase should have"
	local req failed own
	req=$(jq '.tiers[0].control.requests' "$work/$name.json")
	failed=$(jq '.tiers[0].control | .errors + .timeouts + .non_2xx + .bad_body' "$work/$name.json")
	local note="(user/system split from /proc)"
	# On a crowded machine a starved upstream can time a few users out;
	# the row stays, marked, since its CPU is still per answered request.
	[ "$failed" = 0 ] || note="$failed failed (timeouts?), CPU per successful request"
	own=$(jq -r '.tiers[0].control | .cpu.loader_s / .requests * 1e6' "$work/$name.json")
	# The loader's own figure covers the measured phase exactly; the
	# /proc window, 0.5 s inside it at both ends, only splits it.
	row "$name" "$req" $(awk -v a="$t0" -v b="$t1" -v own="$own" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		u = y[1] - x[1]; s = y[2] - x[2]
		printf "%.2f %.2f %.2f", own * u / (u + s), own * s / (u + s), own }') "$note"
}

# floor NAME ARGS...: one floor.c run.
floor() {
	local name=$1 line
	shift
	line=$("$work/floor" "$@")
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	row "$name" "$(get requests)" "$(get user_us)" "$(get sys_us)" "$(get cpu_us)" "$(get epoll_waits) epoll_pwait, $(get vol_csw) context switches per request"
}

# wrk_users: wrk with 10,000 users, CPU and requests over a window.
upstream_bytes() { ss -tinH state established "( sport = :$slow_port )" | { grep -o 'bytes_received:[0-9]*' || true; } | awk -F: '{ s += $2 } END { print s + 0 }'; }
wrk_users() {
	wrk -t1 -c"$USERS" -d"$((RAMP + WARMUP + DURATION + 2))s" --timeout 10s -s "$work/delay.lua" \
		"http://127.0.0.1:$slow_port/api/echo" >"$work/wrk.out" 2>&1 &
	local pid=$!
	sleep $((RAMP + WARMUP))
	local t0 t1 b0 b1
	t0=$(ticks "$pid" 2>/dev/null || true)
	b0=$(upstream_bytes)
	sleep "$DURATION"
	t1=$(ticks "$pid" 2>/dev/null || true)
	b1=$(upstream_bytes)
	wait "$pid" || true
	local req=$(((b1 - b0) / wrk_request_bytes))
	# A wrk run with errors, or whose sockets were replaced during the
	# window (the byte counters then shrink), is shown as void and the
	# series goes on: wrk is the reference here, not the subject.
	if [ -z "$t0" ] || [ -z "$t1" ] || [ "$req" -le 0 ] || grep -q 'Non-2xx\|Socket errors' "$work/wrk.out"; then
		row "wrk users" "$req" - - - "void: $(grep -h 'requests in\|Socket errors\|Non-2xx' "$work/wrk.out" | tr -s ' \n' ' ')"
		return
	fi
	row "wrk users" "$req" $(us "$t0" "$t1" "$req") "requests from the upstream's socket counters"
}
cat >"$work/delay.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
function delay() return math.random(500, 1500) end
EOF
# The request wrk.format builds from the script above: request line, Host,
# Content-Type, Content-Length (added for the body), blank line, body.
wrk_request_bytes=$((${#slow_port} + 25 + 18 + 40 + 22 + 2 + 1024))

row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$round" "$1" "$2" "$3" "$4" "$5" "$6"; }

echo "| Round | Run | Requests | User µs/req | System µs/req | CPU µs/req | Note |"
echo "|---|---|---|---|---|---|---|"
runs=(ours_users floor_users floor_users10 gofloor_users wrk_users ours_jitter ours_closed floor_closed floor_closed10k)
for round in $(seq "$ROUNDS"); do
	order=("${runs[@]}")
	if [ $((round % 2)) = 0 ]; then
		order=()
		for ((i = ${#runs[@]} - 1; i >= 0; i--)); do order+=("${runs[$i]}"); done
	fi
	for r in "${order[@]}"; do
		case $r in
		ours_users) ours "ours users" "$slow_port" $((RAMP + WARMUP)) -c "$USERS" --think 1s --ramp "${RAMP}s" --warmup "${WARMUP}s" ;;
		ours_jitter) ours "ours jitter" "$slow_port" $((RAMP + WARMUP)) -c "$USERS" --think 1s --think-jitter 500ms --ramp "${RAMP}s" --warmup "${WARMUP}s" ;;
		ours_closed) ours "ours closed 100" "$fast_port" "$WARMUP" -c 100 --warmup "${WARMUP}s" ;;
		floor_users) floor "floor users" "$slow_port" "$USERS" 1000 "$RAMP" "$WARMUP" "$DURATION" 1 0 ;;
		floor_users10) floor "floor users, 10 ms ticks" "$slow_port" "$USERS" 1000 "$RAMP" "$WARMUP" "$DURATION" 1 10 ;;
		floor_closed) floor "floor closed 100" "$fast_port" 100 0 0 "$WARMUP" "$DURATION" 1 0 ;;
		floor_closed10k) floor "floor closed $USERS" "$fast_port" "$USERS" 0 0 "$WARMUP" "$DURATION" 1 0 ;;
		gofloor_users)
			line=$("$work/gofloor" "$slow_port" "$USERS" 1000 "$RAMP" "$WARMUP" "$DURATION" 1 0)
			get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
			row "gofloor users" "$(get requests)" "$(get user_us)" "$(get sys_us)" "$(get cpu_us)" "$(get epoll_waits) epoll_pwait per request"
			;;
		wrk_users) wrk_users ;;
		esac
	done
done
echo
echo "$USERS users thinking 1 s against a 50 ms upstream; closed: instant upstream. ${DURATION} s measured per run."
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs."
finished=1
