#!/usr/bin/env bash
# benchmarks/pair/run.sh — the pqrelay pair against what most teams deploy
# instead, a pair of nginx or HAProxy reverse proxies joined by mutual TLS,
# and against the bare control API, side by side in one run
# (docs/ARCHITECTURE.md §7).
#
#   loader ──HTTP──▶ relay A ══ sealed frames, HTTP          ══▶ relay B ──HTTP──▶ upstream
#   loader ──HTTP──▶ relay A ══ sealed frames, HTTPS + mTLS  ══▶ relay B ──HTTP──▶ upstream
#   loader ──HTTP──▶ nginx A ══ HTTPS, client cert           ══▶ nginx B ──HTTP──▶ upstream
#   loader ──HTTP──▶ HAProxy A ═ HTTPS, client cert          ══▶ HAProxy B ─HTTP─▶ upstream
#   loader ──────────────────────────────────────────────────────────────────────▶ upstream
#
# Everything runs on loopback, against one bundled upstream process. For
# each connection count (tier) the loader runs once per side — control,
# then every pair of PAIRS in an order that rotates from tier to tier —
# with the same body, warm-up and duration. While each measured phase runs
# (after the warm-up), the script reads the CPU time (utime + stime,
# /proc/<pid>/stat) of the upstream, both servers of the pair under load
# (master and workers: every process in the tree), the loader and the
# whole box, and turns them into CPU µs per completed request.
#
# Writes benchmarks/pair/results-<UTC date-time>.md and the part of
# benchmarks/pair/README.md below its marker line. Every process it starts
# is stopped by PID on exit, failure and Ctrl-C alike.
#
# Env:
#   DURATION      measured time per side and tier (10s)
#   WARMUP        uncounted warm-up before each measurement (2s)
#   CONNS         tiers (100,200,250,300,1000)
#   SIZE          request and response body (1KiB)
#   TIMEOUT       per request (5s)
#   PAIRS         the pairs to compare (pqrelay,pqrelay-tls,nginx,haproxy):
#                 pqrelay-tls is the pqrelay pair with mutual TLS on A↔B
#   PROXY_WORKERS nginx worker_processes / HAProxy nbthread per proxy (1), or auto
#   KEEPALIVE     idle upstream connections each proxy keeps (512)
#   README        1: refresh README.md with this run; 0: only the results file
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-100,200,250,300,1000}
SIZE=${SIZE:-1KiB}
TIMEOUT=${TIMEOUT:-5s}
PAIRS=${PAIRS:-pqrelay,pqrelay-tls,nginx,haproxy}
PROXY_WORKERS=${PROXY_WORKERS:-1}
KEEPALIVE=${KEEPALIVE:-512}
README=${README:-1}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

. scripts/lib.sh
lib_init pair

# secs DUR: a Go-style duration of the forms the loader takes here (10s,
# 500ms, 2m) in seconds, for sleep.
secs() {
	case $1 in
	*ms) [[ ${1%ms} =~ ^[0-9]+$ ]] && awk -v n="${1%ms}" 'BEGIN { printf "%.3f", n / 1000 }' && return ;;
	*s) [[ ${1%s} =~ ^[0-9]+(\.[0-9]+)?$ ]] && echo "${1%s}" && return ;;
	*m) [[ ${1%m} =~ ^[0-9]+$ ]] && echo $((${1%m} * 60)) && return ;;
	esac
	die "cannot read duration '$1' (use e.g. 10s, 500ms, 2m)"
}
dur_s=$(secs "$DURATION")
warm_s=$(secs "$WARMUP")
[[ $CONNS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CONNS must be comma-separated numbers, not '$CONNS'"
[[ $PROXY_WORKERS =~ ^([0-9]+|auto)$ ]] || die "PROXY_WORKERS must be a number or auto"
[[ $KEEPALIVE =~ ^[0-9]+$ ]] || die "KEEPALIVE must be a number"
IFS=, read -r -a pairs <<<"$PAIRS"
declare -A want=()
for side in "${pairs[@]}"; do
	case $side in
	pqrelay | pqrelay-tls | nginx | haproxy) want[$side]=1 ;;
	*) die "PAIRS: unknown pair '$side' (pqrelay, pqrelay-tls, nginx, haproxy)" ;;
	esac
