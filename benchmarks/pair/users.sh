#!/usr/bin/env bash
# benchmarks/pair/users.sh — the 10,000-users shape through the pqrelay
# pair and through an nginx (and a HAProxy) mTLS pair: each user one
# keep-alive connection, a 1 KiB POST, 1 s think time, an upstream that
# takes 50 ms. For each pair the loader runs once in users mode, first
# against the upstream itself (the control API), then through the pair;
# afterwards the script reads the peak RSS (VmHWM) of each relay or proxy
# (every process of its tree, added up) and prints one markdown table.
#
#   loader ──HTTP──▶ relay A ══ sealed frames, relay link  ══▶ relay B ──HTTP──▶ upstream (50 ms)
#   loader ──HTTP──▶ nginx A ══ HTTPS (TLS 1.3), client cert ══▶ nginx B ──HTTP──▶ upstream
#
# Env:
#   USERS     users, one connection each (10000)
#   RAMP      time over which the users start, not measured (10s)
#   WARMUP    uncounted warm-up after the ramp (2s)
#   DURATION  measured time per side (10s)
#   PAIRS     pqrelay,nginx (haproxy may be added)
#   BASELINE  a second pqrelay binary to run as the side pqrelay-baseline,
#             e.g. one built from an earlier commit (unset: none)
# Every process it starts is stopped by PID on exit, failure and Ctrl-C.
set -euo pipefail

USERS=${USERS:-10000}
RAMP=${RAMP:-10s}
WARMUP=${WARMUP:-2s}
DURATION=${DURATION:-10s}
PAIRS=${PAIRS:-pqrelay,nginx}
BASELINE=${BASELINE:-}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/lib.sh
lib_init users-pair

IFS=, read -r -a pairs <<<"$PAIRS"
[ -z "$BASELINE" ] || pairs=(pqrelay-baseline "${pairs[@]}")
for side in "${pairs[@]}"; do
	case $side in
	pqrelay | pqrelay-baseline | nginx | haproxy) ;;
	*) die "PAIRS: unknown pair '$side' (pqrelay, nginx, haproxy)" ;;
	esac
	case $side in nginx | haproxy) command -v "$side" >/dev/null || [ -x "/usr/sbin/$side" ] ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$side" >/dev/null ;; esac
done
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y jq >/dev/null
# The loader holds USERS connections, and so does relay or proxy A;
# HAProxy counts two descriptors per connection it may hold.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((USERS + 1000)) ]; then
	ulimit -n $((USERS + 1000)) || die "ulimit -n $(ulimit -n) is too low for $USERS users"
fi
haproxy_fds=$((2 * (USERS + 500) + 100))
case ",$PAIRS," in *,haproxy,*)
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$haproxy_fds" ] ||
		die "HAProxy needs ulimit -n $haproxy_fds for $USERS users, the hard limit is $(ulimit -Hn): leave haproxy out of PAIRS"
	;;
esac

say "building bin/pqrelay and bin/pqrelay-loadtest"
mkdir -p bin
go build -o bin/ ./cmd/...

pki=$work/pki
. benchmarks/pair/pki.sh # the CA and leaf certificates run.sh uses
make_pki "$pki"
chmod 0711 "$work"

up_port=$(free_port)
upstream=http://127.0.0.1:$up_port
secret=$(random_hex 32)
token=$(random_hex 24)
start upstream ./bin/pqrelay-loadtest upstream --port "$up_port" --delay 50ms
wait_http upstream "$upstream/"
up_pid=${servers[-1]}
printf 'x-mte-outbound-token: %s\n' "$token" >"$work/token.header"

declare -A url=() pid_a=() pid_b=() extra=()

start_relays() { # start_relays SIDE BINARY
	local side=$1 bin=$2 a_port b_port
	a_port=$(free_port)
	b_port=$(free_port)
	start "$side-b" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 "$bin"
	wait_http "$side B" "http://127.0.0.1:$b_port/api/mte-echo"
	pid_b[$side]=${servers[-1]}
	start "$side-a" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="http://127.0.0.1:$b_port" "$bin"
	wait_http "$side A" "http://127.0.0.1:$a_port/api/mte-echo"
	pid_a[$side]=${servers[-1]}
	url[$side]=http://127.0.0.1:$a_port
	extra[$side]="--relay-header=x-mte-upstream: http://127.0.0.1:$b_port"
}

