#!/usr/bin/env bash
# benchmarks/loadgen/run.sh — is pqrelay-loadtest fast enough to measure a
# relay? It loads the bundled upstream with our loader and with wrk, in
# alternating rounds on the same machine and the same upstream process, and
# prints a markdown table of req/s, the loader's own CPU time per request
# (user + system, from /usr/bin/time), the upstream's CPU and the machine's
# idle time per request (from /proc), plus the ratio ours/wrk.
#
# Alternating rounds matter: on a shared 2-core box the loader and the
# upstream compete for the CPUs and the box's neighbours come and go, so
# numbers from separate runs compare nothing.
#
# Neither loader warms up (wrk cannot), both time out after 10 s, and a
# round in which either saw a failure voids the comparison.
#
# Each loader runs with its defaults on this machine: wrk with one thread
# per core, ours with --procs 0 (all cores).
#
# Env: ROUNDS (3), DURATION (10s), CONNS (100), SIZE (1KiB), THREADS (wrk
# threads, default: the number of cores), PROCS (our --procs, default 0).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-100}
SIZE=${SIZE:-1KiB}
THREADS=${THREADS:-$(nproc)}
PROCS=${PROCS:-0}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if ! command -v wrk >/dev/null; then
	echo "installing wrk" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
fi
if [ ! -x /usr/bin/time ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null
fi
if ! command -v jq >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y jq >/dev/null
fi

go build -o bin/pqrelay-loadtest ./cmd/pqrelay-loadtest

work=$(mktemp -d)
upstream_pid=
cleanup() {
	if [ -n "$upstream_pid" ]; then
		kill "$upstream_pid" 2>/dev/null || true
		wait "$upstream_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

./bin/pqrelay-loadtest upstream --port 0 --size "$SIZE" >"$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 100); do
	grep -q '^listening on ' "$work/upstream.out" && break
	sleep 0.05
done
url=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/upstream.out")
if [ -z "$url" ]; then
	echo "upstream did not start:" >&2
	cat "$work/upstream.out" >&2
	exit 1
fi
bytes=$(sed -n 's/.*(body \([0-9]*\) bytes.*/\1/p' "$work/upstream.out")

# wrk sends a body of the same length as ours.
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = string.rep("x", $bytes)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# cpu_us FILE REQUESTS: loader CPU microseconds per request.
cpu_us() {
	awk -v n="$2" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$1"
}

# The other two places a request's time goes, read from /proc around each
# run: the upstream's CPU (utime + stime) and the machine's idle time (idle
# + iowait over all cores), both in clock ticks. Idle time in a closed loop
# means every request was waiting on a wake-up somewhere.
hz=$(getconf CLK_TCK)
upstream_ticks() { awk '{ print $14 + $15 }' "/proc/$upstream_pid/stat"; }
idle_ticks() { awk '/^cpu / { print $5 + $6 }' /proc/stat; }
mark() { mark_up=$(upstream_ticks); mark_idle=$(idle_ticks); }
measured() { end_up=$(upstream_ticks); end_idle=$(idle_ticks); }
# per_req TICKS_NOW TICKS_THEN REQUESTS: microseconds per request.
per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$hz" 'BEGIN { printf "%.2f", (a - b) * 1e6 / hz / n }'; }

echo "| Round | Loader | Requests | Req/s | Loader CPU µs/req | Upstream CPU µs/req | Idle µs/req |"
echo "|---|---|---|---|---|---|---|"
ratios=()
ours_rps=() ours_cpu=() ours_up=() ours_idle=()
wrk_rps=() wrk_cpu=() wrk_up=() wrk_idle=()

# record SIDE LABEL REQUESTS RPS TIMEFILE: the run that just ended (between
# mark and measured) into SIDE's arrays (ours_* or wrk_*) and the table.
record() {
	local -n rps_of="$1_rps" cpu_of="$1_cpu" up_of="$1_up" idle_of="$1_idle"
	local req=$3
	rps_of+=("$4")
	cpu_of+=("$(cpu_us "$5" "$req")")
	up_of+=("$(per_req "$end_up" "$mark_up" "$req")")
	idle_of+=("$(per_req "$end_idle" "$mark_idle" "$req")")
	echo "| $round | $2 | $req | $4 | ${cpu_of[-1]} | ${up_of[-1]} | ${idle_of[-1]} |"
}

run_ours() {
	mark
	/usr/bin/time -f '%U %S' -o "$work/ours.time" \
		./bin/pqrelay-loadtest run --control "$url" -c "$CONNS" -d "$DURATION" --warmup 0s --timeout 10s --procs "$PROCS" \
		--size "$SIZE" --verify auto --quiet --json "$work/ours.json" >/dev/null
	measured
	local req rps failed
	req=$(jq '.tiers[0].control.requests' "$work/ours.json")
	rps=$(jq '.tiers[0].control.rps | floor' "$work/ours.json")
	failed=$(jq '.tiers[0].control | .errors + .timeouts + .non_2xx + .bad_body' "$work/ours.json")
	if [ "$failed" != 0 ]; then
		echo "our loader saw $failed failures; the comparison is void" >&2
		exit 1
	fi
	record ours pqrelay-loadtest "$req" "$rps" "$work/ours.time"
}

run_wrk() {
	mark
	/usr/bin/time -f '%U %S' -o "$work/wrk.time" \
		wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s -s "$work/post.lua" "$url/api/echo" >"$work/wrk.out"
	measured
	local req rps
	req=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
	rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$work/wrk.out")
	if grep -q 'Non-2xx\|Socket errors' "$work/wrk.out"; then
		echo "wrk saw errors; the comparison is void:" >&2
		cat "$work/wrk.out" >&2
		exit 1
	fi
	record wrk "wrk -t$THREADS" "$req" "$rps" "$work/wrk.time"
}

# Odd rounds run ours first, even rounds wrk first, so neither always
# inherits the other's aftermath (a warm upstream, a busy neighbour).
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then
		run_ours
		run_wrk
	else
		run_wrk
		run_ours
	fi
	ratios+=("$(awk -v o="${ours_rps[-1]}" -v w="${wrk_rps[-1]}" 'BEGIN { printf "%.3f", o / w }')")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
or=$(median "${ours_rps[@]}")
wr=$(median "${wrk_rps[@]}")
oc=$(median "${ours_cpu[@]}")
wc=$(median "${wrk_cpu[@]}")
echo
ou=$(median "${ours_up[@]}")
wu=$(median "${wrk_up[@]}")
oi=$(median "${ours_idle[@]}")
wi=$(median "${wrk_idle[@]}")
echo "| Median of $ROUNDS rounds | Req/s | Loader CPU µs/req | Upstream CPU µs/req | Idle µs/req |"
echo "|---|---|---|---|---|"
echo "| pqrelay-loadtest | $or | $oc | $ou | $oi |"
echo "| wrk -t$THREADS | $wr | $wc | $wu | $wi |"
awk -v o="$or" -v w="$wr" -v oc="$oc" -v wc="$wc" -v ou="$ou" -v wu="$wu" 'BEGIN {
	printf "| ours / wrk | %.3f | %.2f | %.2f | |\n", o / w, oc / wc, ou / wu
}'
echo
# The fairer ratio: each round's two runs saw the same neighbours.
echo "Per-round req/s ratio ours/wrk: ${ratios[*]}; median $(median "${ratios[@]}")."
echo
echo "$CONNS connections, $SIZE request and response bodies, $DURATION per run, $(nproc) cores shared by loader and upstream ($(uname -m), $(go env GOVERSION), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'))."
