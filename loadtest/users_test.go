package loadtest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// arrivals is an upstream that records when each connection's requests
// arrive, and answers each with status(now).
type arrivals struct {
	mu     sync.Mutex
	byConn map[string][]time.Time
}

func startArrivals(t *testing.T, status func(time.Time) int) (string, *arrivals) {
	t.Helper()
	a := &arrivals{byConn: map[string][]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		a.mu.Lock()
		a.byConn[r.RemoteAddr] = append(a.byConn[r.RemoteAddr], now)
		a.mu.Unlock()
		w.WriteHeader(status(now))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, a
}

// gaps is every interval between two requests on one connection.
func (a *arrivals) gaps() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for _, ts := range a.byConn {
		for i := 1; i < len(ts); i++ {
			out = append(out, ts[i].Sub(ts[i-1]))
		}
	}
	slices.Sort(out)
	return out
}

// TestUsersThinkTimeHonoured: a user sends again only after the answer
// plus its think time, so on every connection consecutive requests arrive
// at least the think time apart, and not much more on a healthy upstream;
// with jitter the pauses spread over [think-jitter, think+jitter].
func TestUsersThinkTimeHonoured(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		think, jitter time.Duration
	}{
		{"fixed", 150 * time.Millisecond, 0},
		{"jitter", 150 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, arr := startArrivals(t, func(time.Time) int { return 200 })
			res, err := Run(context.Background(), Config{
				URL: url, Method: "GET", Connections: 10, Duration: 1500 * time.Millisecond,
				Think: tc.think, ThinkJitter: tc.jitter,
			})
			if err != nil {
				t.Fatal(err)
			}
			gaps := arr.gaps()
			if res.Failed() != 0 || len(gaps) < 50 {
				t.Fatalf("%d gaps, result %+v", len(gaps), res)
			}
			lo := tc.think - tc.jitter
			if gaps[0] < lo {
				t.Fatalf("shortest pause between a user's requests %v, want at least %v", gaps[0], lo)
			}
			// At most 10 users × (1.5 s / shortest cycle) + one each.
			if most := int64(10*(1500*time.Millisecond)/lo) + 10; res.Requests > most {
				t.Fatalf("%d requests; users thinking %v can send at most %d", res.Requests, lo, most)
			}
			median := gaps[len(gaps)/2]
			if median > tc.think+60*time.Millisecond {
				t.Errorf("median pause %v, want about %v", median, tc.think)
			}
			if tc.jitter > 0 && gaps[len(gaps)-1]-gaps[0] < tc.jitter {
				t.Errorf("pauses %v..%v do not spread with jitter %v", gaps[0], gaps[len(gaps)-1], tc.jitter)
			}
		})
	}
}

// TestUsersRampNotMeasured: users arrive spread over the ramp, and nothing
// due during the ramp is counted. The upstream answers 500 to every
// request that arrives during the ramp, so one counted request from the
// ramp would show up as a non-2xx.
func TestUsersRampNotMeasured(t *testing.T) {
	t.Parallel()
	const ramp = 800 * time.Millisecond
	var cutoff atomic.Pointer[time.Time] // set just before Run starts
	rampOver := func(now time.Time) bool { c := cutoff.Load(); return c != nil && !now.Before(*c) }
	url, arr := startArrivals(t, func(now time.Time) int {
		if !rampOver(now) {
			return 500
		}
		return 200
	})
	c := time.Now().Add(ramp - 20*time.Millisecond)
	cutoff.Store(&c)
	res, err := Run(context.Background(), Config{
		URL: url, Method: "GET", Connections: 20, Duration: time.Second,
		Think: 100 * time.Millisecond, Ramp: ramp,
	})
	if err != nil {
		t.Fatal(err)
	}
	var firsts []time.Time
	rampRequests := 0
	arr.mu.Lock()
	for _, ts := range arr.byConn {
		firsts = append(firsts, ts[0])
		for _, at := range ts {
			if !rampOver(at) {
				rampRequests++
			}
		}
	}
	arr.mu.Unlock()
	if rampRequests < 5 {
		t.Fatalf("only %d requests during the ramp; the test needs some to mean anything", rampRequests)
	}
	if res.Non2xx != 0 || res.Requests == 0 {
		t.Fatalf("a request of the ramp was counted: %+v", res)
	}
	slices.SortFunc(firsts, func(a, b time.Time) int { return a.Compare(b) })
	if spread := firsts[len(firsts)-1].Sub(firsts[0]); spread < ramp/2 {
		t.Fatalf("users arrived within %v, want them spread over the %v ramp", spread, ramp)
	}
}

// TestOpenLoopNeverAboveScheduled reproduces the warm-up backlog: the
// upstream stalls until the warm-up is over, so every request due during
// the warm-up is sent late and answered in the measured phase. Those
// belong to the warm-up; the measured phase may count at most what was
// scheduled in it.
func TestOpenLoopNeverAboveScheduled(t *testing.T) {
	t.Parallel()
	const warmup = 600 * time.Millisecond
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Until(start.Add(warmup + 50*time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}))
	t.Cleanup(srv.Close)
	const rate, dur = 200, time.Second
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Method: "GET", Connections: 8, Rate: rate, Warmup: warmup, Duration: dur,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled < rate-8 || res.Scheduled > rate+8 {
		t.Fatalf("Scheduled = %d, want %d ± one per connection", res.Scheduled, rate)
	}
	if res.Requests > res.Scheduled || res.Requests == 0 {
		t.Fatalf("Requests = %d of %d scheduled: never above, never none", res.Requests, res.Scheduled)
	}
	if res.ShortfallPct() < 0 {
		t.Fatalf("negative shortfall %v", res.ShortfallPct())
	}
}

// TestShortfallReported: an open-loop target that cannot keep up with the
// rate is named in the table, with how much of the schedule it served.
func TestShortfallReported(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 64, 10*time.Millisecond)
	res, err := Run(context.Background(), Config{URL: up.URL(), Method: "GET", Connections: 1, Rate: 500, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// One connection and a 10 ms answer: 100 req/s at most of 500.
	if res.ShortfallPct() < 50 {
		t.Fatalf("shortfall %.1f%% (%d of %d), want most of the schedule missed", res.ShortfallPct(), res.Requests, res.Scheduled)
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Report{Meta: Meta{Rate: 500}, Tiers: []Tier{{Connections: 1, Control: &res}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "fell short of the requested rate") || !strings.Contains(b.String(), "scheduled requests") {
		t.Fatalf("table does not report the shortfall:\n%s", b.String())
	}
	// A side that kept up is not flagged.
	ok := res
	ok.Requests = ok.Scheduled
	b.Reset()
	if err := WriteMarkdown(&b, Report{Meta: Meta{Rate: 500}, Tiers: []Tier{{Connections: 1, Control: &ok}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "fell short") {
		t.Fatalf("a side that kept up is flagged:\n%s", b.String())
	}
}

// TestBadBodyHint: against an API whose bodies are not the expected size,
// every response is a bad body, and the table says which flag fixes it.
func TestBadBodyHint(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 700, 0)
	res, err := Run(context.Background(), Config{URL: up.URL(), Body: Body(1024), Connections: 2, Duration: 300 * time.Millisecond, ExpectSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.BadBody == 0 {
		t.Fatalf("want every response a bad body: %+v", res)
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Report{Meta: Meta{ExpectSize: 1024}, Tiers: []Tier{{Connections: 2, Control: &res}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "--expect-size any") {
		t.Fatalf("no hint in:\n%s", b.String())
	}
}
