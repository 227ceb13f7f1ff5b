package loadtest

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Colours are from the Okabe–Ito palette, which stays distinguishable
// under the common forms of colour blindness; every series also has its
// own marker shape so the charts survive a grey-scale printer.
const (
	colorControl = "#0072B2" // blue
	colorRelay   = "#D55E00" // vermillion
	colorP50     = "#009E73" // bluish green
	colorP90     = "#E69F00" // orange
	colorP99     = "#882255" // wine
	colorGrid    = "#e3e3e3"
	colorAxis    = "#555555"
	colorText    = "#222222"
)

// WriteHTML writes a self-contained report: inline CSS and SVG only, no
// script, font or image fetched from anywhere, so it can be mailed or
// archived and opened offline. It holds a throughput chart (req/s against
// connections, both sides), a latency chart (p50/p90/p99 against
// connections, control and relay in panels side by side on one scale) and
// the per-tier tables with failure counts.
func WriteHTML(w io.Writer, r Report) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pqrelay load test</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; background: #fff; max-width: 1040px; margin: 24px auto; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.meta { color: #555; margin: 0 0 8px; font-size: 14px; }
p.note { color: #555; font-size: 13px; margin: 4px 0 0; }
svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 7px; border-bottom: 1px solid #e3e3e3; text-align: right; white-space: nowrap; }
ul.summary { margin: 8px 0 0; padding-left: 20px; font-size: 15px; }
ul.summary li { margin: 2px 0; }
ul.summary b { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #999; }
tr.result td { font-weight: 600; background: #f5f5f5; }
td.bad { color: #b00020; font-weight: 600; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
</style>
</head>
<body>
<h1>pqrelay load test</h1>
`)
	writeMeta(&b, r.Meta)
	writeSummary(&b, r)

	b.WriteString("<h2>Throughput</h2>\n")
	writeThroughputChart(&b, r)
	b.WriteString("<p class=\"note\">Successful responses per second in the measured phase; higher is better. " +
		"Errors, timeouts, non-2xx and bad bodies are not counted.</p>\n")

	b.WriteString("<h2>Latency</h2>\n")
	writeLatencyChart(&b, r)
	note := "Latency of successful responses, measured from the send time; lower is better. Both panels share one scale."
	if r.Meta.Rate > 0 {
		note = "Latency of successful responses, measured from the intended send time (open loop, corrected for coordinated omission); lower is better. Both panels share one scale."
	}
	b.WriteString("<p class=\"note\">" + note + "</p>\n")

	b.WriteString("<h2>Results per tier</h2>\n")
	for _, t := range r.Tiers {
		writeTierTable(&b, t, r.Meta)
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMeta(b *strings.Builder, m Meta) {
	var parts []string
	if !m.Generated.IsZero() {
		parts = append(parts, "Generated "+m.Generated.UTC().Format("2006-01-02 15:04 MST"))
	}
	method := m.Method
	if method == "" {
		method = DefaultMethod
	}
	parts = append(parts, method+" with a "+FormatSize(m.Size)+" body")
	if m.ExpectSize > 0 {
		parts = append(parts, FormatSize(m.ExpectSize)+" response expected")
	}
	if m.Duration > 0 {
		parts = append(parts, "warm-up "+m.Warmup.String()+", then "+m.Duration.String()+" measured per side and tier")
	}
	if m.Rate > 0 {
		parts = append(parts, "open loop at "+FormatCount(int64(math.Round(m.Rate)))+" req/s")
	} else {
		parts = append(parts, "closed loop")
	}
	b.WriteString("<p class=\"meta\">" + html.EscapeString(strings.Join(parts, " · ")) + "</p>\n")
	var targets []string
	if m.ControlURL != "" {
		targets = append(targets, LabelControl+": "+m.ControlURL)
	}
	if m.RelayURL != "" {
		targets = append(targets, LabelRelay+": "+m.RelayURL)
	}
	if len(targets) > 0 {
		b.WriteString("<p class=\"meta\">" + html.EscapeString(strings.Join(targets, " · ")) + "</p>\n")
	}
}

// writeSummary states the Result row of each tier in words, the answer
// most readers came for.
func writeSummary(b *strings.Builder, r Report) {
	var items []string
	for _, t := range r.Tiers {
		c, ok := t.Compare()
		if !ok {
			continue
		}
		items = append(items, "<li>At <b>"+html.EscapeString(tierTitle(t, r.Meta))+"</b>, "+LabelRelay+" served <b>"+
			formatPct(c.RPSPct)+"</b> of the control API's requests per second; latency against the control API: median <b>"+
			formatDeltaMS(c.P50)+"</b>, p99 "+formatDeltaMS(c.P99)+".</li>")
	}
	if len(items) == 0 {
		return
	}
	b.WriteString("<ul class=\"summary\">\n" + strings.Join(items, "\n") + "\n</ul>\n")
}

// plot is the geometry of one chart panel: a plotting area inside an SVG
// canvas, with tiers spread evenly along x (connection counts such as 100,
// 200, 250, 300, 1000 are categories, not a continuous scale) and a linear
// y axis from zero.
type plot struct {
	left, top, width, height float64
	n                        int // number of tiers
	yMax, yStep              float64
	xTitle                   string
}

func (p plot) x(i int) float64 {
	if p.n <= 1 {
		return p.left + p.width/2
	}
	pad := p.width * 0.06
	return p.left + pad + float64(i)*(p.width-2*pad)/float64(p.n-1)
}

func (p plot) y(v float64) float64 {
	if p.yMax <= 0 {
		return p.top + p.height
	}
	return p.top + p.height - v/p.yMax*p.height
}

// niceScale picks a y maximum and step of the form {1, 2, 2.5, 5}·10^k so
// that about five gridlines cover max.
func niceScale(max float64) (top, step float64) {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1, 0.2
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	top = math.Ceil(max/step-1e-9) * step
	return top, step
}

// tickLabel formats a gridline value with just enough decimals for step.
func tickLabel(v, step float64) string {
	dec := 0
	for s := step; dec < 3 && math.Abs(s-math.Round(s)) > 1e-9; s *= 10 {
		dec++
	}
	if dec == 0 {
		return FormatCount(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// axes draws gridlines, tick labels, the x categories and both axis titles.
func (p plot) axes(b *strings.Builder, tiers []Tier, yTitle string) {
	for i := 0; float64(i)*p.yStep <= p.yMax+p.yStep/2; i++ {
		v := float64(i) * p.yStep
		y := p.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n",
			p.left, y, p.left+p.width, y, colorGrid)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="13" fill="%s">%s</text>`+"\n",
			p.left-8, y+4.5, colorAxis, tickLabel(v, p.yStep))
	}
	bottom := p.top + p.height
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n",
		p.left, bottom, p.left+p.width, bottom, colorAxis)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n",
		p.left, p.top, p.left, bottom, colorAxis)
	for i, t := range tiers {
		x := p.x(i)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n",
			x, bottom, x, bottom+5, colorAxis)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13" fill="%s">%s</text>`+"\n",
			x, bottom+21, colorAxis, FormatCount(int64(t.Connections)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" fill="%s">%s</text>`+"\n",
		p.left+p.width/2, bottom+44, colorText, html.EscapeString(p.xTitle))
	if yTitle == "" {
		return
	}
	cy := p.top + p.height/2
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" fill="%s" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		p.left-80, cy, colorText, p.left-80, cy, html.EscapeString(yTitle))
}

