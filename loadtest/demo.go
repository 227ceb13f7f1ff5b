package loadtest

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReferenceSource is how the demo cites the reference product's figures.
const ReferenceSource = "published by the reference product, the MTE API Relay, in its own documentation, on its own hardware"

// ReferenceSide is one published row: a side of one tier.
type ReferenceSide struct {
	Requests      int64
	RPS           float64
	P50, P90, P99 float64 // ms
}

// ReferenceTier is one tier of the reference product's published load
// test: users who send a 1 KB request, wait for the answer, think about a
// second and send again, against an API that takes ~50 ms, for 5 minutes
// per tier; the control goes straight to the API. The Result row is
// printed as published.
type ReferenceTier struct {
	Users                  int
	Control, Relay         ReferenceSide
	RequestsPct, RPSPct    float64
	DP50, DP90, DP99       float64 // ms added, as published
	RecommendsMoreReplicas bool
}

// Reference is the reference product's published table, copied as it is.
// It recommends load-balancing several relay instances from 250 users.
var Reference = []ReferenceTier{
	{Users: 100, Control: ReferenceSide{28050, 94, 52, 59, 87}, Relay: ReferenceSide{27763, 92.6, 62, 71, 87},
		RequestsPct: 98.9, RPSPct: 98.5, DP50: 10, DP90: 12, DP99: 0},
	{Users: 200, Control: ReferenceSide{54938, 183, 55, 66, 110}, Relay: ReferenceSide{53724, 179, 72, 110, 190},
		RequestsPct: 97.8, RPSPct: 97.8, DP50: 17, DP90: 44, DP99: 80},
	{Users: 250, Control: ReferenceSide{67966, 226, 55, 72, 130}, Relay: ReferenceSide{64465, 215, 100, 170, 280},
		RequestsPct: 94.8, RPSPct: 95.1, DP50: 45, DP90: 98, DP99: 150, RecommendsMoreReplicas: true},
	{Users: 300, Control: ReferenceSide{80249, 267.57, 58, 92, 190}, Relay: ReferenceSide{67696, 225.74, 260, 350, 450},
		RequestsPct: 84.3, RPSPct: 84.3, DP50: 202, DP90: 258, DP99: 260, RecommendsMoreReplicas: true},
}

// ReferenceFor returns the published tier with n users, if there is one.
func ReferenceFor(n int) (ReferenceTier, bool) {
	for _, r := range Reference {
		if r.Users == n {
			return r, true
		}
	}
	return ReferenceTier{}, false
}

// Demo is what `make demo` measured: the reference product's test shape
// (users with think time against an API that takes ~50 ms) and the cost
// view (closed loop against an instant API, with the CPU of each side).
type Demo struct {
	Users Report
	Cost  Report
}

// Env is the environment the demo ran in (the users run's; both ran on
// the same machine one after the other).
func (d Demo) Env() Environment {
	if d.Users.Meta.Env != (Environment{}) {
		return d.Users.Meta.Env
	}
	return d.Cost.Meta.Env
}

// OthersPct is the share of the machine's CPU that processes other than
// the loader and the control API used while the control sides were
// measured (the relays were idle then), averaged over those phases; ok is
// false when nothing was measured.
func (d Demo) OthersPct() (pct float64, ok bool) {
	var others, capacity time.Duration
	for _, r := range []Report{d.Users, d.Cost} {
		for _, t := range r.Tiers {
			c := t.Control
			if c == nil || !c.CPU.Measured || c.CPU.CPUs == 0 {
				continue
			}
			wall := c.CPU.Wall
			if wall <= 0 { // a report from before wall_s was written
				wall = c.Duration
			}
			others += max(c.CPU.Machine-c.CPU.Loader-c.CPU.Target, 0)
			capacity += wall * time.Duration(c.CPU.CPUs)
		}
	}
	if capacity == 0 {
		return 0, false
	}
	return float64(others) / float64(capacity) * 100, true
}

