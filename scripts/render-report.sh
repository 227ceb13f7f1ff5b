#!/usr/bin/env bash
# render-report.sh REPORT.html OUT.png   (WIDTH=1200 HEIGHT=1600 by default)
#
# Renders a pqrelay-loadtest HTML report to a PNG with headless Chromium,
# so a person (or a review) can look at what users will see. The report is
# self-contained; the flags below also keep Chromium itself off the
# network (no updates, sync or background fetches).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 REPORT.html OUT.png" >&2
	exit 2
fi
report=$1
out=$2
if [ ! -f "$report" ]; then
	echo "render-report: no such file: $report" >&2
	exit 2
fi

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
	echo "render-report: installing chromium" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

abs_report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
case $out in
/*) abs_out=$out ;;
*) abs_out=$(pwd)/$out ;;
esac

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--hide-scrollbars --user-data-dir="$profile" \
	--screenshot="$abs_out" --window-size="${WIDTH:-1200},${HEIGHT:-1600}" \
	"file://$abs_report" >/dev/null 2>&1

if [ ! -s "$abs_out" ]; then
	echo "render-report: chromium wrote no screenshot" >&2
	exit 1
fi
echo "$abs_out"