done

extra_pids=()  # proxy workers seen at start-up (children of a master)
loader_pid=    # the loader of the side under way, and the subshell around it
loader_sub=

# on_cleanup (called by lib.sh before it stops the servers): the loader,
# and proxy workers a master left behind, if they are still ours.
on_cleanup() {
	local pid
	for pid in $loader_pid $loader_sub; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${extra_pids[@]}"; do
		case $(comm_of "$pid") in
		nginx | haproxy) kill "$pid" 2>/dev/null || true ;;
		esac
	done
}

comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }

# ---------------------------------------------------------------- install

# have_pkg PKG: the package exists in the configured archives.
# (Read whole first: grep -q would stop early and pipefail would count
# apt-cache's broken pipe as a failure.)
have_pkg() {
	local policy
	policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
	grep -q 'Candidate: [0-9]' <<<"$policy"
}

# ensure CMD PKG: installs PKG unless CMD is already there.
ensure() {
	if command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; then
		return 0
	fi
	have_pkg "$2" || { say "package $2 is not available here (apt-cache policy $2)"; return 1; }
	say "installing $2"
	# policy-rc.d on Debian images keeps the packaged service from starting;
	# either way this script only uses processes it starts itself.
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >"$work/apt-$2.log" 2>&1; then
		tail -n 5 "$work/apt-$2.log" >&2
		return 1
	fi
}

ensure openssl openssl || die "openssl is needed for the certificates"
ensure jq jq || die "jq is needed to read the loader's JSON"
ensure curl curl || die "curl is needed to probe the servers"
declare -A proxy_bin=()
for proxy in nginx haproxy; do
	[ -n "${want[$proxy]:-}" ] || continue
	ensure "$proxy" "$proxy" || die "$proxy could not be installed; leave it out of PAIRS"
	proxy_bin[$proxy]=$(command -v "$proxy" || echo "/usr/sbin/$proxy")
done

say "building bin/pqrelay and bin/pqrelay-loadtest"
mkdir -p bin
go build -o bin/ ./cmd/...

# ----------------------------------------------------------- certificates

# A throwaway CA and the two leaf certificates (pki.sh).
pki=$work/pki
. "$here/pki.sh"
make_pki "$pki"
chmod 0711 "$work" # nginx workers run as nobody and use temp paths below it

# ---------------------------------------------------------------- servers

up_port=$(free_port)
upstream=http://127.0.0.1:$up_port
secret=$(random_hex 32)
token=$(random_hex 24)

start upstream ./bin/pqrelay-loadtest upstream --port "$up_port" --size "$SIZE"
wait_http upstream "$upstream/"
up_pid=${servers[-1]}

# Per pair: the URL the loader sends to, extra loader arguments, and the
# process trees of A and B (master and workers) whose CPU is the pair's.
declare -A url=() args=() tree_a=() tree_b=()

# pqrelay: relay B in front of the upstream, relay A in front of B (as in
# scripts/demo.sh), fresh secrets; with tls, B serves HTTPS and demands
# A's client certificate, and A verifies B's like the proxies do.
start_relays() { # start_relays SIDE TLS(0|1)
	local side=$1 tls=$2 a_port b_port a_url b_url b_env=() a_env=() b_probe=()
	a_port=$(free_port)
	b_port=$(free_port)
	a_url=http://127.0.0.1:$a_port
	b_url=http://127.0.0.1:$b_port
	if [ "$tls" = 1 ]; then
		b_url=https://127.0.0.1:$b_port
		b_env=(TLS_CERT_FILE="$pki/server.crt" TLS_KEY_FILE="$pki/server.key"
			TLS_CLIENT_CA_FILE="$pki/ca.crt" TLS_CLIENT_NAMES=a.pqrelay.test)
		a_env=(PEER_CA_FILE="$pki/ca.crt" PEER_CERT_FILE="$pki/client.crt" PEER_KEY_FILE="$pki/client.key"
			PEER_SERVER_NAME=b.pqrelay.test)
		b_probe=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
	fi
	start "$side-b" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$b_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 "${b_env[@]}" ./bin/pqrelay
	wait_http "$side B" "$b_url/api/mte-echo" "${b_probe[@]}"
	tree_b[$side]=${servers[-1]}
	start "$side-a" env UPSTREAM="$upstream" CLIENT_ID_SECRET="$secret" OUTBOUND_TOKEN="$token" \
		PORT="$a_port" LISTEN_ADDR=127.0.0.1 METRICS_PORT=0 ALLOWED_PEERS="$b_url" "${a_env[@]}" ./bin/pqrelay
	wait_http "$side A" "$a_url/api/mte-echo"
	tree_a[$side]=${servers[-1]}
	url[$side]=$a_url
	args[$side]="x-mte-upstream: $b_url"
}
[ -z "${want[pqrelay]:-}" ] || start_relays pqrelay 0
[ -z "${want[pqrelay-tls]:-}" ] || start_relays pqrelay-tls 1