// point is one plotted value; ok is false where the side was not measured
// or had no successes, which leaves a gap rather than a fake zero.
type point struct {
	v  float64
	ok bool
}

// series draws one line with markers and hover titles. Each series is a
// <g class="series"> with data-series and data-metric attributes, which
// the tests (and anyone scraping the report) key on.
func (p plot) series(b *strings.Builder, name, metric, label, color, marker string, tiers []Tier, pts []point, unit func(float64) string) {
	fmt.Fprintf(b, `<g class="series" data-series="%s" data-metric="%s" fill="none" stroke="%s" stroke-width="2.5">`+"\n",
		name, metric, color)
	var path strings.Builder
	pen := false
	for i, pt := range pts {
		if !pt.ok {
			pen = false
			continue
		}
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, p.x(i), p.y(pt.v))
		pen = true
	}
	if path.Len() > 0 {
		fmt.Fprintf(b, `<path d="%s" stroke-linejoin="round"/>`+"\n", strings.TrimSpace(path.String()))
	}
	for i, pt := range pts {
		if !pt.ok {
			continue
		}
		title := html.EscapeString(label + ", " + FormatCount(int64(tiers[i].Connections)) + " connections: " + unit(pt.v))
		x, y := p.x(i), p.y(pt.v)
		switch marker {
		case "square":
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="9" height="9" fill="%s" stroke="#fff" stroke-width="1.5"><title>%s</title></rect>`+"\n",
				x-4.5, y-4.5, color, title)
		case "diamond":
			fmt.Fprintf(b, `<path d="M%.1f %.1f l6 6 l-6 6 l-6 -6 z" fill="%s" stroke="#fff" stroke-width="1.5"><title>%s</title></path>`+"\n",
				x, y-6, color, title)
		default:
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#fff" stroke-width="1.5"><title>%s</title></circle>`+"\n",
				x, y, color, title)
		}
	}
	b.WriteString("</g>\n")
}

