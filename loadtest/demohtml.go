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

const colorReference = "#777777" // grey: published, not measured here

// WriteDemoHTML writes the demo's report: self-contained (inline CSS and
// SVG, nothing fetched), the reference comparison first, then the cost
// view, with the environment and how to read it at the top.
func WriteDemoHTML(w io.Writer, d Demo) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pqrelay demo</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; background: #fff; max-width: 1080px; margin: 24px auto; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 30px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p { margin: 6px 0; }
p.howto { background: #f4f7fb; border-left: 4px solid #0072B2; padding: 8px 12px; font-size: 15px; }
p.headline { font-size: 17px; font-weight: 600; }
p.note { color: #555; font-size: 13px; }
ul.env { font-size: 14px; margin: 4px 0; padding-left: 20px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { flex: 1 1 100%; max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; width: 100%; table-layout: fixed; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 6px; border-bottom: 1px solid #e6e6e6; text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
th:nth-child(1), td:nth-child(1) { text-align: left; width: 9%; }
th:nth-child(2), td:nth-child(2) { text-align: left; width: 19%; }
thead th { border-bottom: 2px solid #999; }
tr.first td { border-top: 2px solid #bbb; }
tr.result td { font-weight: 600; background: #f5f5f5; }
tr.published td { color: #666; font-style: italic; }
tr.published-result td { color: #666; font-style: italic; font-weight: 600; background: #fafafa; }
</style>
</head>
<body>
<h1>pqrelay demo</h1>
`)
	if g := d.Users.Meta.Generated; !g.IsZero() {
		b.WriteString(`<p class="note">Measured ` + g.UTC().Format("2006-01-02 15:04 MST") + `</p>` + "\n")
	}
	b.WriteString(`<p class="howto">` + html.EscapeString(HowToRead) + "</p>\n")
	b.WriteString("<h2>Environment</h2>\n<ul class=\"env\" id=\"environment\">\n")
	for _, line := range environmentLines(d)[1:] {
		b.WriteString("<li>" + html.EscapeString(strings.TrimSpace(line)) + "</li>\n")
	}
	b.WriteString("</ul>\n")

	b.WriteString("<h2 id=\"reference\">" + html.EscapeString(usersHeading(d.Users.Meta)) + "</h2>\n")
	if h := usersHeadline(d.Users); h != "" {
		b.WriteString(`<p class="headline">` + html.EscapeString(h) + "</p>\n")
	}
	b.WriteString("<div class=\"charts\">\n")
	writeKeptChart(&b, d.Users)
	writeAddedChart(&b, d.Users)
	b.WriteString("</div>\n")
	b.WriteString(`<p class="note">Users on a logarithmic axis. Grey: ` + html.EscapeString(ReferenceSource) +
		`, for its own relay at 100-300 users; it published no larger tier. Latency added is drawn on a logarithmic axis; ` +
		`differences at or below 0.1 ms (or negative) are drawn at 0.1 ms.</p>` + "\n")
	b.WriteString(`<p class="note">` + html.EscapeString(usersNote(d.Users.Meta)) + "</p>\n")
	writeHTMLTable(&b, usersTable(d.Users), "users")

	b.WriteString("<h2 id=\"cost\">" + html.EscapeString(costHeading(d.Cost.Meta)) + "</h2>\n")
	if h := costHeadline(d); h != "" {
		b.WriteString(`<p class="headline">` + html.EscapeString(h) + "</p>\n")
	}
	b.WriteString("<div class=\"charts\">\n")
	writeCostChart(&b, d.Cost)
	b.WriteString("</div>\n")
	b.WriteString(`<p class="note">CPU time (user and system) of the processes serving each side during its measured phase, ` +
		`read from /proc, divided by its successful requests: for the control API its own process, for pqrelay relay A and relay B ` +
		`together (the API behind them is not counted). The loader's own CPU per request is in the last column. The req/s ratio ` +
		`is not a verdict on a real API: here the loader, the API and both relays compete for the same CPUs.</p>` + "\n")
	writeHTMLTable(&b, costTable(d.Cost), "cost")
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHTMLTable(b *strings.Builder, t table, id string) {
	b.WriteString(`<table id="` + id + `-table">` + "\n<thead><tr>")
	for _, h := range t.head {
		b.WriteString("<th>" + html.EscapeString(h) + "</th>")
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for i, r := range t.rows {
		var class []string
		if r[0] != "" && i > 0 {
			class = append(class, "first")
		}
		if k := t.kinds[i]; k != "" {
			class = append(class, strings.ReplaceAll(k, " ", "-"))
		}
		b.WriteString("<tr")
		if len(class) > 0 {
			b.WriteString(` class="` + strings.Join(class, " ") + `"`)
		}
		b.WriteString(">")
		for j := 0; j < len(r); j++ {
			// Both sides ran for the same time, so the share of requests
			// and of req/s are one number: one cell, not two.
			if t.kinds[i] == "result" && j == 2 && len(r) > 3 && r[2] == r[3] && t.head[3] == "req/s" {
				b.WriteString(`<td colspan="2" style="text-align:center">` + html.EscapeString(r[2]) + " of requests and req/s</td>")
				j++
				continue
			}
			b.WriteString("<td>" + html.EscapeString(r[j]) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
}

// chart is one SVG panel with x proportional (linear or logarithmic) and y
// linear or logarithmic.
type chart struct {
	id, title, xTitle, yTitle string
	xs                        []float64 // tick positions (tiers)
	xLog, yLog                bool
	yMin, yMax                float64
	yTicks                    []float64
	yLabel                    func(float64) string
	series                    []chartSeries
}

type chartSeries struct {
	name, color, marker string
	dashed              bool
	pts                 [][2]float64
	label               func(x, y float64) string
}

const (
	chartW, chartH                   = 1040.0, 330.0
	chartL, chartR, chartT, chartB   = 80.0, 24.0, 50.0, 52.0
	chartPlotW, chartPlotH           = chartW - chartL - chartR, chartH - chartT - chartB
	chartLegendRow, chartLegendWidth = 18.0, 240.0
)

func (c *chart) px(x float64) float64 {
	lo, hi := c.xs[0], c.xs[len(c.xs)-1]
	f := 0.5
	if hi > lo {
		if c.xLog {
			f = (math.Log10(x) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		} else {
			f = (x - lo) / (hi - lo)
		}
	}
	pad := chartPlotW * 0.05
	return chartL + pad + f*(chartPlotW-2*pad)
}

func (c *chart) py(y float64) float64 {
	y = math.Max(c.yMin, math.Min(c.yMax, y))
	var f float64
	if c.yLog {
		f = (math.Log10(y) - math.Log10(c.yMin)) / (math.Log10(c.yMax) - math.Log10(c.yMin))
	} else {
		f = (y - c.yMin) / (c.yMax - c.yMin)
	}
	return chartT + chartPlotH - f*chartPlotH
}

func (c *chart) write(b *strings.Builder) {
	if len(c.xs) == 0 {
		return
	}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" id="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">`+"\n",
		c.id, chartW, chartH, chartW, chartH, html.EscapeString(c.title))
	fmt.Fprintf(b, `<text x="%.1f" y="18" font-size="15" font-weight="600" fill="%s">%s</text>`+"\n", chartL-60, colorText, html.EscapeString(c.title))
	// legend: two per row under the title
	for i, s := range c.series {
		x := chartL - 60 + float64(i%4)*chartLegendWidth
		y := 36 + float64(i/4)*chartLegendRow
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`, x, y, x+24, y, s.color, dash)
		marker(b, s.marker, x+12, y, s.color, "")
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="13" fill="%s">%s</text>`+"\n", x+30, y+4.5, colorText, html.EscapeString(s.name))
	}
	bottom := chartT + chartPlotH
	for _, v := range c.yTicks {
		y := c.py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", chartL, y, chartL+chartPlotW, y, colorGrid)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="12" fill="%s">%s</text>`+"\n", chartL-6, y+4, colorAxis, c.yLabel(v))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", chartL, bottom, chartL+chartPlotW, bottom, colorAxis)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", chartL, chartT, chartL, bottom, colorAxis)
	for _, x := range c.xs {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12" fill="%s">%s</text>`+"\n",
			c.px(x), bottom+17, colorAxis, FormatCount(int64(x)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13" fill="%s">%s</text>`+"\n",
		chartL+chartPlotW/2, bottom+38, colorText, html.EscapeString(c.xTitle))
	cy := chartT + chartPlotH/2
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13" fill="%s" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		chartL-52, cy, colorText, chartL-52, cy, html.EscapeString(c.yTitle))
	for _, s := range c.series {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(b, `<g class="series" data-series="%s" fill="none" stroke="%s" stroke-width="2.5"%s>`, html.EscapeString(s.name), s.color, dash)
		var path strings.Builder
		for i, p := range s.pts {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, c.px(p[0]), c.py(p[1]))
		}
		if path.Len() > 0 {
			fmt.Fprintf(b, `<path d="%s" stroke-linejoin="round"/>`, strings.TrimSpace(path.String()))
		}
		for _, p := range s.pts {
			marker(b, s.marker, c.px(p[0]), c.py(p[1]), s.color, s.label(p[0], p[1]))
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
}

func marker(b *strings.Builder, kind string, x, y float64, color, title string) {
	t := ""
	if title != "" {
		t = "<title>" + html.EscapeString(title) + "</title>"
	}
	switch kind {
	case "square":
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="9" height="9" fill="%s" stroke="#fff" stroke-width="1.5" stroke-dasharray="none">%s</rect>`, x-4.5, y-4.5, color, t)
	case "diamond":
		fmt.Fprintf(b, `<path d="M%.1f %.1f l6 6 l-6 6 l-6 -6 z" fill="%s" stroke="#fff" stroke-width="1.5" stroke-dasharray="none">%s</path>`, x, y-6, color, t)
	default:
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#fff" stroke-width="1.5" stroke-dasharray="none">%s</circle>`, x, y, color, t)
	}
}

func tierXs(r Report) []float64 {
	var xs []float64
	for _, t := range r.Tiers {
		xs = append(xs, float64(t.Connections))
	}
	return xs
}

// usersXs is every user count measured or published.
func usersXs(r Report) []float64 {
	var xs []float64
	for _, n := range usersTiers(r) {
		xs = append(xs, float64(n))
	}
	return xs
}

// writeKeptChart: share of the control API's requests the relay kept,
// ours against the published figures.
func writeKeptChart(b *strings.Builder, r Report) {
	c := chart{id: "chart-kept", title: "Requests kept, % of the control API", xTitle: "Users (log scale)",
		yTitle: "% of control", xs: usersXs(r), xLog: true,
		yLabel: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" }}
	ours := chartSeries{name: "pqrelay, this machine", color: colorRelay, marker: "circle",
		label: func(x, y float64) string { return FormatCount(int64(x)) + " users: " + formatPct(y) }}
	lowest := 100.0
	for _, t := range r.Tiers {
		if cmp, ok := t.Compare(); ok && !math.IsNaN(cmp.RequestsPct) {
			ours.pts = append(ours.pts, [2]float64{float64(t.Connections), cmp.RequestsPct})
			lowest = math.Min(lowest, cmp.RequestsPct)
		}
	}
	ref := chartSeries{name: "reference relay, published", color: colorReference, marker: "square", dashed: true,
		label: func(x, y float64) string { return FormatCount(int64(x)) + " users (published): " + trimFloat(y) + "%" }}
	for _, t := range Reference {
		ref.pts = append(ref.pts, [2]float64{float64(t.Users), t.RequestsPct})
		lowest = math.Min(lowest, t.RequestsPct)
	}
	c.yMin = math.Max(0, math.Floor((lowest-2)/10)*10)
	c.yMax = 102
	for _, p := range ours.pts {
		c.yMax = math.Max(c.yMax, math.Ceil(p[1]/5)*5+2)
	}
	for v := c.yMin; v <= 100; v += 5 {
		c.yTicks = append(c.yTicks, v)
	}
	c.series = []chartSeries{ours, ref}
	c.write(b)
}

// writeAddedChart: median and p99 latency the relay adds, ours against the
// published figures, on a logarithmic axis so that both are visible.
func writeAddedChart(b *strings.Builder, r Report) {
	const floor = 0.1
	c := chart{id: "chart-added", title: "Latency added by the relay, ms", xTitle: "Users (log scale)",
		yTitle: "ms added (log scale)", xs: usersXs(r), xLog: true, yLog: true, yMin: floor, yMax: 1000,
		yTicks: []float64{0.1, 1, 10, 100, 1000},
		yLabel: func(v float64) string { return trimFloat(v) }}
	lbl := func(what string) func(x, y float64) string {
		return func(x, y float64) string {
			return FormatCount(int64(x)) + " users, " + what + ": " + strconv.FormatFloat(y, 'f', 2, 64) + " ms"
		}
	}
	p50 := chartSeries{name: "pqrelay median", color: colorRelay, marker: "circle", label: lbl("median added")}
	p99 := chartSeries{name: "pqrelay p99", color: colorP99, marker: "diamond", label: lbl("p99 added")}
	maxV := 1.0
	for _, t := range r.Tiers {
		if cmp, ok := t.Compare(); ok {
			x := float64(t.Connections)
			p50.pts = append(p50.pts, [2]float64{x, math.Max(floor, ms(cmp.P50))})
			p99.pts = append(p99.pts, [2]float64{x, math.Max(floor, ms(cmp.P99))})
			maxV = math.Max(maxV, math.Max(ms(cmp.P50), ms(cmp.P99)))
		}
	}
	r50 := chartSeries{name: "reference median, published", color: colorReference, marker: "square", dashed: true, label: lbl("published median added")}
	r99 := chartSeries{name: "reference p99, published", color: "#AAAAAA", marker: "square", dashed: true, label: lbl("published p99 added")}
	for _, t := range Reference {
		x := float64(t.Users)
		r50.pts = append(r50.pts, [2]float64{x, math.Max(floor, t.DP50)})
		r99.pts = append(r99.pts, [2]float64{x, math.Max(floor, t.DP99)})
		maxV = math.Max(maxV, math.Max(t.DP50, t.DP99))
	}
	for c.yMax < maxV {
		c.yMax *= 10
		c.yTicks = append(c.yTicks, c.yMax)
	}
	c.series = []chartSeries{p50, p99, r50, r99}
	c.write(b)
}

// writeCostChart: CPU per request of the pair and of the control API
// against connections.
func writeCostChart(b *strings.Builder, r Report) {
	c := chart{id: "chart-cost", title: "CPU per request, µs", xTitle: "Connections", yTitle: "µs of CPU per request",
		xs: tierXs(r), yLabel: func(v float64) string { return trimFloat(v) }}
	lbl := func(what string) func(x, y float64) string {
		return func(x, y float64) string {
			return FormatCount(int64(x)) + " connections, " + what + ": " + strconv.FormatFloat(y, 'f', 1, 64) + " µs"
		}
	}
	pair := chartSeries{name: "pqrelay pair (A+B)", color: colorRelay, marker: "circle", label: lbl("pair")}
	api := chartSeries{name: "control API", color: colorControl, marker: "square", label: lbl("control API")}
	maxV := 0.0
	us := func(res *Result) (float64, bool) {
		if res == nil || !res.CPU.Measured || res.Requests == 0 {
			return 0, false
		}
		return float64(res.PerRequest(res.CPU.Target)) / float64(time.Microsecond), true
	}
	for _, t := range r.Tiers {
		x := float64(t.Connections)
		if v, ok := us(t.Relay); ok {
			pair.pts = append(pair.pts, [2]float64{x, v})
			maxV = math.Max(maxV, v)
		}
		if v, ok := us(t.Control); ok {
			api.pts = append(api.pts, [2]float64{x, v})
			maxV = math.Max(maxV, v)
		}
	}
	top, step := niceScale(maxV * 1.1)
	c.yMax = top
	for v := 0.0; v <= top+step/2; v += step {
		c.yTicks = append(c.yTicks, v)
	}
	c.series = []chartSeries{pair, api}
	c.write(b)
}