# Connections each side of the 1,000 tier may hold at once, with room.
max_conns=10000
na_port=$(free_port)
nb_port=$(free_port)
ha_port=$(free_port)
hb_port=$(free_port)

write_nginx() { # write_nginx DIR ROLE
	local dir=$1 role=$2
	mkdir -p "$dir/tmp"
	chmod 0755 "$dir"
	{
		cat <<-EOF
			worker_processes $PROXY_WORKERS;
			worker_rlimit_nofile $((2 * max_conns));
			daemon off;
			master_process on;
			pid $dir/nginx.pid;
			error_log $dir/error.log warn;
			events { worker_connections $max_conns; }
			http {
			    access_log off;
			    client_body_temp_path $dir/tmp/body;
			    proxy_temp_path $dir/tmp/proxy;
			    fastcgi_temp_path $dir/tmp/fastcgi;
			    uwsgi_temp_path $dir/tmp/uwsgi;
			    scgi_temp_path $dir/tmp/scgi;
			    client_max_body_size 5m;
			    keepalive_timeout 120s;
			    keepalive_requests 1000000;
		EOF
		if [ "$role" = a ]; then
			cat <<-EOF
				    upstream peer_b {
				        server 127.0.0.1:$nb_port;
				        keepalive $KEEPALIVE;
				        keepalive_requests 1000000;
				        keepalive_timeout 120s;
				    }
				    server {
				        listen 127.0.0.1:$na_port backlog=4096;
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
				            proxy_ssl_protocols TLSv1.2 TLSv1.3;
				            proxy_ssl_session_reuse on;
				        }
				    }
				}
			EOF
		else
			cat <<-EOF
				    upstream api {
				        server 127.0.0.1:$up_port;
				        keepalive $KEEPALIVE;
				        keepalive_requests 1000000;
				        keepalive_timeout 120s;
				    }
				    server {
				        listen 127.0.0.1:$nb_port ssl backlog=4096;
				        ssl_certificate $pki/server.crt;
				        ssl_certificate_key $pki/server.key;
				        ssl_client_certificate $pki/ca.crt;
				        ssl_verify_client on;
				        ssl_verify_depth 1;
				        ssl_protocols TLSv1.2 TLSv1.3;
				        ssl_session_cache shared:pair_b:1m;
				        location / {
				            proxy_pass http://api;
				            proxy_http_version 1.1;
				            proxy_set_header Connection "";
				        }
				    }
				}
			EOF
		fi
	} >"$dir/nginx.conf"
	"${proxy_bin[nginx]}" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/check.log" ||
		{ cat "$dir/check.log" >&2; die "nginx $role: configuration refused"; }
}

