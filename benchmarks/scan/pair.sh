#!/usr/bin/env bash
# benchmarks/scan/pair.sh — what JSON protection costs the pair end to end:
# 64 KiB JSON requests (the api shape of internal/jsonshape) through two
# relay pairs side by side, one with the JSON_MAX_* limits README.md
# recommends and one without, in alternating rounds of wrk against the same
# bundled upstream. While each round runs, it reads the CPU time (utime +
# stime, /proc/<pid>/stat) of that pair's two relays and prints CPU µs per
# request for each round and the ratio on/off of their medians.
#
# Env: ROUNDS (4), DURATION (8s per round and side), CONNS (32),
# SIZE (65536, request body bytes). Every process it starts is stopped by
# PID on exit.
set -euo pipefail
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
SIZE=${SIZE:-65536}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. scripts/lib.sh
lib_init scan-pair

go build -o "$work/" ./cmd/pqrelay ./cmd/pqrelay-loadtest
(cd "$here" && SCAN_BODY_OUT="$work/body.json" SCAN_BODY_SIZE="$SIZE" go test -count=1 -run '^TestWriteBody$' . >/dev/null)

up=$(free_port)
start upstream "$work/pqrelay-loadtest" upstream --port "$up" --size 1KiB
wait_http upstream "http://127.0.0.1:$up/"
secret=$(random_hex 32)
token=$(random_hex 16)
limits=(JSON_MAX_DEPTH=20 JSON_MAX_ARRAY_ELEMENTS=10000 JSON_MAX_OBJECT_ENTRIES=1000
	JSON_MAX_NAME_LENGTH=256 JSON_MAX_STRING_LENGTH=65536)
declare -A port pid
for side in off on; do
	for role in a b; do
		port[$side$role]=$(free_port)
		extra=()
		[ "$side$role" = onb ] && extra=("${limits[@]}")
		start "$side-$role" env UPSTREAM="http://127.0.0.1:$up" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
			PORT="${port[$side$role]}" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 MAX_BODY_BYTES=$((SIZE * 2)) "${extra[@]}" "$work/pqrelay"
		pid[$side$role]=${servers[${#servers[@]} - 1]}
		wait_http "$side-$role" "http://127.0.0.1:${port[$side$role]}/api/mte-echo"
	done
done

# ticks PID...: utime + stime of the processes, in clock ticks.
ticks() {
	local p t=0 f
	for p in "$@"; do
		f=$(sed 's/^.*) //' "/proc/$p/stat")
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
hz=$(getconf CLK_TCK)

run() { # run SIDE: one wrk round through that side's pair; prints µs per request
	local side=$1 before after out n
	cat >"$work/$side.lua" <<LUA
local f = io.open("$work/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-mte-outbound-token"] = "$token"
wrk.headers["x-mte-upstream"] = "http://127.0.0.1:${port[${side}b]}"
LUA
	before=$(ticks "${pid[${side}a]}" "${pid[${side}b]}")
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$work/$side.lua" "http://127.0.0.1:${port[${side}a]}/api/records")
	after=$(ticks "${pid[${side}a]}" "${pid[${side}b]}")
	if grep -q 'Non-2xx' <<<"$out"; then die "$side: wrk saw non-2xx answers: $out"; fi
	n=$(awk '/requests in/ { print $1 }' <<<"$out")
	awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.1f %d\n", t / hz * 1e6 / n, n }'
}

: >"$work/results"
for r in $(seq "$ROUNDS"); do
	order="off on"
	[ $((r % 2)) = 0 ] && order="on off"
	for side in $order; do
		read -r us n < <(run "$side")
		say "round $r $side: $n requests, pair CPU $us µs/request"
		echo "$side $us" >>"$work/results"
	done
done
finished=1
sort "$work/results" | awk '
{ v[$1, ++n[$1]] = $2 }
function median(k,   i, j, t, m, a) {
  m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
END { off = median("off"); on = median("on")
  printf "pair CPU per 64 KiB JSON request, median of %d rounds: off %.1f µs, on %.1f µs, on/off %.3f\n", n["off"], off, on, on / off }'