write_nginx() { # write_nginx DIR ROLE A-PORT B-PORT
	local dir=$1 role=$2 a_port=$3 b_port=$4
	mkdir -p "$dir/tmp"
	chmod 0755 "$dir"
	{
		cat <<-EOF
			worker_processes 1;
			worker_rlimit_nofile $((USERS + 1000));
			daemon off;
			master_process on;
			pid $dir/nginx.pid;
			error_log $dir/error.log warn;
			events { worker_connections $((2 * USERS)); }
			http {
			    access_log off;
			    client_body_temp_path $dir/tmp/body;
			    proxy_temp_path $dir/tmp/proxy;
			    fastcgi_temp_path $dir/tmp/fastcgi;
			    uwsgi_temp_path $dir/tmp/uwsgi;
			    scgi_temp_path $dir/tmp/scgi;
			    keepalive_timeout 120s;
			    keepalive_requests 1000000;
		EOF
		if [ "$role" = a ]; then
			cat <<-EOF
				    upstream peer_b { server 127.0.0.1:$b_port; keepalive 512; keepalive_requests 1000000; keepalive_timeout 120s; }
				    server {
				        listen 127.0.0.1:$a_port backlog=4096;
				        location / {
				            proxy_pass https://peer_b;
				            proxy_http_version 1.1;
				            proxy_set_header Connection "";
				            proxy_ssl_certificate $pki/client.crt;
				            proxy_ssl_certificate_key $pki/client.key;
				            proxy_ssl_trusted_certificate $pki/ca.crt;
				            proxy_ssl_verify on;
				            proxy_ssl_name b.pqrelay.test;
				            proxy_ssl_server_name on;
				            proxy_ssl_protocols TLSv1.3;
				            proxy_ssl_session_reuse on;
				        }
				    }
				}
			EOF
		else
			cat <<-EOF
				    upstream api { server 127.0.0.1:$up_port; keepalive 512; keepalive_requests 1000000; keepalive_timeout 120s; }
				    server {
				        listen 127.0.0.1:$b_port ssl backlog=4096;
				        ssl_certificate $pki/server.crt;
				        ssl_certificate_key $pki/server.key;
				        ssl_client_certificate $pki/ca.crt;
				        ssl_verify_client on;
				        ssl_protocols TLSv1.3;
				        ssl_session_cache shared:users_b:1m;
				        location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; }
				    }
				}
			EOF
		fi
	} >"$dir/nginx.conf"
}

write_haproxy() { # write_haproxy DIR ROLE A-PORT B-PORT
	local dir=$1 role=$2 a_port=$3 b_port=$4
	mkdir -p "$dir"
	{
		cat <<-EOF
			global
			    nbthread 1
			    maxconn $((USERS + 500))
			    ulimit-n $haproxy_fds
			defaults
			    mode http
			    timeout connect 5s
			    timeout client 120s
			    timeout server 30s
			    timeout http-keep-alive 120s
			    http-reuse always
		EOF
		if [ "$role" = a ]; then
			printf '%s\n' "frontend app" "    bind 127.0.0.1:$a_port" "    default_backend peer_b" "backend peer_b" \
				"    server b 127.0.0.1:$b_port ssl crt $pki/client.pem ca-file $pki/ca.crt verify required verifyhost b.pqrelay.test sni str(b.pqrelay.test) ssl-min-ver TLSv1.3 pool-max-conn 512"
		else
			printf '%s\n' "frontend tls_in" "    bind 127.0.0.1:$b_port ssl crt $pki/server.pem ca-file $pki/ca.crt verify required ssl-min-ver TLSv1.3" \
				"    default_backend api" "backend api" "    server up 127.0.0.1:$up_port pool-max-conn 512"
		fi
	} >"$dir/haproxy.cfg"
}