write_haproxy() { # write_haproxy DIR ROLE
	local dir=$1 role=$2 threads=
	mkdir -p "$dir"
	[ "$PROXY_WORKERS" = auto ] || threads="nbthread $PROXY_WORKERS"
	{
		cat <<-EOF
			global
			    $threads
			    maxconn $((max_conns * 4 / 5))
			defaults
			    mode http
			    timeout connect 5s
			    timeout client 120s
			    timeout server 30s
			    timeout http-keep-alive 120s
			    http-reuse always
		EOF
		if [ "$role" = a ]; then
			cat <<-EOF
				frontend app
				    bind 127.0.0.1:$ha_port
				    default_backend peer_b
				backend peer_b
				    server b 127.0.0.1:$hb_port ssl crt $pki/client.pem ca-file $pki/ca.crt verify required verifyhost b.pqrelay.test sni str(b.pqrelay.test) ssl-min-ver TLSv1.2 pool-max-conn $KEEPALIVE
			EOF
		else
			cat <<-EOF
				frontend tls_in
				    bind 127.0.0.1:$hb_port ssl crt $pki/server.pem ca-file $pki/ca.crt verify required ssl-min-ver TLSv1.2
				    default_backend api
				backend api
				    server up 127.0.0.1:$up_port pool-max-conn $KEEPALIVE
			EOF
		fi
	} >"$dir/haproxy.cfg"
	"${proxy_bin[haproxy]}" -c -q -f "$dir/haproxy.cfg" >"$dir/check.log" 2>&1 ||
		{ cat "$dir/check.log" >&2; die "haproxy $role: configuration refused"; }
}

start_proxy() { # start_proxy PROXY ROLE
	local proxy=$1 role=$2 dir=$work/$1-$2
	if [ "$proxy" = nginx ]; then
		write_nginx "$dir" "$role"
		# -e: the error log from the first line on (Debian builds log to
		# stderr until the configuration is read).
		start "nginx-$role" "${proxy_bin[nginx]}" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
	else
		write_haproxy "$dir" "$role"
		start "haproxy-$role" "${proxy_bin[haproxy]}" -db -f "$dir/haproxy.cfg"
	fi
}

# children PID: every process below PID (a master's workers).
children() {
	local f line rest fields pid p out=() frontier=("$1") found=1
	declare -A parent=()
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		rest=${line##*) }
		read -r -a fields <<<"$rest"
		parent[${line%% *}]=${fields[1]}
	done
	while [ "$found" = 1 ]; do
		found=0
		for pid in "${!parent[@]}"; do
			for p in "${frontier[@]}"; do
				if [ "${parent[$pid]}" = "$p" ]; then
					out+=("$pid")
					frontier+=("$pid")
					unset "parent[$pid]"
					found=1
					break
				fi
			done
		done
	done
	[ ${#out[@]} = 0 ] || printf '%s\n' "${out[@]}" | sort -n | paste -sd ' ' -
}
# proxy_pair PROXY A-PORT B-PORT: starts B then A and records their trees.
proxy_pair() {
	local proxy=$1 a_port=$2 b_port=$3 a b
	start_proxy "$proxy" b
	b=${servers[-1]}
	wait_http "$proxy B" "https://b.pqrelay.test:$b_port/" --cacert "$pki/ca.crt" --cert "$pki/client.crt" \
		--key "$pki/client.key" --resolve "b.pqrelay.test:$b_port:127.0.0.1"
	start_proxy "$proxy" a
	a=${servers[-1]}
	wait_http "$proxy A" "http://127.0.0.1:$a_port/"
	tree_a[$proxy]="$a $(children "$a")"
	tree_b[$proxy]="$b $(children "$b")"
	# shellcheck disable=SC2206
	extra_pids+=(${tree_a[$proxy]#* } ${tree_b[$proxy]#* })
	say "$proxy A pid $a, B pid $b, workers: ${tree_a[$proxy]#* } ${tree_b[$proxy]#* }"
	url[$proxy]=http://127.0.0.1:$a_port
}
[ -z "${want[nginx]:-}" ] || proxy_pair nginx "$na_port" "$nb_port"
[ -z "${want[haproxy]:-}" ] || proxy_pair haproxy "$ha_port" "$hb_port"

# Sanity: every B enforces client certificates and speaks TLS 1.3 on the
# A↔B leg, and every pair delivers the upstream's body.
declare -A nocert=() leg=()
tls_leg() { # tls_leg PORT: protocol and suite of a handshake with A's certificate
	openssl s_client -connect "127.0.0.1:$1" -servername b.pqrelay.test -CAfile "$pki/ca.crt" \
		-cert "$pki/client.crt" -key "$pki/client.key" -brief </dev/null 2>&1 |
		sed -n 's/^Protocol version: //p; s/^Ciphersuite: //p' | paste -sd ' ' -
}
declare -A b_port_of=([nginx]=$nb_port [haproxy]=$hb_port)
for side in "${pairs[@]}"; do
	b=
	case $side in
	pqrelay) leg[$side]="sealed frames on relay links (per-request HTTP/1.1 where a link is refused), plain TCP"; continue ;;
	pqrelay-tls) b=${args[$side]#x-mte-upstream: https://127.0.0.1:}; b=${b%%/*} ;;
	*) b=${b_port_of[$side]} ;;
	esac
	code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "https://127.0.0.1:$b/" || true)
	case $code in
	000) nocert[$side]="a TLS handshake refusal" ;;
	*) nocert[$side]="HTTP $code" ;;
	esac
	leg[$side]="$(tls_leg "$b") with client certificates (a client without one gets ${nocert[$side]})"
	[ "$side" != pqrelay-tls ] || leg[$side]="sealed frames on relay links over ${leg[$side]}; Go to Go: X25519MLKEM768"
	say "$side A↔B: ${leg[$side]}"