// CostRange is the smallest and largest CPU per request of one side over
// the cost view's tiers; ok is false when no tier measured it.
func (d Demo) CostRange(pick func(Tier) *Result) (lo, hi time.Duration, ok bool) {
	for _, t := range d.Cost.Tiers {
		r := pick(t)
		if r == nil || !r.CPU.Measured || r.Requests == 0 {
			continue
		}
		v := r.PerRequest(r.CPU.Target)
		if !ok || v < lo {
			lo = v
		}
		if !ok || v > hi {
			hi = v
		}
		ok = true
	}
	return lo, hi, ok
}

// HowToRead is the paragraph at the top of the demo's output and report.
const HowToRead = `How to read this. Two views of the same relay pair, measured on this machine. ` +
	`The first runs the reference product's own test: users who send a 1 KiB request, wait for the answer, ` +
	`think about a second and send again, against an API that takes 50 ms; it shows what a user of a real API ` +
	`gives up by going through the pair (a share of requests kept near 100% and a few ms added are good), next to ` +
	`the figures the reference product published for its own relay on its own hardware. ` +
	`The second, the cost view, saturates an API that answers in microseconds, so that the table measures the CPU ` +
	`the pair spends per request rather than waiting; its req/s ratio says how much of this small, shared machine ` +
	`the relays take from the API, not how a real API would fare. Ratios measured side by side in one run are the ` +
	`result; absolute numbers depend on the machine and on what else ran on it.`

// WriteDemoText writes the demo's terminal output: how to read it, the
// environment, the reference comparison and the cost view.
func WriteDemoText(w io.Writer, d Demo) error {
	var b strings.Builder
	b.WriteString(wrap(HowToRead, 78))
	b.WriteString("\n\n")
	for _, line := range environmentLines(d) {
		b.WriteString(line + "\n")
	}
	b.WriteString("\n" + usersHeading(d.Users.Meta) + "\n")
	b.WriteString(wrap(usersNote(d.Users.Meta), 78) + "\n\n")
	writeTextTable(&b, usersTable(d.Users))
	if h := usersHeadline(d.Users); h != "" {
		b.WriteString("\n" + wrap(h, 78) + "\n")
	}
	b.WriteString("\n" + costHeading(d.Cost.Meta) + "\n")
	if h := costHeadline(d); h != "" {
		b.WriteString(wrap(h, 78) + "\n")
	}
	b.WriteString("\n")
	writeTextTable(&b, costTable(d.Cost))
	_, err := io.WriteString(w, b.String())
	return err
}

// environmentLines is the environment block, one fact per line.
func environmentLines(d Demo) []string {
	e := d.Env()
	lines := []string{
		"Environment:",
		"  CPU: " + e.CPUModel + ", " + strconv.Itoa(e.CPUs) + " CPUs",
		"  Go: " + e.GoVersion + "; pqrelay: commit " + e.Commit,
		"  Sharing the CPUs: the loader, the bundled API and both relays, all on this machine",
	}
	if pct, ok := d.OthersPct(); ok {
		lines = append(lines, "  Other processes used "+strconv.FormatFloat(pct, 'f', 0, 64)+
			"% of the machine's CPU while the control API was measured"+loadNote(e))
	} else if e.LoadAvg != "" {
		lines = append(lines, "  Load average before the run: "+e.LoadAvg)
	}
	return lines
}

func loadNote(e Environment) string {
	if e.LoadAvg == "" {
		return ""
	}
	return " (load average before the run: " + e.LoadAvg + ")"
}

func usersHeading(m Meta) string {
	return "1. The reference product's test: users who think " + m.Think.String() +
		" between requests, API answering in 50 ms"
}

func usersNote(m Meta) string {
	return "Each tier: " + m.Ramp.String() + " ramp and " + m.Warmup.String() + " warm-up (not measured), then " +
		m.Duration.String() + " measured per side; the reference ran 5 minutes per tier, so our request counts are " +
		"smaller and req/s is the figure to compare. Rows marked \"published\" are " + ReferenceSource +
		", with its relay, not pqrelay; it recommends load-balancing several relay instances from 250 users."
}

