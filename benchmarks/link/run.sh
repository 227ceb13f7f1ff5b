#!/usr/bin/env bash
# benchmarks/link/run.sh — the relay link against per-request HTTP between
# the relays, side by side in one run: the same relay B, two relay A
# processes, one with links (PEER_LINKS=true, the default) and one without
# (PEER_LINKS=false), loaded in turn by wrk with the same body.
#
#   wrk ──HTTP──▶ relay A (links) ══ link ══════════════▶ relay B ──HTTP──▶ upstream
#   wrk ──HTTP──▶ relay A (HTTP)  ══ HTTP per request ══▶ relay B ──HTTP──▶ upstream
#
# For each tier and round, each side gets a warm-up and then a measured
# phase; the sides alternate which goes first. During the measured phase
# the script counts the syscalls of relay A and relay B (perf stat,
# raw_syscalls:sys_enter, per process) and reads their CPU time (utime +
# stime, /proc/<pid>/stat), and divides both by the requests wrk completed.
# Relay B serves one side at a time, so all its CPU and syscalls in a phase
# belong to that side; the idle relay A costs next to nothing.
#
# Env:
#   DURATION  measured time per side, tier and round (10s)
#   WARMUP    uncounted warm-up before each measurement (2s)
#   CONNS     tiers (100,300)
#   ROUNDS    rounds per tier (3)
#   SIZE      request and response body in bytes (1024)
#
# Prints a markdown table per tier; every process it starts is stopped by
# PID on exit, failure and Ctrl-C alike.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-100,300}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1024}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init link

command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
command -v perf >/dev/null || die "perf is needed to count syscalls"
[[ $CONNS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CONNS must be comma-separated numbers"
[[ $SIZE =~ ^[0-9]+$ ]] || die "SIZE must be a number of bytes"

perf_pid=
on_cleanup() { [ -z "$perf_pid" ] || kill "$perf_pid" 2>/dev/null || true; }

say "building the relay and the bundled upstream"
go build -o "$work/bin/" ./cmd/...

secret=$(random_hex 32)
token=$(random_hex 16)
up_port=$(free_port)
b_port=$(free_port)
a_link_port=$(free_port)
a_http_port=$(free_port)

start upstream "$work/bin/pqrelay-loadtest" upstream --port "$up_port" --size "$SIZE"
upstream_pid=${servers[-1]}
wait_http upstream "http://127.0.0.1:$up_port/"
relay() { # relay NAME PORT PEER_LINKS
	start "$1" env UPSTREAM="http://127.0.0.1:$up_port" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$2" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="http://127.0.0.1:$b_port" PEER_LINKS="$3" "$work/bin/pqrelay"
	wait_http "$1" "http://127.0.0.1:$2/api/mte-health"
}
relay relay-b "$b_port" true
b_pid=${servers[-1]}
relay relay-a-link "$a_link_port" true
a_link_pid=${servers[-1]}
relay relay-a-http "$a_http_port" false
a_http_pid=${servers[-1]}

cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = string.rep("x", $SIZE)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-mte-outbound-token"] = "$token"
wrk.headers["x-mte-upstream"] = "http://127.0.0.1:$b_port"
EOF

# cpu_ticks PID: utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# syscalls_of FILE: the count perf stat -x, wrote.
syscalls_of() { awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$1"; }

# measure SIDE PORT PID CONNS: one warm-up and one measured phase; prints
# "requests errors cpu_us_per_req syscalls_a_per_req syscalls_b_per_req p99".
measure() {
	local side=$1 port=$2 pid=$3 conns=$4 out="$work/wrk-$1.txt"
	wrk -t1 -c"$conns" -d"$WARMUP" -s "$work/post.lua" "http://127.0.0.1:$port/api/items" >/dev/null
	local a0 b0
	a0=$(cpu_ticks "$pid")
	b0=$(cpu_ticks "$b_pid")
	perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$work/perf-a.txt" &
	perf_pid=$!
	perf stat -x, -e raw_syscalls:sys_enter -p "$b_pid" -o "$work/perf-b.txt" &
	local perf_b=$!
	wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/items" >"$out"
	kill -INT "$perf_pid" "$perf_b"
	wait "$perf_pid" "$perf_b" 2>/dev/null || true
	perf_pid=
	local a1 b1 reqs errs
	a1=$(cpu_ticks "$pid")
	b1=$(cpu_ticks "$b_pid")
	reqs=$(awk '/requests in/ { print $1 }' "$out")
	errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) n += $i } END { print n + 0 }' "$out")
	awk -v r="$reqs" -v e="$errs" -v cpu=$(((a1 - a0) + (b1 - b0))) -v hz="$hz" \
		-v sa="$(syscalls_of "$work/perf-a.txt")" -v sb="$(syscalls_of "$work/perf-b.txt")" \
		-v p99="$(awk '$1 == "99%" { print $2 }' "$out")" \
		'BEGIN { printf "%d %d %.1f %.2f %.2f %s\n", r, e, cpu * 1e6 / hz / r, sa / r, sb / r, p99 }'
}

echo "# benchmarks/link — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo
echo "wrk -t1, ${SIZE}-byte POST and answer, ${DURATION} per side after a ${WARMUP} warm-up, $ROUNDS rounds alternating."
echo "CPU and syscalls are relay A + relay B; syscalls per request per relay."
for conns in ${CONNS//,/ }; do
	echo
	echo "## $conns connections"
	echo
	echo "| round | side | requests | errors | pair CPU µs/req | syscalls A/req | syscalls B/req | p99 |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for round in $(seq "$ROUNDS"); do
		sides="link http"
		[ $((round % 2)) = 0 ] && sides="http link"
		for side in $sides; do
			if [ "$side" = link ]; then
				row=$(measure link "$a_link_port" "$a_link_pid" "$conns")
			else
				row=$(measure http "$a_http_port" "$a_http_pid" "$conns")
			fi
			read -r reqs errs cpu sa sb p99 <<<"$row"
			echo "| $round | $side | $reqs | $errs | $cpu | $sa | $sb | $p99 |"
		done
	done
done
finished=1