start_proxy_pair() { # start_proxy_pair PROXY
	local proxy=$1 a_port b_port role bin
	a_port=$(free_port)
	b_port=$(free_port)
	bin=$(command -v "$proxy" || echo "/usr/sbin/$proxy")
	for role in b a; do
		if [ "$proxy" = nginx ]; then
			write_nginx "$work/nginx-$role" "$role" "$a_port" "$b_port"
			start "nginx-$role" "$bin" -p "$work/nginx-$role/" -c "$work/nginx-$role/nginx.conf" -e "$work/nginx-$role/error.log"
		else
			write_haproxy "$work/haproxy-$role" "$role" "$a_port" "$b_port"
			start "haproxy-$role" "$bin" -db -f "$work/haproxy-$role/haproxy.cfg"
		fi
		if [ "$role" = b ]; then
			wait_http "$proxy B" "https://b.pqrelay.test:$b_port/" --cacert "$pki/ca.crt" --cert "$pki/client.crt" \
				--key "$pki/client.key" --resolve "b.pqrelay.test:$b_port:127.0.0.1"
			pid_b[$proxy]=${servers[-1]}
		else
			wait_http "$proxy A" "http://127.0.0.1:$a_port/"
			pid_a[$proxy]=${servers[-1]}
		fi
	done
	url[$proxy]=http://127.0.0.1:$a_port
	extra[$proxy]=
}

for side in "${pairs[@]}"; do
	case $side in
	pqrelay) start_relays pqrelay ./bin/pqrelay ;;
	pqrelay-baseline) start_relays pqrelay-baseline "$BASELINE" ;;
	*) start_proxy_pair "$side" ;;
	esac
done

# tree PID: PID and every process below it (a master's workers).
tree() {
	local p kids
	echo "$1"
	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
	for p in $kids; do tree "$p"; done
}
# hwm_mib PID: the peak RSS of PID's tree, MiB, one decimal.
hwm_mib() {
	local kb=0 p v
	for p in $(tree "$1"); do
		v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null || true)
		kb=$((kb + ${v:-0}))
	done
	awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
}

echo "| pair | side | requests | req/s | failed | p50 ms | p99 ms | p99 − control ms | peak RSS A MiB | peak RSS B MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for side in "${pairs[@]}"; do
	say "$side: $USERS users, ramp $RAMP, warm-up $WARMUP, $DURATION measured per side"
	out=$work/$side
	rc=0
	# shellcheck disable=SC2086
	./bin/pqrelay-loadtest run --quiet --control "$upstream" --relay "${url[$side]}" \
		--relay-header @"$work/token.header" ${extra[$side]:+"${extra[$side]}"} \
		-c "$USERS" --think 1s --ramp "$RAMP" --warmup "$WARMUP" -d "$DURATION" --json "$out.json" \
		>"$out.md" 2>"$out.err" &
	servers+=("$!")
	wait "$!" || rc=$?
	[ "$rc" = 0 ] || { cat "$out.err" >&2; die "the loader failed on $side"; }
	c99=$(jq -r '.tiers[0].control.p99_ms' "$out.json")
	for s in control relay; do
		jq -r --arg pair "$side" --arg s "$s" --argjson c99 "$c99" '.tiers[0][$s] |
			"| \($pair) | \($s) | \(.requests) | \(.rps | floor) | \(.errors + .timeouts + .non_2xx + .bad_body) | \(.p50_ms) | \(.p99_ms) | " +
			(if $s == "relay" then "\((.p99_ms - $c99) * 100 | round / 100)" else "–" end) + " |"' "$out.json" | tr -d '\n'
		if [ "$s" = relay ]; then
			echo " $(hwm_mib "${pid_a[$side]}") | $(hwm_mib "${pid_b[$side]}") |"
		else
			echo " – | – |"
		fi
	done
done
echo
echo "$USERS users, 1 KiB POST, 1 s think, upstream delay 50 ms; ramp $RAMP, warm-up $WARMUP, $DURATION measured per side."
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs."
finished=1