func costHeading(m Meta) string {
	return "2. The cost view: closed loop, " + FormatSize(m.Size) + " bodies, an API that answers at once, " +
		m.Duration.String() + " per side"
}

// usersHeadline sums up the users view: the pair's worst share and its
// largest added median over the tiers the reference also published.
func usersHeadline(r Report) string {
	minPct, maxP50 := math.Inf(1), time.Duration(math.MinInt64)
	n := 0
	for _, t := range r.Tiers {
		if _, ok := ReferenceFor(t.Connections); !ok {
			continue
		}
		c, ok := t.Compare()
		if !ok || math.IsNaN(c.RequestsPct) {
			continue
		}
		minPct = math.Min(minPct, c.RequestsPct)
		maxP50 = max(maxP50, c.P50)
		n++
	}
	if n == 0 {
		return ""
	}
	return "At 100-300 users pqrelay keeps at least " + formatPct(minPct) + " of the control API's requests and adds at most " +
		formatDeltaMS(maxP50) + " to the median; the reference product published 98.9% to 84.3% and +10 to +202 ms."
}

// costHeadline is the cost view's headline: what the pair costs.
func costHeadline(d Demo) string {
	plo, phi, ok := d.CostRange(func(t Tier) *Result { return t.Relay })
	if !ok {
		return ""
	}
	s := "The pair (relay A and relay B together) costs " + microsRange(plo, phi) + " of CPU per request"
	if clo, chi, ok := d.CostRange(func(t Tier) *Result { return t.Control }); ok {
		s += "; the control API alone costs " + microsRange(clo, chi)
	}
	return s + "."
}

func microsRange(lo, hi time.Duration) string {
	a := strconv.FormatFloat(float64(lo)/1e3, 'f', 0, 64)
	b := strconv.FormatFloat(float64(hi)/1e3, 'f', 0, 64)
	if a == b {
		return a + " µs"
	}
	return a + "-" + b + " µs"
}

// table is rows of cells; rows whose first cell is empty continue a group.
type table struct {
	head []string
	rows [][]string
	// kind per row: "" side, "result", "published"
	kinds []string
}

func (t *table) add(kind string, cells ...string) {
	t.rows = append(t.rows, cells)
	t.kinds = append(t.kinds, kind)
}

// usersTable is the reference comparison: for each tier, our two sides
// and result, then the published result (and sides) where there is one.
func usersTable(r Report) table {
	t := table{head: []string{"users", "", "requests", "req/s", "median ms", "p90 ms", "p99 ms", "failed"}}
	for _, n := range usersTiers(r) {
		tier := Tier{Connections: n}
		for _, m := range r.Tiers {
			if m.Connections == n {
				tier = m
			}
		}
		users := FormatCount(int64(tier.Connections))
		for _, s := range tier.sides() {
			t.add("", users, s.label, FormatCount(s.res.Requests), formatRate(s.res.RPS()),
				formatLatency(s.res.Latency.P50), formatLatency(s.res.Latency.P90), formatLatency(s.res.Latency.P99),
				FormatCount(s.res.Failed()))
			users = ""
		}
		if c, ok := tier.Compare(); ok {
			t.add("result", "", "result", formatPct(c.RequestsPct), formatPct(c.RPSPct),
				formatDelta(c.P50), formatDelta(c.P90), formatDelta(c.P99), "")
		}
		ref, ok := ReferenceFor(tier.Connections)
		if !ok {
			continue
		}
		if users != "" {
			t.add("", users, "not measured here", "", "", "", "", "", "")
		}
		t.add("published", "", "published: control", FormatCount(ref.Control.Requests), trimFloat(ref.Control.RPS),
			trimFloat(ref.Control.P50), trimFloat(ref.Control.P90), trimFloat(ref.Control.P99), "")
		t.add("published", "", "published: relay", FormatCount(ref.Relay.Requests), trimFloat(ref.Relay.RPS),
			trimFloat(ref.Relay.P50), trimFloat(ref.Relay.P90), trimFloat(ref.Relay.P99), "")
		t.add("published result", "", "published: result", trimFloat(ref.RequestsPct)+"%", trimFloat(ref.RPSPct)+"%",
			signed(ref.DP50), signed(ref.DP90), signed(ref.DP99), "")
	}
	return t
}