type legendItem struct{ label, color, marker string }

// legend draws a row of swatches starting at x, y.
func legend(b *strings.Builder, x, y float64, items []legendItem) {
	b.WriteString(`<g class="legend">` + "\n")
	for _, it := range items {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`+"\n",
			x, y, x+26, y, it.color)
		switch it.marker {
		case "square":
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="9" height="9" fill="%s"/>`+"\n", x+8.5, y-4.5, it.color)
		case "diamond":
			fmt.Fprintf(b, `<path d="M%.1f %.1f l6 6 l-6 6 l-6 -6 z" fill="%s"/>`+"\n", x+13, y-6, it.color)
		default:
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/>`+"\n", x+13, y, it.color)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="14" fill="%s">%s</text>`+"\n",
			x+34, y+5, colorText, html.EscapeString(it.label))
		x += 34 + 8.5*float64(len(it.label)) + 28
	}
	b.WriteString("</g>\n")
}

func sidePoints(tiers []Tier, pick func(Tier) *Result, val func(*Result) float64) []point {
	pts := make([]point, len(tiers))
	for i, t := range tiers {
		if r := pick(t); r != nil && r.Requests > 0 {
			pts[i] = point{v: val(r), ok: true}
		}
	}
	return pts
}

func maxPoint(sets ...[]point) float64 {
	m := 0.0
	for _, s := range sets {
		for _, p := range s {
			if p.ok && p.v > m {
				m = p.v
			}
		}
	}
	return m
}

func pickControl(t Tier) *Result { return t.Control }
func pickRelay(t Tier) *Result   { return t.Relay }

const (
	svgWidth  = 1000
	svgHeight = 420
)

func writeThroughputChart(b *strings.Builder, r Report) {
	rps := func(res *Result) float64 { return res.RPS() }
	control := sidePoints(r.Tiers, pickControl, rps)
	relay := sidePoints(r.Tiers, pickRelay, rps)
	top, step := niceScale(maxPoint(control, relay))
	p := plot{left: 110, top: 60, width: svgWidth - 150, height: svgHeight - 60 - 70, n: len(r.Tiers), yMax: top, yStep: step, xTitle: r.Meta.xTitle()}

	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="throughput" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="Requests per second against concurrent connections" font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(b, `<text x="%.1f" y="24" font-size="17" font-weight="600" fill="%s">Requests per second by connection count</text>`+"\n", p.left, colorText)
	legend(b, p.left, 46, []legendItem{{LabelControl, colorControl, "circle"}, {LabelRelay, colorRelay, "square"}})
	p.axes(b, r.Tiers, "Requests per second (req/s)")
	unit := func(v float64) string { return FormatCount(int64(math.Round(v))) + " req/s" }
	p.series(b, "control", "rps", LabelControl, colorControl, "circle", r.Tiers, control, unit)
	p.series(b, "relay", "rps", LabelRelay, colorRelay, "square", r.Tiers, relay, unit)
	b.WriteString("</svg>\n")
}

