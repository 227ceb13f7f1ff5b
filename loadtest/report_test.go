package loadtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms3(v float64) time.Duration { return time.Duration(math.Round(v * 1e6)) }

// sampleReport is two tiers with round numbers, so the expected table can
// be checked by hand.
func sampleReport() Report {
	side := func(req int64, p50, p90, p99 float64) *Result {
		return &Result{
			Requests: req,
			Duration: 10 * time.Second,
			Latency:  Percentiles{Min: ms3(0.05), P50: ms3(p50), P90: ms3(p90), P99: ms3(p99), P999: ms3(p99 * 2), Max: ms3(p99 * 4)},
		}
	}
	t1c, t1r := side(100000, 1.0, 2.0, 4.0), side(98900, 1.4, 2.6, 5.1)
	t2c, t2r := side(300000, 3.0, 6.0, 12.0), side(252900, 2.5, 6.75, 20.0)
	t2r.Errors, t2r.Timeouts, t2r.Non2xx, t2r.BadBody = 1, 2, 3, 4
	for _, r := range []*Result{t1c, t1r} {
		r.Connections = 100
		r.Service = r.Latency
	}
	for _, r := range []*Result{t2c, t2r} {
		r.Connections = 300
		r.Service = r.Latency
	}
	return Report{
		Meta: Meta{
			Generated:  time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC),
			ControlURL: "http://127.0.0.1:9000/api/echo",
			RelayURL:   "http://127.0.0.1:8080/api/echo",
			Method:     "POST",
			Size:       1024,
			ExpectSize: 1024,
			Warmup:     2 * time.Second,
			Duration:   10 * time.Second,
			Timeout:    5 * time.Second,
		},
		Tiers: []Tier{
			{Connections: 100, Control: t1c, Relay: t1r},
			{Connections: 300, Control: t2c, Relay: t2r},
		},
	}
}

func TestWriteMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	want := `### 100 connections

| | # Requests | Req/second | Median (ms) | p90 | p99 |
|---|---|---|---|---|---|
| Control API | 100,000 | 10,000 | 1.00 | 2.00 | 4.00 |
| pqrelay | 98,900 | 9,890 | 1.40 | 2.60 | 5.10 |
| Result | 98.9% | 98.9% | +0.40 ms | +0.60 ms | +1.10 ms |

Failures: Control API 0 errors, 0 timeouts, 0 non-2xx, 0 bad body; pqrelay 0 errors, 0 timeouts, 0 non-2xx, 0 bad body.

### 300 connections

| | # Requests | Req/second | Median (ms) | p90 | p99 |
|---|---|---|---|---|---|
| Control API | 300,000 | 30,000 | 3.00 | 6.00 | 12.00 |
| pqrelay | 252,900 | 25,290 | 2.50 | 6.75 | 20.00 |
| Result | 84.3% | 84.3% | -0.50 ms | +0.75 ms | +8.00 ms |

Failures: Control API 0 errors, 0 timeouts, 0 non-2xx, 0 bad body; pqrelay 1 errors, 2 timeouts, 3 non-2xx, 4 bad body.
`
	if got := b.String(); got != want {
		t.Fatalf("markdown mismatch\n--- got ---\n%s\n--- want ---\n%s", got, want)
	}
}

func TestWriteMarkdownEdgeCases(t *testing.T) {
	t.Parallel()
	zero := &Result{Duration: time.Second}
	some := &Result{Requests: 10, Duration: time.Second}
	tests := []struct {
		name string
		tier Tier
		rate float64
		want []string
		not  []string
	}{
		{"control only", Tier{Connections: 1, Control: some}, 0,
			[]string{"### 1 connection\n", "| Control API | 10 | 10 |"}, []string{"| pqrelay", "| Result"}},
		{"control had nothing", Tier{Connections: 5, Control: zero, Relay: some}, 0,
			[]string{"| Result | n/a | n/a | +0.00 ms |"}, nil},
		{"open loop", Tier{Connections: 2000, Control: some, Relay: some}, 5000,
			[]string{"### 2,000 connections, open loop at 5,000 req/s\n", "| Result | 100.0% | 100.0% |"}, nil},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := WriteMarkdown(&b, Report{Meta: Meta{Rate: tt.rate}, Tiers: []Tier{tt.tier}}); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, b.String())
			}
		}
		for _, w := range tt.not {
			if strings.Contains(b.String(), w) {
				t.Errorf("%s: output has %q:\n%s", tt.name, w, b.String())
			}
		}
	}
}

