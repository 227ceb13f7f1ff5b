package loadtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

// sampleDemo is a demo as make demo produces it: the users view at every
// tier of the reference's test and beyond, the cost view with CPU.
func sampleDemo() Demo {
	env := Environment{CPUModel: "Test CPU 9000", CPUs: 2, GoVersion: "go1.26.0", Commit: "0123456789ab", LoadAvg: "0.50 0.40 0.30"}
	side := func(n int, req int64, p50 float64, cpu time.Duration) *Result {
		return &Result{
			Connections: n, Requests: req, Duration: 5 * time.Second,
			Latency: Percentiles{Min: ms3(p50 - 1), P50: ms3(p50), P90: ms3(p50 + 1), P99: ms3(p50 + 3), P999: ms3(p50 + 5), Max: ms3(p50 + 9)},
			CPU:     CPUUsage{Measured: true, Target: cpu, Loader: cpu / 4, Machine: cpu * 2, CPUs: 2},
		}
	}
	users := Report{Meta: Meta{Generated: time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC), Size: 1024, ExpectSize: 1024,
		Warmup: time.Second, Duration: 5 * time.Second, Timeout: 10 * time.Second, Think: time.Second, Ramp: 2 * time.Second, Env: env}}
	for _, n := range []int{100, 200, 250, 300, 1000, 10000} {
		req := int64(n) * 47 / 10
		users.Tiers = append(users.Tiers, Tier{Connections: n,
			Control: side(n, req, 50.8, time.Duration(req)*20*time.Microsecond),
			Relay:   side(n, req-req/200, 51.3, time.Duration(req)*90*time.Microsecond)})
	}
	cost := Report{Meta: Meta{Size: 1024, ExpectSize: 1024, Warmup: time.Second, Duration: 5 * time.Second, Timeout: 5 * time.Second, Env: env}}
	for _, n := range []int{100, 200, 300} {
		cost.Tiers = append(cost.Tiers, Tier{Connections: n,
			Control: side(n, 250000, 1.4, 250000*9*time.Microsecond),
			Relay:   side(n, 60000, 6, 60000*time.Duration(50+n/10)*time.Microsecond)})
	}
	return Demo{Users: users, Cost: cost}
}

// demoMustHave is what the demo's output must show in either form: the
// reference's published rows, the environment, every tier, the cost
// headline and how to read it.
var demoMustHave = []string{
	// published rows, as published
	"28,050", "27,763", "98.9%", "98.5%", "+10", "+12",
	"54,938", "53,724", "97.8%", "+17", "+44", "+80",
	"67,966", "64,465", "94.8%", "95.1%", "+45", "+98", "+150",
	"80,249", "267.57", "67,696", "225.74", "84.3%", "+202", "+258", "+260",
	ReferenceSource, "from 250 users", "5 minutes per tier",
	// environment
	"Test CPU 9000", "2 CPUs", "go1.26.0", "0123456789ab", "0.50 0.40 0.30", "Sharing the CPUs",
	// every tier of both views
	"100", "200", "250", "300", "1,000", "10,000",
	// the cost view's headline: the pair's CPU per request, then the API's
	"The pair (relay A and relay B together) costs 60-80 µs of CPU per request; the control API alone costs 9 µs.",
	"How to read this",
}

func TestWriteDemoText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteDemoText(&b, sampleDemo()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	flat := strings.Join(strings.Fields(out), " ") // paragraphs are wrapped
	for _, want := range demoMustHave {
		if !strings.Contains(flat, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	// The reference's view comes first, the cost view second.
	if i, j := strings.Index(out, "1. The reference product's test"), strings.Index(out, "2. The cost view"); i < 0 || j < i {
		t.Errorf("views out of order (%d, %d)", i, j)
	}
	// Every tier has its rows; the published ones only where published.
	for _, want := range []string{"10,000  Control API", "1,000   Control API", "published: result"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "published: result") != len(Reference) {
		t.Errorf("%d published result rows, want %d", strings.Count(out, "published: result"), len(Reference))
	}
}

func TestWriteDemoHTML(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteDemoHTML(&b, sampleDemo()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(page, "</html>\n") {
		t.Fatal("not a complete HTML document")
	}
	for _, bad := range []string{"<script", "<link", "<img", "@import", "url(", "src=", "href="} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("report is not self-contained: contains %q", bad)
		}
	}
	for _, want := range demoMustHave {
		if !strings.Contains(page, htmlEscape(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The reference comparison comes first, then the cost view.
	env, ref, cost := strings.Index(page, `id="environment"`), strings.Index(page, `id="reference"`), strings.Index(page, `id="cost"`)
	if env < 0 || ref < env || cost < ref {
		t.Errorf("sections out of order: environment %d, reference %d, cost %d", env, ref, cost)
	}
	// Our result row shows its one number once, over both columns.
	if !strings.Contains(page, `colspan="2"`) {
		t.Error("the result row repeats one number in two columns")
	}
	charts := map[string][]string{}
	for _, frag := range svgFragments(t, page) {
		id, series := chartSeriesIn(t, frag)
		charts[id] = series
	}
	for id, want := range map[string][]string{
		"chart-kept":  {"pqrelay, this machine", "reference relay, published"},
		"chart-added": {"pqrelay median", "pqrelay p99", "reference median, published", "reference p99, published"},
		"chart-cost":  {"pqrelay pair (A+B)", "control API"},
	} {
		if strings.Join(charts[id], "|") != strings.Join(want, "|") {
			t.Errorf("%s has series %q, want %q", id, charts[id], want)
		}
	}
	if !strings.Contains(page, "Users (log scale)") {
		t.Error("the users axis is not marked logarithmic")
	}
}

// chartSeriesIn parses one SVG (it must be well-formed XML) and returns its
// id and the names of its series that hold at least one point.
func chartSeriesIn(t *testing.T, frag string) (id string, series []string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(frag))
	current, points := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return id, series
		}
		if err != nil {
			t.Fatalf("chart is not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			for _, a := range el.Attr {
				switch {
				case el.Name.Local == "svg" && a.Name.Local == "id":
					id = a.Value
				case el.Name.Local == "g" && a.Name.Local == "data-series":
					current, points = a.Value, 0
				}
			}
			if current != "" && (el.Name.Local == "circle" || el.Name.Local == "rect" || (el.Name.Local == "path" && len(el.Attr) > 0 && el.Attr[0].Value[0] == 'M' && strings.Contains(el.Attr[0].Value, "l6"))) {
				points++
			}
		case xml.EndElement:
			if el.Name.Local == "g" && current != "" {
				if points > 0 {
					series = append(series, current)
				}
				current = ""
			}
		}
	}
}

func htmlEscape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "&#34;", "&#34;")
}
