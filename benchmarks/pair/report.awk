# benchmarks/pair/report.awk — turns run.sh's records (one tab-separated
# line per tier and side) into the markdown tables of a results file.
# Variables: clk (clock ticks per second), proxy (nginx or haproxy).
#
# Columns: 1 conns, 2 side, 3 loader exit, 4 requests, 5 req/s, 6 p50 ms,
# 7 p99 ms, 8 errors, 9 timeouts, 10 non-2xx, 11 bad body, 12 measured s;
# then CPU ticks over the measured phase, user and system each:
# 13-14 upstream, 15-16 relay A, 17-18 relay B, 19-20 proxy A, 21-22
# proxy B, 23-24 loader (up to its exit, a moment after the measured
# phase); 25 box busy, 26 box steal, 27 box total.

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
	if (side != "control" && side != "pqrelay") side = "proxy"
	if (!(n in seen)) { seen[n] = 1; order[++tiers] = n }
	k = n SUBSEP side
	have[k] = 1
	rc[k] = $3; req[k] = $4; rps[k] = $5; p50[k] = $6; p99[k] = $7
	fail[k] = $8 + $9 + $10 + $11
	failtxt[k] = $8 "/" $9 "/" $10 "/" $11
	up[k] = $13 + $14
	ra_u[k] = $15; ra_s[k] = $16; rb_u[k] = $17; rb_s[k] = $18
	pa_u[k] = $19; pa_s[k] = $20; pb_u[k] = $21; pb_s[k] = $22
	ld[k] = $23 + $24
	busy[k] = $25; steal[k] = $26; total[k] = $27
	ours[k] = $13 + $14 + $15 + $16 + $17 + $18 + $19 + $20 + $21 + $22 + $23 + $24
	if (side == "pqrelay") pair[k] = $15 + $16 + $17 + $18
	else if (side == "proxy") pair[k] = $19 + $20 + $21 + $22
}

END {
	label["control"] = "control API"; label["pqrelay"] = "pqrelay pair"; label["proxy"] = proxy " mTLS pair"
	sides[1] = "control"; sides[2] = "pqrelay"; sides[3] = "proxy"

	print "## Ratios (same tier, same run)"
	print ""
	print "| Conns | pqrelay ÷ control req/s | " proxy " ÷ control req/s | **pqrelay ÷ " proxy " req/s** | **pqrelay ÷ " proxy " pair CPU/req** | p50 pqrelay − " proxy " (ms) | p99 pqrelay − " proxy " (ms) | Bar (faster, cheaper, no errors) |"
	print "|---|---|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]; c = n SUBSEP "control"; q = n SUBSEP "pqrelay"; x = n SUBSEP "proxy"
		if (!(q in have) || !(x in have)) continue
		cq = us(pair[q], req[q]); cx = us(pair[x], req[x])
		met = (rps[q] > rps[x] && cq < cx && fail[q] == 0 && rc[q] == 0) ? "met" : "**not met**"
		printf "| %s | %s | %s | **%s** | **%s** | %+.2f | %+.2f | %s |\n", n, ratio(rps[q], rps[c]), ratio(rps[x], rps[c]),
			ratio(rps[q], rps[x]), ratio(cq, cx), p50[q] - p50[x], p99[q] - p99[x], met
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
		for (s = 1; s <= 3; s++) {
			k = n SUBSEP sides[s]
			if (!(k in have)) continue
			pc = sides[s] == "control" ? "–" : fmt(us(pair[k], req[k]), 1)
			f = failtxt[k]
			if (fail[k] > 0) f = "**" f "**"
			if (rc[k] != 0) f = f " (loader exit " rc[k] ")"
			lc = fmt(us(ld[k], req[k]), 1)
			printf "| %s | %s | %s | %s | %.2f | %.2f | %s | %s | %.1f | %s |\n", n, label[sides[s]], commas(req[k]),
				commas(rps[k]), p50[k], p99[k], f, pc, us(up[k], req[k]), lc
		}
	}

	print ""
	print "## Where each pair's CPU goes: user / system, µs per request"
	print ""
	print "System time is the kernel working for the process: socket reads and writes, epoll, TCP on loopback."
	print ""
	print "| Conns | relay A user | relay A sys | relay B user | relay B sys | pqrelay sys share | " proxy " A user | " proxy " A sys | " proxy " B user | " proxy " B sys | " proxy " sys share |"
	print "|---|---|---|---|---|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]; q = n SUBSEP "pqrelay"; x = n SUBSEP "proxy"
		if (!(q in have) || !(x in have)) continue
		qs = pair[q] > 0 ? 100 * (ra_s[q] + rb_s[q]) / pair[q] : 0
		xs = pair[x] > 0 ? 100 * (pa_s[x] + pb_s[x]) / pair[x] : 0
		printf "| %s | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", n,
			us(ra_u[q], req[q]), us(ra_s[q], req[q]), us(rb_u[q], req[q]), us(rb_s[q], req[q]), qs,
			us(pa_u[x], req[x]), us(pa_s[x], req[x]), us(pb_u[x], req[x]), us(pb_s[x], req[x]), xs
	}

	print ""
	print "## Noise: how busy the box was during each measured phase"
	print ""
	print "Percent of the whole machine's CPU time. *This run* is the processes above plus the loader; *others* is everything else on the box (other engineers' work), which competes with the run."
	print ""
	print "| Conns | Side | Box busy | This run | Others | Steal |"
	print "|---|---|---|---|---|---|"
	for (t = 1; t <= tiers; t++) {
		n = order[t]
		for (s = 1; s <= 3; s++) {
			k = n SUBSEP sides[s]
			if (!(k in have) || total[k] <= 0) continue
			o = busy[k] - ours[k]; if (o < 0) o = 0
			printf "| %s | %s | %.0f%% | %.0f%% | %.0f%% | %.1f%% |\n", n, label[sides[s]], 100 * busy[k] / total[k],
				100 * ours[k] / total[k], 100 * o / total[k], 100 * steal[k] / total[k]
		}
	}
}