func writeLatencyChart(b *strings.Builder, r Report) {
	type metric struct {
		name, label, color, marker string
		get                        func(*Result) time.Duration
	}
	metrics := []metric{
		{"p50", "p50 (median)", colorP50, "circle", func(r *Result) time.Duration { return r.Latency.P50 }},
		{"p90", "p90", colorP90, "square", func(r *Result) time.Duration { return r.Latency.P90 }},
		{"p99", "p99", colorP99, "diamond", func(r *Result) time.Duration { return r.Latency.P99 }},
	}
	sides := []struct {
		name, label string
		pick        func(Tier) *Result
	}{
		{"control", LabelControl, pickControl},
		{"relay", LabelRelay, pickRelay},
	}
	pts := make([][][]point, len(sides))
	var all [][]point
	for si, s := range sides {
		for _, m := range metrics {
			get := m.get
			ps := sidePoints(r.Tiers, s.pick, func(res *Result) float64 { return ms(get(res)) })
			pts[si] = append(pts[si], ps)
			all = append(all, ps)
		}
	}
	top, step := niceScale(maxPoint(all...))

	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="latency" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="Latency percentiles against concurrent connections" font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(b, `<text x="110" y="24" font-size="17" font-weight="600" fill="%s">Latency percentiles by connection count</text>`+"\n", colorText)
	var items []legendItem
	for _, m := range metrics {
		items = append(items, legendItem{m.label, m.color, m.marker})
	}
	legend(b, 110, 46, items)
	const gap = 60
	panelW := (svgWidth - 110 - 30 - gap) / 2.0
	for si, s := range sides {
		left := 110 + float64(si)*(panelW+gap)
		p := plot{left: left, top: 84, width: panelW, height: svgHeight - 84 - 70, n: len(r.Tiers), yMax: top, yStep: step, xTitle: r.Meta.xTitle()}
		fmt.Fprintf(b, `<g class="panel" data-series="%s">`+"\n", s.name)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="15" font-weight="600" fill="%s">%s</text>`+"\n",
			left+panelW/2, p.top-8, colorText, html.EscapeString(s.label))
		title := "Latency (ms)"
		if si > 0 {
			title = "" // the shared axis is titled once, on the left panel
		}
		p.axes(b, r.Tiers, title)
		unit := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " ms" }
		for mi, m := range metrics {
			p.series(b, s.name, m.name, s.label+" "+m.name, m.color, m.marker, r.Tiers, pts[si][mi], unit)
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
}

func writeTierTable(b *strings.Builder, t Tier, m Meta) {
	b.WriteString("<h3>" + html.EscapeString(tierTitle(t, m)) + "</h3>\n")
	b.WriteString("<table>\n<thead><tr><th></th><th># Requests</th><th>Req/second</th><th>Median (ms)</th><th>p90</th><th>p99</th>" +
		"<th>p99.9</th><th>Max</th><th>Errors</th><th>Timeouts</th><th>Non-2xx</th><th>Bad body</th></tr></thead>\n<tbody>\n")
	for _, s := range t.sides() {
		color := colorControl
		if s.label == LabelRelay {
			color = colorRelay
		}
		res := s.res
		b.WriteString(`<tr><td><span class="swatch" style="background:` + color + `"></span>` + html.EscapeString(s.label) + "</td>")
		cells := []string{
			FormatCount(res.Requests), FormatCount(int64(math.Round(res.RPS()))),
			formatMS(res.Latency.P50), formatMS(res.Latency.P90), formatMS(res.Latency.P99),
			formatMS(res.Latency.P999), formatMS(res.Latency.Max),
		}
		for _, c := range cells {
			b.WriteString("<td>" + c + "</td>")
		}
		for _, n := range []int64{res.Errors, res.Timeouts, res.Non2xx, res.BadBody} {
			if n > 0 {
				b.WriteString(`<td class="bad">` + FormatCount(n) + "</td>")
			} else {
				b.WriteString("<td>0</td>")
			}
		}
		b.WriteString("</tr>\n")
	}
	if c, ok := t.Compare(); ok {
		b.WriteString(`<tr class="result"><td>` + LabelResult + "</td><td>" + formatPct(c.RequestsPct) + "</td><td>" +
			formatPct(c.RPSPct) + "</td><td>" + formatDeltaMS(c.P50) + "</td><td>" + formatDeltaMS(c.P90) +
			"</td><td>" + formatDeltaMS(c.P99) + "</td><td></td><td></td><td></td><td></td><td></td><td></td></tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
}
