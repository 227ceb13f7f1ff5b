#!/usr/bin/env bash
# benchmarks/link/profile.sh — where one pqrelay pair's CPU goes per
# request, tier by tier: the same closed-loop load as benchmarks/pair
# (pqrelay-loadtest, 1 KiB POST and answer), CPU time of relay A, relay B,
# the upstream and the loader per request, and optionally a perf profile
# or syscall counts of both relays.
#
#   loader ──HTTP──▶ relay A ══ link ══▶ relay B ──HTTP──▶ upstream
#
# The upstream and the loader do the same work per request whatever the
# relays do, so their CPU per request says how fast the box was during a
# phase; "pair ÷ upstream" is the pair's CPU per request in those units,
# which moves far less from phase to phase than the µs do.
#
# Env:
#   CONNS     tiers (100,300)
#   ROUNDS    rounds over the tiers (3)
#   DURATION  measured seconds per phase (8), after WARMUP seconds (2)
#   PERF      none: CPU only; stat: syscalls and context switches per
#             request per relay; record: perf record -g of both relays,
#             kept in OUT with a flat report of each (none)
#   OUT       where perf output goes (a new directory under /tmp)
#   RELAY_ENV extra environment for both relays, e.g. GOMAXPROCS=1
#   RELAY_BIN a pqrelay binary to run instead of this checkout's: a
#             baseline build, for before/after runs taken in turn
#
# Every process it starts is stopped by PID on exit, failure and Ctrl-C.
set -euo pipefail

CONNS=${CONNS:-100,300}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
PERF=${PERF:-none}
RELAY_ENV=${RELAY_ENV:-}
RELAY_BIN=${RELAY_BIN:-}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init profile

[[ $CONNS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CONNS must be comma-separated numbers"
[[ $ROUNDS =~ ^[0-9]+$ && $DURATION =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] ||
	die "ROUNDS, DURATION and WARMUP must be whole numbers (seconds for the last two)"
case $PERF in
none) ;;
stat | record) command -v perf >/dev/null || die "PERF=$PERF needs perf" ;;
*) die "PERF must be none, stat or record" ;;
esac
command -v jq >/dev/null || die "jq is needed to read the loader's results"
if [ "$PERF" != none ]; then
	OUT=${OUT:-$(mktemp -d /tmp/pqrelay-profile-out.XXXXXX)}
	mkdir -p "$OUT"
fi

