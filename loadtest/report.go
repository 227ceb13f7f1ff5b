package loadtest

import (
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Row labels of the comparison table.
const (
	LabelControl = "Control API"
	LabelRelay   = "pqrelay"
	LabelResult  = "Result"
)

// Report is a whole comparison: one Tier per connection count, plus what
// was run. WriteMarkdown, WriteJSON and WriteHTML render it; ReadJSON
// reads WriteJSON's output back.
type Report struct {
	Meta  Meta
	Tiers []Tier
}

// Meta records how a Report was produced. It never holds header values:
// those carry the relay's outbound token.
type Meta struct {
	Generated  time.Time
	ControlURL string
	RelayURL   string
	Method     string
	Size       int // request body bytes
	ExpectSize int // required response body bytes; 0 = any
	Warmup     time.Duration
	Duration   time.Duration
	Timeout    time.Duration
	Rate       float64 // 0 = closed loop
	// Users mode (Think > 0): each connection is a user who thinks
	// Think ± ThinkJitter between requests; users arrive over Ramp.
	Think, ThinkJitter, Ramp time.Duration
	// Env describes the machine the run was measured on.
	Env Environment
}

// Users reports whether the run was in users mode.
func (m Meta) Users() bool { return m.Think > 0 }

// Tier is one connection count measured against the control API and
// through the relay. Either side is nil when it was not measured.
type Tier struct {
	Connections int
	Control     *Result
	Relay       *Result
}

// Comparison is the "Result" row: the relay relative to the control API.
type Comparison struct {
	// RequestsPct and RPSPct are relay/control × 100; NaN when the control
	// side had no successes.
	RequestsPct, RPSPct float64
	// P50, P90 and P99 are relay minus control (negative: the relay was
	// faster).
	P50, P90, P99 time.Duration
}

// Compare computes the Result row of a tier; ok is false unless both sides
// were measured.
func (t Tier) Compare() (c Comparison, ok bool) {
	if t.Control == nil || t.Relay == nil {
		return Comparison{}, false
	}
	pct := func(relay, control float64) float64 {
		if control == 0 {
			return math.NaN()
		}
		return relay / control * 100
	}
	return Comparison{
		RequestsPct: pct(float64(t.Relay.Requests), float64(t.Control.Requests)),
		RPSPct:      pct(t.Relay.RPS(), t.Control.RPS()),
		P50:         t.Relay.Latency.P50 - t.Control.Latency.P50,
		P90:         t.Relay.Latency.P90 - t.Control.Latency.P90,
		P99:         t.Relay.Latency.P99 - t.Control.Latency.P99,
	}, true
}

// WriteMarkdown writes one section per tier: a heading, the comparison
// table (Control API, pqrelay and Result rows) and a line of failure
// counts, which never enter the latency columns.
func WriteMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	for i, t := range r.Tiers {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("### ")
		b.WriteString(tierTitle(t, r.Meta))
		b.WriteString("\n\n")
		b.WriteString("| | # Requests | Req/second | Median (ms) | p90 | p99 |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
		for _, s := range t.sides() {
			b.WriteString("| " + s.label + " | " + FormatCount(s.res.Requests) + " | " +
				FormatCount(int64(math.Round(s.res.RPS()))) + " | " +
				formatMS(s.res.Latency.P50) + " | " + formatMS(s.res.Latency.P90) + " | " +
				formatMS(s.res.Latency.P99) + " |\n")
		}
		if c, ok := t.Compare(); ok {
			b.WriteString("| " + LabelResult + " | " + formatPct(c.RequestsPct) + " | " +
				formatPct(c.RPSPct) + " | " + formatDeltaMS(c.P50) + " | " +
				formatDeltaMS(c.P90) + " | " + formatDeltaMS(c.P99) + " |\n")
		}
		b.WriteString("\nFailures: ")
		for j, s := range t.sides() {
			if j > 0 {
				b.WriteString("; ")
			}
			b.WriteString(s.label + " " + failureSummary(s.res))
		}
		b.WriteString(".\n")
		for _, s := range t.sides() {
			if s.res.ShortfallPct() > ShortfallWarnPct {
				b.WriteString("\n**" + s.label + " fell short of the requested rate**: " + shortfallText(s.res) + ".\n")
			}
			if hint := badBodyHint(s.res, r.Meta.ExpectSize); hint != "" {
				b.WriteString("\n**" + s.label + "**: " + hint + "\n")
			}
		}
		if line := cpuLine(t); line != "" {
			b.WriteString("\nCPU per request: " + line + ".\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shortfallText says how far an open-loop side fell short of its schedule:
// "9,214 of 9,500 scheduled requests (97.0%)".
func shortfallText(r *Result) string {
	return FormatCount(r.Requests) + " of " + FormatCount(r.Scheduled) + " scheduled requests (" +
		formatPct(float64(r.Requests)/float64(r.Scheduled)*100) + ")"
}

// badBodyHint explains a side where every response was 2xx but failed the
// body check, which is what a real API with varying bodies produces when
// the expected size defaults to the request size.
func badBodyHint(r *Result, expectSize int) string {
	if r.Requests > 0 || r.BadBody == 0 || r.Errors+r.Timeouts+r.Non2xx > 0 {
		return ""
	}
	s := "every response failed the body check"
	if expectSize > 0 {
		s += " (expected exactly " + FormatCount(int64(expectSize)) + " bytes)"
	}
	return s + ". If the API's bodies vary, pass --expect-size any (and no --verify)."
}

// cpuLine renders the measured CPU per request of a tier's sides:
// "Control API 9.8 µs (target), loader 6.1 µs; pqrelay 61.2 µs (target),
// loader 6.3 µs". Empty when nothing was measured.
func cpuLine(t Tier) string {
	var parts []string
	for _, s := range t.sides() {
		c := s.res.CPU
		if !c.Measured || s.res.Requests == 0 {
			continue
		}
		p := s.label + ": "
		if c.Target > 0 {
			p += "target " + FormatMicros(s.res.PerRequest(c.Target)) + ", "
		}
		p += "loader " + FormatMicros(s.res.PerRequest(c.Loader))
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// FormatMicros writes d in microseconds with one decimal: "61.2 µs".
func FormatMicros(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + " µs"
}

type side struct {
	label string
	res   *Result
}

func (t Tier) sides() []side {
	var s []side
	if t.Control != nil {
		s = append(s, side{LabelControl, t.Control})
	}
	if t.Relay != nil {
		s = append(s, side{LabelRelay, t.Relay})
	}
	return s
}

// tierTitle names a tier: "300 connections", "300 connections, open
// loop at 9,500 req/s", or in users mode "1,000 users, 1s think time".
func tierTitle(t Tier, m Meta) string {
	if m.Users() {
		s := FormatCount(int64(t.Connections)) + " users"
		if t.Connections == 1 {
			s = "1 user"
		}
		return s + ", " + m.Think.String() + " think time"
	}
	s := FormatCount(int64(t.Connections)) + " connections"
	if t.Connections == 1 {
		s = "1 connection"
	}
	if m.Rate > 0 {
		s += ", open loop at " + FormatCount(int64(math.Round(m.Rate))) + " req/s"
	}
	return s
}

// xTitle is the charts' x axis: what a tier counts.
func (m Meta) xTitle() string {
	if m.Users() {
		return "Users"
	}
	return "Concurrent connections"
}

func failureSummary(r *Result) string {
	return FormatCount(r.Errors) + " errors, " + FormatCount(r.Timeouts) + " timeouts, " +
		FormatCount(r.Non2xx) + " non-2xx, " + FormatCount(r.BadBody) + " bad body"
}

// FormatCount writes n with thousands separators: 1234567 → "1,234,567".
func FormatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i := 0; i < len(s); i++ {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// formatMS writes d in milliseconds with two decimals: loopback latencies
// are fractions of a millisecond, and one decimal would show them as 0.
func formatMS(d time.Duration) string {
	return strconv.FormatFloat(ms(d), 'f', 2, 64)
}

// formatDeltaMS writes a signed difference: "+0.40 ms", "-0.12 ms".
func formatDeltaMS(d time.Duration) string {
	v := math.Round(ms(d)*100) / 100
	if v == 0 {
		v = 0 // a difference that rounds to zero is "+0.00", never "-0.00"
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v >= 0 {
		s = "+" + s
	}
	return s + " ms"
}

func formatPct(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
