#!/usr/bin/env bash
# benchmarks/redis/run.sh — throughput of a relay pair whose inbound relay
# keeps its sessions in Redis (REDIS_URL), as a ratio of the same pair with
# sessions in process memory, measured in one run.
#
#   pqrelay-loadtest ──▶ relay A ══▶ relay B-memory ──▶ upstream
#                               ╚═▶ relay B-redis ───▶ upstream
#                                        │
#                                   redis-server
#
# One outbound relay A and one upstream serve both sides, so the only
# difference is B's store. Each round measures both, memory first in odd
# rounds and Redis first in even ones (on a shared 2-core box the
# neighbours come and go; numbers from separate runs compare nothing), each
# side a pqrelay-loadtest run of CONNS connections that also
# measures the upstream alone. The table gives each round's req/s and the
# Redis/memory ratio, and the CPU time B and redis-server used per request
# (user + system from /proc, warm-up requests included in the time but not
# in the count, the same for both sides).
#
# Every process it starts is stopped by PID on exit. Needs redis-server
# (installed with apt-get if missing), curl and jq.
#
# Env: ROUNDS (3), DURATION (10s), WARMUP (2s), CONNS (300), SIZE (1KiB).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-300}
SIZE=${SIZE:-1KiB}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

for tool in redis-server jq curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "installing $tool" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$tool" >/dev/null
	fi
done

. scripts/lib.sh
lib_init redis-bench

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Binaries go to the scratch directory, so that a run never replaces the
# bin/ that another script's processes were started from.
say "building pqrelay and pqrelay-loadtest"
go build -o "$work/pqrelay" ./cmd/pqrelay
go build -o "$work/pqrelay-loadtest" ./cmd/pqrelay-loadtest

redis_port=$(free_port)
up_port=$(free_port)
bm_port=$(free_port)
br_port=$(free_port)
a_port=$(free_port)
secret=$(random_hex 32)
token=$(random_hex 24)
upstream=http://127.0.0.1:$up_port

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
	--maxmemory-policy noeviction --dir "$work"
redis_pid=${servers[-1]}
start upstream "$work/pqrelay-loadtest" upstream --port "$up_port" --size "$SIZE"
wait_http upstream "$upstream/"
relay() { # relay NAME PORT [ENV...]
	local name=$1 port=$2
	shift 2
	start "$name" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 "$@" "$work/pqrelay"
	wait_http "$name" "http://127.0.0.1:$port/api/mte-echo"
}
relay b-memory "$bm_port"
bm_pid=${servers[-1]}
relay b-redis "$br_port" REDIS_URL="redis://127.0.0.1:$redis_port"
br_pid=${servers[-1]}
relay a "$a_port" ALLOWED_PEERS="http://127.0.0.1:$bm_port,http://127.0.0.1:$br_port"
for _ in $(seq 100); do # B-redis reports healthy once it reached Redis
	if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$br_port/api/mte-health" 2>/dev/null; then break; fi
	sleep 0.1
done

# measure MODE B_PORT B_PID ROUND: one loader run against the pair whose
# inbound relay is B; prints "rps b_cpu_us_per_req redis_cpu_us_per_req".
measure() {
	local mode=$1 port=$2 pid=$3 round=$4 tck b0 r0 b1 r1 out
	tck=$(getconf CLK_TCK)
	out="$work/$mode-$round.json"
	b0=$(cpu_ticks "$pid")
	r0=$(cpu_ticks "$redis_pid")
	"$work/pqrelay-loadtest" run --quiet \
		--control "$upstream" --relay "http://127.0.0.1:$a_port" \
		--relay-header "x-mte-upstream: http://127.0.0.1:$port" \
		--relay-header "x-mte-outbound-token: $token" \
		-c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --size "$SIZE" --verify auto \
		--json "$out" >/dev/null
	b1=$(cpu_ticks "$pid")
	r1=$(cpu_ticks "$redis_pid")
	jq -r --argjson tck "$tck" --argjson b "$((b1 - b0))" --argjson r "$((r1 - r0))" '
		.tiers[0] as $t
		| if ($t.relay.errors + $t.relay.timeouts + $t.relay.non_2xx + $t.relay.bad_body) > 0
		  then error("the relay side had failures") else . end
		| [$t.relay.rps, $t.control.rps,
		   ($b / $tck * 1e6 / $t.relay.requests), ($r / $tck * 1e6 / $t.relay.requests)]
		| @tsv' "$out"
}

say "$ROUNDS rounds of memory and Redis, $CONNS connections, $DURATION after $WARMUP warm-up, $SIZE bodies"
echo "| round | memory req/s | Redis req/s | Redis / memory | B CPU µs/req memory | B CPU µs/req Redis | redis-server CPU µs/req |"
echo "|---|---|---|---|---|---|---|"
ratios=()
for round in $(seq "$ROUNDS"); do
	# Odd rounds measure memory first, even rounds Redis first, so that a
	# drift in the machine's load does not favour one side.
	if ((round % 2)); then
		mline=$(measure memory "$bm_port" "$bm_pid" "$round")
		rline=$(measure redis "$br_port" "$br_pid" "$round")
	else
		rline=$(measure redis "$br_port" "$br_pid" "$round")
		mline=$(measure memory "$bm_port" "$bm_pid" "$round")
	fi
	read -r m_rps _ m_b _ <<<"$mline"
	read -r r_rps _ r_b r_r <<<"$rline"
	ratio=$(jq -n --argjson r "$r_rps" --argjson m "$m_rps" '$r / $m * 100 | . * 10 | round / 10')
	ratios+=("$ratio")
	printf '| %d | %.0f | %.0f | %s %% | %.1f | %.1f | %.1f |\n' "$round" "$m_rps" "$r_rps" "$ratio" "$m_b" "$r_b" "$r_r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo
echo "Median Redis / memory over $ROUNDS rounds: **$median %** (target ≥ 90 %)."
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs."
finished=1