done
sizes=
for side in "${pairs[@]}"; do
	extra=()
	[ -z "${args[$side]:-}" ] || extra=(-H "${args[$side]}" -H "x-mte-outbound-token: $token")
	bytes=$(curl -fsS --max-time 5 -o /dev/null -w '%{size_download}' -X POST --data-binary @"$pki/ca.crt" \
		"${extra[@]}" "${url[$side]}/api/echo")
	say "body through $side: $bytes bytes"
	[ -z "$sizes" ] || [ "$sizes" = "$bytes" ] || die "the pairs answered different bodies"
	sizes=$bytes
done

# ----------------------------------------------------------- measurement

clk=$(getconf CLK_TCK)

# ticks PID: utime stime cutime cstime of one process (all its threads).
ticks() {
	local line rest fields
	if ! read -r line 2>/dev/null <"/proc/$1/stat"; then
		echo "0 0 0 0"
		return
	fi
	rest=${line##*) }
	read -r -a fields <<<"$rest"
	echo "${fields[11]} ${fields[12]} ${fields[13]} ${fields[14]}"
}

# tree_ticks PID...: user and system ticks of these processes; reaped
# children (cutime, cstime) count too, so an exited worker's time is not
# lost. The process trees are listed once, up front, so that a read takes
# a few ms; run_side checks after each side that they have not changed.
tree_ticks() {
	local u=0 s=0 t pid
	for pid in "$@"; do
		read -r -a t <<<"$(ticks "$pid")"
		u=$((u + t[0] + t[2]))
		s=$((s + t[1] + t[3]))
	done
	echo "$u $s"
}

# snap SIDE: one line of counters: upstream, the side's A, its B, the
# loader (user system each), then the box's busy, steal and total ticks.
# The loader is read first: it exits moments after its measured phase.
snap() {
	local cpu loader
	loader=$(tree_ticks "$loader_pid")
	read -r -a cpu </proc/stat
	# cpu user nice system idle iowait irq softirq steal ...
	# shellcheck disable=SC2086
	echo "$(tree_ticks "$up_pid") $(tree_ticks ${tree_a[$1]:-}) $(tree_ticks ${tree_b[$1]:-}) $loader" \
		"$((cpu[1] + cpu[2] + cpu[3] + cpu[6] + cpu[7] + cpu[8])) ${cpu[8]}" \
		"$((cpu[1] + cpu[2] + cpu[3] + cpu[4] + cpu[5] + cpu[6] + cpu[7] + cpu[8]))"
}

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
warm_us=$(awk -v s="$warm_s" 'BEGIN { printf "%d", s * 1e6 }')
dur_us=$(awk -v s="$dur_s" 'BEGIN { printf "%d", s * 1e6 }')

# nap_until T: naps until now_us reaches T.
nap_until() {
	local left=$(($1 - $(now_us)))
	[ "$left" -le 0 ] || nap "$(awk -v u="$left" 'BEGIN { printf "%.6f", u / 1e6 }')"
}

# loader_ticks FILE: user and system clock ticks from the output of the
# times builtin (its second line: the shell's reaped children).
loader_ticks() {
	awk -v clk="$clk" '
		function sec(t,   m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); return m * 60 + t }
		NR == 2 { printf "%.3f %.3f", sec($1) * clk, sec($2) * clk }' "$1"
}

records=$work/records.tsv
: >"$records"
dead=