loader_pid=
perf_pids=()
on_cleanup() {
	local p
	[ -z "$loader_pid" ] || kill "$loader_pid" 2>/dev/null || true
	for p in "${perf_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}

say "building the relay and the loader"
go build -o "$work/bin/" ./cmd/...
if [ -n "$RELAY_BIN" ]; then
	[ -x "$RELAY_BIN" ] || die "RELAY_BIN: $RELAY_BIN is not an executable"
	cp "$RELAY_BIN" "$work/bin/pqrelay"
fi

secret=$(random_hex 32)
token=$(random_hex 16)
up_port=$(free_port)
b_port=$(free_port)
a_port=$(free_port)

start upstream "$work/bin/pqrelay-loadtest" upstream --port "$up_port" --size 1KiB
up_pid=${servers[-1]}
wait_http upstream "http://127.0.0.1:$up_port/"
# shellcheck disable=SC2086
start relay-b env UPSTREAM="http://127.0.0.1:$up_port" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 $RELAY_ENV "$work/bin/pqrelay"
b_pid=${servers[-1]}
wait_http "relay B" "http://127.0.0.1:$b_port/api/mte-echo"
# shellcheck disable=SC2086
start relay-a env UPSTREAM="http://127.0.0.1:$up_port" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
	PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="http://127.0.0.1:$b_port" \
	$RELAY_ENV "$work/bin/pqrelay"
a_pid=${servers[-1]}
wait_http "relay A" "http://127.0.0.1:$a_port/api/mte-echo"

# ticks PID: user and system clock ticks of a process so far.
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
events=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,context-switches

# phase N ROUND: one loader run; prints one table row.
phase() {
	local n=$1 round=$2 tag=$1-$2 t0 a0 b0 u0 l0 a1 b1 u1 l1 rps side
	"$work/bin/pqrelay-loadtest" run --control "http://127.0.0.1:$a_port" \
		--header "x-mte-upstream: http://127.0.0.1:$b_port" --header "x-mte-outbound-token: $token" \
		-c "$n" -d "$((DURATION + 1))s" --warmup "${WARMUP}s" --timeout 5s --size 1KiB --verify auto \
		--json "$work/run-$tag.json" >/dev/null 2>"$work/run-$tag.err" &
	loader_pid=$!
	for _ in $(seq 1000); do
		grep -q ' starting$' "$work/run-$tag.err" 2>/dev/null && break
		kill -0 "$loader_pid" 2>/dev/null || break
		sleep 0.01
	done
	nap "$WARMUP"
	a0=$(ticks "$a_pid") b0=$(ticks "$b_pid") u0=$(ticks "$up_pid") l0=$(ticks "$loader_pid")
	t0=$EPOCHREALTIME
	perf_pids=()
	case $PERF in
	stat)
		perf stat -x, -e "$events" -p "$a_pid" -o "$OUT/stat-a-$tag.txt" -- sleep "$DURATION" &
		perf_pids+=($!)
		perf stat -x, -e "$events" -p "$b_pid" -o "$OUT/stat-b-$tag.txt" -- sleep "$DURATION" &
		perf_pids+=($!)
		;;
	record)
		perf record -q -F 999 -g -p "$a_pid" -o "$OUT/a-$tag.perf" -- sleep "$DURATION" 2>/dev/null &
		perf_pids+=($!)
		perf record -q -F 999 -g -p "$b_pid" -o "$OUT/b-$tag.perf" -- sleep "$DURATION" 2>/dev/null &
		perf_pids+=($!)
		;;
	esac
	nap "$DURATION"
	a1=$(ticks "$a_pid") b1=$(ticks "$b_pid") u1=$(ticks "$up_pid") l1=$(ticks "$loader_pid")
	t0=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	[ ${#perf_pids[@]} = 0 ] || wait "${perf_pids[@]}" || true
	perf_pids=()
	wait "$loader_pid" || die "[$n conns] the loader failed: $(tail -n 3 "$work/run-$tag.err")"
	loader_pid=
	rps=$(jq '.tiers[0].control.rps' "$work/run-$tag.json")
	# The loader runs a second past the counters, so that it is still there
	# to be read; its rate over its measured phase times the seconds the
	# counters covered is the requests they paid for.
	awk -v n="$n" -v round="$round" -v rps="$rps" -v secs="$t0" -v hz="$hz" \
		-v errs="$(jq '.tiers[0].control | .errors + .timeouts + .non_2xx + .bad_body' "$work/run-$tag.json")" \
		-v p99="$(jq '.tiers[0].control.p99_ms' "$work/run-$tag.json")" \
		-v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" -v u0="$u0" -v u1="$u1" -v l0="$l0" -v l1="$l1" '
		function d(x, y, i,   p, q) { split(x, p, " "); split(y, q, " "); return q[i] - p[i] }
		BEGIN {
			k = 1e6 / hz / (rps * secs)
			au = d(a0, a1, 1) * k; as = d(a0, a1, 2) * k; bu = d(b0, b1, 1) * k; bs = d(b0, b1, 2) * k
			up = (d(u0, u1, 1) + d(u0, u1, 2)) * k; ld = (d(l0, l1, 1) + d(l0, l1, 2)) * k
			printf "| %d | %d | %.0f | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n",
				n, round, rps, errs, p99, au, as, bu, bs, au + as + bu + bs, up, ld, (au + as + bu + bs) / up
		}'
	if [ "$PERF" = stat ]; then
		for side in a b; do
			awk -F, -v side="$side" -v tag="$tag" -v r="$(awk -v r="$rps" -v s="$t0" 'BEGIN { print r * s }')" '
				/^[0-9]/ { e = $3; sub(/^syscalls:sys_enter_/, "", e); out = out sprintf(" %s %.2f", e, $1 / r) }
				END { printf "  %s, relay %s, per request:%s\n", tag, toupper(side), out }' \
				"$OUT/stat-$side-$tag.txt" >>"$OUT/stat-summary.txt"
		done
	fi
	if [ "$PERF" = record ]; then
		for side in a b; do
			perf report -i "$OUT/$side-$tag.perf" --no-children --sort sym --stdio -g none 2>/dev/null |
				grep -v '^#' | grep '%' | head -n 40 >"$OUT/$side-$tag.flat.txt" || true
		done
	fi
}

echo "# benchmarks/link/profile.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo
echo "pqrelay-loadtest closed loop, 1 KiB POST and answer, ${WARMUP} s warm-up + ${DURATION} s per phase, PERF=$PERF${RELAY_ENV:+, relays with $RELAY_ENV}; CPU in µs per request."
echo
echo "| conns | round | req/s | failed | p99 ms | A user | A sys | B user | B sys | pair | upstream | loader | pair ÷ upstream |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a tiers <<<"$CONNS"
for round in $(seq "$ROUNDS"); do
	for n in "${tiers[@]}"; do
		phase "$n" "$round"
	done
done
if [ "$PERF" = stat ]; then
	echo
	cat "$OUT/stat-summary.txt"
fi
[ "$PERF" = none ] || say "perf output in $OUT"
finished=1
