#!/bin/sh
# ScanJSON (AVX2 kernel, and its pure-Go twin under -tags purego) against
# encoding/json.Valid, fastjson's validator and simdjson-go's Parse on the
# same bodies, in alternating rounds; prints the median CPU time per op of
# each benchmark and the ratios. ROUNDS (default 5), BENCHTIME (default
# 300ms per benchmark and round).
set -eu
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-300ms}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/asm.test" .
go test -c -tags purego -o "$tmp/purego.test" .
round=1
while [ "$round" -le "$ROUNDS" ]; do
	"$tmp/asm.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME" |
		awk '/^Benchmark/ { print $1, $(NF-1) }' >>"$tmp/results"
	"$tmp/purego.test" -test.run '^$' -test.bench 'Scan/ScanJSON/' -test.benchtime "$BENCHTIME" |
		awk '/^Benchmark/ { sub("ScanJSON", "ScanJSON-purego", $1); print $1, $(NF-1) }' >>"$tmp/results"
	round=$((round + 1))
done
echo "| body | ScanJSON CPU µs/op | twin | encoding/json | fastjson | simdjson-go |"
echo "|---|---|---|---|---|---|"
# name: BenchmarkScan/<impl>/<shape>-<size>-<GOMAXPROCS>
sort "$tmp/results" | awk '
{ split($1, f, "/"); impl = f[2]; case_ = f[3]; sub(/-[0-9]+$/, "", case_)
  n[impl SUBSEP case_]++; v[impl SUBSEP case_, n[impl SUBSEP case_]] = $2; cases[case_] = 1; impls[impl] = 1 }
function median(k,   i, j, t, m, a) {
  m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
END {
  for (c in cases) {
    a = median("ScanJSON" SUBSEP c)
    printf "| %s | %.1f | %.2f | %.2f | %.2f | %.2f |\n", c, a / 1000,
      median("ScanJSON-purego" SUBSEP c) / a, median("encoding-json-Valid" SUBSEP c) / a,
      median("fastjson-Validate" SUBSEP c) / a, median("simdjson-go-Parse" SUBSEP c) / a
  }
}' | sort