// usersTiers is every user count measured or published, in order: the
// reference's rows are shown even where this run skipped their tier.
func usersTiers(r Report) []int {
	var ns []int
	for _, t := range r.Tiers {
		ns = append(ns, t.Connections)
	}
	for _, ref := range Reference {
		ns = append(ns, ref.Users)
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}

// costTable is the cost view: per connection count, both sides' req/s
// and latency, and the CPU per request of the pair and the control API.
func costTable(r Report) table {
	t := table{head: []string{"connections", "", "req/s", "median ms", "p99 ms", "failed", "CPU µs/req", "loader µs/req"}}
	for _, tier := range r.Tiers {
		conns := FormatCount(int64(tier.Connections))
		for _, s := range tier.sides() {
			label := s.label
			if s.res == tier.Relay {
				label = "pqrelay pair (A+B)"
			}
			t.add("", conns, label, formatRate(s.res.RPS()), formatLatency(s.res.Latency.P50),
				formatLatency(s.res.Latency.P99), FormatCount(s.res.Failed()),
				cpuCell(s.res, s.res.CPU.Target), cpuCell(s.res, s.res.CPU.Loader))
			conns = ""
		}
		if c, ok := tier.Compare(); ok {
			ratio := ""
			if tier.Control.CPU.Measured && tier.Relay.CPU.Measured && tier.Control.Requests > 0 && tier.Relay.Requests > 0 {
				pc := tier.Control.PerRequest(tier.Control.CPU.Target)
				pr := tier.Relay.PerRequest(tier.Relay.CPU.Target)
				if pc > 0 {
					ratio = strconv.FormatFloat(float64(pr)/float64(pc), 'f', 1, 64) + "× the API's"
				}
			}
			t.add("result", "", "pqrelay / control", formatPct(c.RPSPct), formatDelta(c.P50), formatDelta(c.P99), "", ratio, "")
		}
	}
	return t
}

func cpuCell(r *Result, d time.Duration) string {
	if !r.CPU.Measured || r.Requests == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(r.PerRequest(d))/1e3, 'f', 1, 64)
}

// formatLatency writes milliseconds with two decimals below 10 ms and one
// above: the users view spans 50 ms to seconds.
func formatLatency(d time.Duration) string {
	v := ms(d)
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func formatDelta(d time.Duration) string { return strings.TrimSuffix(formatDeltaMS(d), " ms") }

func formatRate(v float64) string {
	if v >= 1000 {
		return FormatCount(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return FormatCount(int64(v))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func signed(v float64) string {
	if v >= 0 {
		return "+" + trimFloat(v)
	}
	return trimFloat(v)
}

func writeTextTable(b *strings.Builder, t table) {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i <= 1 {
				b.WriteString(c + pad) // labels left-aligned
			} else {
				b.WriteString(pad + c)
			}
			if i < len(cells)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteString("\n")
	}
	line(t.head)
	total := len(width) * 2
	for _, w := range width {
		total += w
	}
	b.WriteString(strings.Repeat("-", total-2) + "\n")
	for i, r := range t.rows {
		if i > 0 && r[0] != "" {
			b.WriteString("\n")
		}
		line(r)
	}
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		l := len([]rune(word))
		if i > 0 {
			if n+1+l > width {
				b.WriteString("\n")
				n = 0
			} else {
				b.WriteString(" ")
				n++
			}
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}