# run_side TIER SIDE URL [LOADER ARGS...]: one loader run of one side,
# with the CPU counters read at the start and end of its measured phase.
run_side() {
	local n=$1 side=$2 url=$3 out=$work/run-$1-$2 rc=0 s0 s1 pid t0 loader_total
	shift 3
	say "[$n conns] $side"
	# The loader exits moments after its measured phase, often before the
	# last read; so it runs under a subshell whose only child it is, and
	# which writes the loader's total CPU time (times) when it has exited.
	(
		./bin/pqrelay-loadtest run --control "$url" "$@" -c "$n" -d "$DURATION" --warmup "$WARMUP" \
			--timeout "$TIMEOUT" --size "$SIZE" --verify auto --json "$out.json" >"$out.md" 2>"$out.err" &
		echo $! >"$out.pid"
		status=0
		wait $! || status=$?
		times >"$out.times"
		exit "$status"
	) &
	loader_sub=$!
	for _ in $(seq 500); do
		[ -s "$out.pid" ] && break
		sleep 0.01
	done
	loader_pid=$(cat "$out.pid")
	# The loader prints "… starting" just before its clock starts; the
	# counters are read on that clock, at the end of the warm-up and of the
	# measured phase (a read takes the same few ms both times).
	for _ in $(seq 1000); do
		grep -q ' starting$' "$out.err" 2>/dev/null && break
		kill -0 "$loader_pid" 2>/dev/null || break
		sleep 0.01
	done
	t0=$(now_us)
	nap_until $((t0 + warm_us))
	s0=$(snap "$side")
	nap_until $((t0 + warm_us + dur_us))
	s1=$(snap "$side")
	wait "$loader_sub" || rc=$?
	loader_pid= loader_sub=
	loader_total=$(loader_ticks "$out.times")
	if [ ! -s "$out.json" ]; then
		cat "$out.err" >&2
		die "[$n conns] $side: the loader wrote no results (exit $rc)"
	fi
	jq -r --arg n "$n" --arg side "$side" --arg rc "$rc" --arg s0 "$s0" --arg s1 "$s1" --arg ld "$loader_total" '
		.tiers[0].control as $r
		| ($s0 | split(" ") | map(tonumber)) as $a
		| ($ld | split(" ") | map(tonumber)) as $l
		| ($s1 | split(" ") | map(tonumber) | .[6] = $l[0] | .[7] = $l[1]) as $b
		| [$n, $side, $rc, $r.requests, $r.rps, $r.p50_ms, $r.p99_ms, $r.errors, $r.timeouts,
		   $r.non_2xx, $r.bad_body, $r.duration_s]
		  + [range(0; $a | length) as $i | $b[$i] - $a[$i]]
		| @tsv' "$out.json" >>"$records"
	local p a
	for p in "${pairs[@]}"; do
		# shellcheck disable=SC2086
		for pid in "$up_pid" ${tree_a[$p]} ${tree_b[$p]}; do
			if ! kill -0 "$pid" 2>/dev/null; then
				dead="process $pid ($p) died during [$n conns] $side"
			fi
		done
		case $p in
		nginx | haproxy)
			a=${tree_a[$p]%% *} b=${tree_b[$p]%% *}
			if [ "${tree_a[$p]} ${tree_b[$p]}" != "$a $(children "$a") $b $(children "$b")" ]; then
				dead="the $p process trees changed during [$n conns] $side"
			fi
			;;
		esac
	done
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
say "tiers $CONNS: control, ${pairs[*]}; $WARMUP warm-up + $DURATION each, $SIZE bodies"
i=0
IFS=, read -r -a tiers <<<"$CONNS"
for n in "${tiers[@]}"; do
	run_side "$n" control "$upstream"
	# Rotate which pair goes first, so none always follows another.
	order=("${pairs[@]:i % ${#pairs[@]}}" "${pairs[@]:0:i % ${#pairs[@]}}")
	for side in "${order[@]}"; do
		if [ -n "${args[$side]:-}" ]; then
			run_side "$n" "$side" "${url[$side]}" --header "${args[$side]}" --header "x-mte-outbound-token: $token"
		else
			run_side "$n" "$side" "${url[$side]}"
		fi
		[ -z "$dead" ] || break 2
	done
	i=$((i + 1))
