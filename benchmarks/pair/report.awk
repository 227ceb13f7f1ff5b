# benchmarks/pair/report.awk — turns run.sh's records (one tab-separated
# line per tier and side) into the markdown tables of a results file.
# Variable: clk (clock ticks per second).
#
# Columns: 1 conns, 2 side (control, pqrelay, pqrelay-tls, nginx, haproxy),
# 3 loader exit, 4 requests, 5 req/s, 6 p50 ms, 7 p99 ms, 8 errors,
# 9 timeouts, 10 non-2xx, 11 bad body, 12 measured s; then CPU ticks over
# the measured phase, user and system each: 13-14 upstream, 15-16 the
# side's A, 17-18 its B, 19-20 loader (up to its exit, a moment after the
# measured phase); 21 box busy, 22 box steal, 23 box total.

function us(t, n) { return n > 0 ? t * 1e6 / clk / n : 0 }
function fmt(x, d) { return sprintf("%." d "f", x) }
function commas(x,   s, r) {
	s = sprintf("%.0f", x)
	r = ""
	while (length(s) > 3) {
		r = "," substr(s, length(s) - 2) r
		s = substr(s, 1, length(s) - 3)
	}
	return s r
}
function ratio(a, b) { return b > 0 ? fmt(a / b, 2) : "n/a" }

{
	n = $1; side = $2
	if (!(n in seen)) { seen[n] = 1; order[++tiers] = n }
	if (!(side in known)) { known[side] = 1; sides[++nsides] = side }
	k = n SUBSEP side
	have[k] = 1
	rc[k] = $3; req[k] = $4; rps[k] = $5; p50[k] = $6; p99[k] = $7
	fail[k] = $8 + $9 + $10 + $11
	failtxt[k] = $8 "/" $9 "/" $10 "/" $11
	up[k] = $13 + $14
	a_u[k] = $15; a_s[k] = $16; b_u[k] = $17; b_s[k] = $18
	ld[k] = $19 + $20
	busy[k] = $21; steal[k] = $22; total[k] = $23
	ours[k] = $13 + $14 + $15 + $16 + $17 + $18 + $19 + $20
	pair[k] = $15 + $16 + $17 + $18
	cpu[k] = us(pair[k], req[k])
}

END {
	label["control"] = "control API"; label["pqrelay"] = "pqrelay pair (plain A↔B)"
	label["pqrelay-tls"] = "pqrelay pair, mTLS A↔B"; label["nginx"] = "nginx mTLS pair"; label["haproxy"] = "HAProxy mTLS pair"
	nq = 0
	if ("pqrelay-tls" in known) ours_[++nq] = "pqrelay-tls"
	if ("pqrelay" in known) ours_[++nq] = "pqrelay"
	np = 0
	if ("nginx" in known) proxies[++np] = "nginx"
	if ("haproxy" in known) proxies[++np] = "haproxy"

	print "## Ratios (same tier, same run)"
	print ""
	print "Each pqrelay pair against each proxy pair: requests per second (higher is better) and pair CPU per request (lower is better). The bar is against the cheaper proxy pair of the tier: at most 0.67× its CPU per request, at least 1.2× its requests per second, p99 no worse, no failures."
	print ""
	hdr = "| Conns | Pair |"; sep = "|---|---|"
	for (j = 1; j <= np; j++) {
		hdr = hdr " ÷ " proxies[j] " req/s | ÷ " proxies[j] " CPU/req |"
		sep = sep "---|---|"
	}
	print hdr " p99 − cheaper proxy (ms) | Bar |"
	print sep "---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]
		cheap = ""
		for (j = 1; j <= np; j++) {
			x = n SUBSEP proxies[j]
			if ((x in have) && (cheap == "" || cpu[x] < cpu[n SUBSEP cheap])) cheap = proxies[j]
		}
		for (i = 1; i <= nq; i++) {
			q = n SUBSEP ours_[i]
			if (!(q in have)) continue
			line = "| " n " | " label[ours_[i]] " |"
			for (j = 1; j <= np; j++) {
				x = n SUBSEP proxies[j]
				if (x in have) line = line " **" ratio(rps[q], rps[x]) "** | **" ratio(cpu[q], cpu[x]) "** |"
				else line = line " – | – |"
			}
			if (cheap == "") { print line " – | – |"; continue }
			x = n SUBSEP cheap
			met = (cpu[q] <= 0.67 * cpu[x] && rps[q] >= 1.2 * rps[x] && p99[q] <= p99[x] && fail[q] == 0 && rc[q] == 0) ? "met" : "**not met**"
			printf "%s %+.2f | %s |\n", line, p99[q] - p99[x], met
		}
	}

	print ""
	print "## Per side"
	print ""
	print "Failed = errors / timeouts / non-2xx / bad body. CPU in µs per completed request."
	print ""
	print "| Conns | Side | Requests | Req/s | p50 ms | p99 ms | Failed | Pair CPU | Upstream CPU | Loader CPU |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]
		for (s = 1; s <= nsides; s++) {
			k = n SUBSEP sides[s]
			if (!(k in have)) continue
			pc = sides[s] == "control" ? "–" : fmt(cpu[k], 1)
			f = failtxt[k]
			if (fail[k] > 0) f = "**" f "**"
			if (rc[k] != 0) f = f " (loader exit " rc[k] ")"
			printf "| %s | %s | %s | %s | %.2f | %.2f | %s | %s | %.1f | %.1f |\n", n, label[sides[s]], commas(req[k]),
				commas(rps[k]), p50[k], p99[k], f, pc, us(up[k], req[k]), us(ld[k], req[k])
		}
	}

	print ""
	print "## Where each pair's CPU goes: user / system, µs per request"
	print ""
	print "System time is the kernel working for the process: socket reads and writes, epoll, TCP on loopback."
	print ""
	print "| Conns | Pair | A user | A sys | B user | B sys | sys share |"
	print "|---|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]
		for (s = 1; s <= nsides; s++) {
			k = n SUBSEP sides[s]
			if (!(k in have) || sides[s] == "control") continue
			printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", n, label[sides[s]],
				us(a_u[k], req[k]), us(a_s[k], req[k]), us(b_u[k], req[k]), us(b_s[k], req[k]),
				(pair[k] > 0 ? 100 * (a_s[k] + b_s[k]) / pair[k] : 0)
		}
	}

	print ""
	print "## Noise: how busy the box was during each measured phase"
	print ""
	print "Percent of the whole machine's CPU time. *This run* is the upstream, the pair under load and the loader; *others* is everything else on the box (other engineers' work, and the idle pairs), which competes with the run."
	print ""
	print "| Conns | Side | Box busy | This run | Others | Steal |"
	print "|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]
		for (s = 1; s <= nsides; s++) {
			k = n SUBSEP sides[s]
			if (!(k in have) || total[k] <= 0) continue
			o = busy[k] - ours[k]; if (o < 0) o = 0
			printf "| %s | %s | %.0f%% | %.0f%% | %.0f%% | %.1f%% |\n", n, label[sides[s]], 100 * busy[k] / total[k],
				100 * ours[k] / total[k], 100 * o / total[k], 100 * steal[k] / total[k]
		}
	}
}