func TestFormatDeltaMS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "+0.00 ms"},
		{-time.Microsecond, "+0.00 ms"}, // rounds to zero: no "-0.00"
		{400 * time.Microsecond, "+0.40 ms"},
		{-1500 * time.Microsecond, "-1.50 ms"},
		{202 * time.Millisecond, "+202.00 ms"},
	}
	for _, tt := range tests {
		if got := formatDeltaMS(tt.d); got != tt.want {
			t.Errorf("formatDeltaMS(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := FormatCount(n); got != want {
			t.Errorf("FormatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := sampleReport()
	var b bytes.Buffer
	if err := WriteJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the report\n in %+v\nout %+v\n%s", in, out, b.String())
	}
}

// TestJSONSchema pins the documented field names, so a rename cannot
// slip past the users who parse them.
func TestJSONSchema(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["version"] != float64(1) || doc["generated"] != "2025-01-02T15:04:05Z" {
		t.Fatalf("version/generated: %v %v", doc["version"], doc["generated"])
	}
	cfg := doc["config"].(map[string]any)
	for _, k := range []string{"control_url", "relay_url", "method", "size_bytes", "expect_size_bytes", "warmup_s", "duration_s", "timeout_s", "rate"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("config lacks %q", k)
		}
	}
	tiers := doc["tiers"].([]any)
	if len(tiers) != 2 {
		t.Fatalf("%d tiers", len(tiers))
	}
	tier := tiers[1].(map[string]any)
	if tier["connections"] != float64(300) {
		t.Errorf("connections = %v", tier["connections"])
	}
	relay := tier["relay"].(map[string]any)
	want := map[string]float64{
		"requests": 252900, "rps": 25290, "errors": 1, "timeouts": 2, "non_2xx": 3, "bad_body": 4,
		"min_ms": 0.05, "p50_ms": 2.5, "p90_ms": 6.75, "p99_ms": 20, "p999_ms": 40, "max_ms": 80, "duration_s": 10,
	}
	for k, v := range want {
		if relay[k] != v {
			t.Errorf("relay.%s = %v, want %v", k, relay[k], v)
		}
	}
	if len(relay) != len(want) {
		t.Errorf("relay side has fields %v; update doc.go and this test together", relay)
	}
	res := tier["result"].(map[string]any)
	if math.Abs(res["rps_pct"].(float64)-84.3) > 1e-9 || res["p99_delta_ms"] != float64(8) {
		t.Errorf("result = %v", res)
	}
}

func TestReadJSONRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{`, `{"version": 2, "tiers": []}`, `{"version": 1, "generated": "yesterday"}`} {
		if _, err := ReadJSON(strings.NewReader(in)); !errors.Is(err, ErrBadReport) {
			t.Errorf("ReadJSON(%s) = %v, want ErrBadReport", in, err)
		}
	}
}

// svgFragments cuts the inline <svg>…</svg> elements out of a report.
func svgFragments(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for rest := page; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(rest[i:], "</svg>")
		if j < 0 {
			t.Fatal("unterminated <svg>")
		}
		out = append(out, rest[i:i+j+len("</svg>")])
		rest = rest[i+j:]
	}
}

// seriesIn parses one SVG fragment as XML (it must be well-formed) and
// returns the data-series/data-metric pairs of its <g class="series">
// elements that hold at least one data point.
func seriesIn(t *testing.T, frag string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	dec := xml.NewDecoder(strings.NewReader(frag))
	var open []string // series key of each enclosing <g>, "" if none
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return found
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			key := ""
			if el.Name.Local == "g" {
				attrs := map[string]string{}
				for _, a := range el.Attr {
					attrs[a.Name.Local] = a.Value
				}
				if attrs["class"] == "series" {
					key = attrs["data-series"] + "/" + attrs["data-metric"]
				}
			}
			// Every data point's marker carries a hover <title>.
			if el.Name.Local == "title" && len(open) > 0 && open[len(open)-1] != "" {
				found[open[len(open)-1]] = true
			}
			if el.Name.Local == "g" {
				open = append(open, key)
			}
		case xml.EndElement:
			if el.Name.Local == "g" {
				open = open[:len(open)-1]
			}
		}
	}
}

func TestWriteHTML(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(page, "</html>\n") {
		t.Fatal("not a complete HTML document")
	}
	// Self-contained: nothing is fetched or run.
	for _, bad := range []string{"<script", "<link", "<img", "@import", "url(", "src=", "href="} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	frags := svgFragments(t, page)
	if len(frags) != 2 {
		t.Fatalf("%d charts, want throughput and latency", len(frags))
	}
	throughput, latency := seriesIn(t, frags[0]), seriesIn(t, frags[1])
	for _, k := range []string{"control/rps", "relay/rps"} {
		if !throughput[k] {
			t.Errorf("throughput chart lacks series %s (has %v)", k, throughput)
		}
	}
	for _, side := range []string{"control", "relay"} {
		for _, m := range []string{"p50", "p90", "p99"} {
			if !latency[side+"/"+m] {
				t.Errorf("latency chart lacks series %s/%s (has %v)", side, m, latency)
			}
		}
	}
	for _, want := range []string{
		"Requests per second (req/s)", "Latency (ms)", "Concurrent connections", // axis titles with units
		LabelControl, LabelRelay, "p50 (median)", // legends
		"<h3>100 connections</h3>", "<h3>300 connections</h3>", // tables
		`<tr class="result"><td>Result</td><td>98.9%</td>`,
		`<td class="bad">4</td>`, // bad bodies are flagged
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestWriteHTMLSingleTierAndGaps(t *testing.T) {
	t.Parallel()
	// One tier, relay with no successes: the chart must still be valid
	// and show the control series, with no fake zero for the relay.
	r := Report{Tiers: []Tier{{Connections: 10, Control: &Result{Requests: 5, Duration: time.Second}, Relay: &Result{Errors: 3, Duration: time.Second}}}}
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	frags := svgFragments(t, b.String())
	got := seriesIn(t, frags[0])
	if !got["control/rps"] || got["relay/rps"] {
		t.Fatalf("series with points: %v", got)
	}
	seriesIn(t, frags[1])
	if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
		t.Fatal("NaN or Inf in the report")
	}
}

func TestNiceScale(t *testing.T) {
	t.Parallel()
	tests := []struct{ max, top, step float64 }{
		{0, 1, 0.2},
		{1, 1, 0.2},
		{7.3, 8, 2},
		{97000, 100000, 20000},
		{123456, 125000, 25000},
		{0.42, 0.5, 0.1},
	}
	for _, tt := range tests {
		top, step := niceScale(tt.max)
		if math.Abs(top-tt.top) > 1e-9 || math.Abs(step-tt.step) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tt.max, top, step, tt.top, tt.step)
		}
	}
}