done
ended=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---------------------------------------------------------------- report

stamp=$(date -u +%Y-%m-%d-%H%M)
results=$here/results-$stamp.md
k=2
while [ -e "$results" ]; do
	results=$here/results-$stamp-$k.md
	k=$((k + 1))
done
dirty=$(git status --porcelain --untracked-files=no -- . ':!benchmarks/pair' 2>/dev/null | awk '{ print $2 }' | paste -sd ' ' -)
versions=
[ -z "${want[nginx]:-}" ] || versions+="| nginx | $("${proxy_bin[nginx]}" -v 2>&1 | head -n 1) ($("${proxy_bin[nginx]}" -V 2>&1 | sed -n 's/^built with //p')) |"$'\n'
[ -z "${want[haproxy]:-}" ] || versions+="| HAProxy | $("${proxy_bin[haproxy]}" -v 2>&1 | sed -n 1p) |"$'\n'
legs=
for side in "${pairs[@]}"; do legs+="$side: ${leg[$side]}; "; done
command="DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS SIZE=$SIZE TIMEOUT=$TIMEOUT PAIRS=$PAIRS PROXY_WORKERS=$PROXY_WORKERS KEEPALIVE=$KEEPALIVE benchmarks/pair/run.sh"

report() {
	cat <<-EOF
		# pqrelay pairs vs mTLS proxy pairs — $started

		Command: \`$command\`

		| | |
		|---|---|
		| Machine | $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; shared with other engineers' builds and tests |
		| pqrelay | commit $(git rev-parse --short HEAD)${dirty:+, built with uncommitted changes in: $dirty} |
		| Go | $(go version | sed 's/^go version //') |
		${versions}| openssl | $(openssl version) |
		| Proxy workers | \`$PROXY_WORKERS\` per proxy (nginx worker_processes, HAProxy nbthread); upstream keepalive $KEEPALIVE idle connections |
		| A↔B leg | ${legs% } |
		| Load | closed loop, POST $SIZE, response $SIZE (CRC-checked), warm-up $WARMUP, measured $DURATION per side, timeout $TIMEOUT |
		| Window | $started – $ended |

		Every side of a tier runs in this one run on the same upstream process;
		the order of the pairs rotates from tier to tier. **Absolute numbers on
		a shared 2-core machine are noise; the ratios within a tier are what
		counts.** CPU is utime + stime from /proc/<pid>/stat over the measured
		phase only (read after the warm-up and at its end; clock tick
		$((1000000 / clk)) µs), divided by the requests completed in it. *Pair CPU*
		is the two relays' or the two proxies' processes (masters and workers),
		never the upstream or the loader.

	EOF
	awk -F'\t' -v clk="$clk" -f "$here/report.awk" "$records"
	if [ -n "$dead" ]; then
		printf '\n**The run stopped early: %s.**\n' "$dead"
	fi
	local name log
	printf '\n## Server logs (last lines)\n\n'
	for name in "${names[@]}"; do
		log=$work/$name.log
		case $name in nginx-*) log=$work/$name/error.log ;; esac
		printf '* %s, lines: %s' "$name" "$(wc -l <"$log" 2>/dev/null || echo 0)"
		if [ -s "$log" ]; then
			printf '\n\n  ```\n'
			tail -n 6 "$log" | cut -c1-300 | sed 's/^/  /'
			printf '  ```\n'
		fi
		printf '\n'
	done
}
report >"$results"
say "wrote $results"

if [ "$README" = 1 ]; then
	readme=$here/README.md
	marker='<!-- Everything below this line is written by run.sh. -->'
	head=
	if [ -f "$readme" ] && grep -qF "$marker" "$readme"; then
		head=$(sed "/^$marker\$/,\$d" "$readme")
	else
		head="# benchmarks/pair"
	fi
	{
		printf '%s\n\n%s\n\n' "$head" "$marker"
		printf 'Latest run: [%s](%s)\n\n' "$(basename "$results")" "$(basename "$results")"
		sed '1,2d' "$results" | sed 's/^## /### /'
	} >"$readme.tmp"
	mv "$readme.tmp" "$readme"
	say "refreshed $readme"
fi

cat "$results"
finished=1
[ -z "$dead" ] || exit 1
