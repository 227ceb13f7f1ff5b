# scripts/lib.sh — process handling shared by scripts/demo.sh and the
# benchmarks' run.sh scripts. Source it, then call lib_init NAME.
#
# Every process a script starts with `start` runs in the background with
# its output in $work/NAME.log and is stopped by PID when the script exits,
# fails or is interrupted; unless the script set finished=1, the last lines
# of each log are shown, since the failure is usually there. A script with
# more to stop (a loader, a proxy's workers) defines on_cleanup.

# lib_init NAME: the prefix of messages, the scratch directory $work, traps.
lib_init() {
	lib_name=$1
	work=$(mktemp -d "/tmp/pqrelay-$1.XXXXXX")
	servers=() # PIDs of the processes started, in start order
	names=()   # their names, for logs
	finished=0
	nap_pid=
	taken=" "
	# Ports are picked below the kernel's ephemeral range: a port in it can
	# be the local end of anyone's outgoing connection (loaders open
	# thousands), and then our bind fails.
	read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$eph_lo" -gt 12000 ] || eph_lo=61000
	trap lib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

say() { echo "$lib_name: $*" >&2; }

die() {
	say "$*"
	exit 1
}

lib_cleanup() {
	local i
	if declare -F on_cleanup >/dev/null; then on_cleanup; fi
	[ -z "$nap_pid" ] || kill "$nap_pid" 2>/dev/null || true
	for i in "${!servers[@]}"; do kill "${servers[$i]}" 2>/dev/null || true; done
	for i in "${!servers[@]}"; do wait "${servers[$i]}" 2>/dev/null || true; done
	if [ "$finished" = 0 ]; then
		for i in "${!names[@]}"; do
			if [ -s "$work/${names[$i]}.log" ]; then
				echo "--- ${names[$i]} (last lines) ---" >&2
				tail -n 20 "$work/${names[$i]}.log" >&2
			fi
		done
	fi
	rm -rf "$work"
}

# start NAME CMD...: runs CMD in the background, output in $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	servers+=("$!")
	names+=("$name")
}

# free_port: a loopback port nobody listens on now, that this script has
# not handed out yet, below the ephemeral range.
free_port() {
	local port
	for _ in $(seq 200); do
		port=$((10000 + RANDOM % (eph_lo - 10000)))
		case $taken in *" $port "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			taken="$taken$port "
			echo "$port"
			return
		fi
	done
	die "no free loopback port found"
}

# wait_http NAME URL [CURL ARGS...]: polls URL until it answers 2xx, for up
# to 15 s, giving up early if the last process started died.
wait_http() {
	local name=$1 url=$2 pid=${servers[${#servers[@]} - 1]}
	shift 2
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || die "$name exited before it answered"
		if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then
			say "$name is up ($url)"
			return
		fi
		sleep 0.1
	done
	die "$name did not answer $url within 15s"
}

# nap SECONDS: a sleep that a signal interrupts at once (bash runs traps
# between commands, and wait is the one command a signal cuts short).
nap() {
	sleep "$1" &
	nap_pid=$!
	wait "$nap_pid"
	nap_pid=
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
