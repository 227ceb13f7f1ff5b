package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startUpstream starts the bundled upstream on a free loopback port for
// the duration of the test.
func startUpstream(t *testing.T, size int, delay time.Duration) *Upstream {
	t.Helper()
	up, err := StartUpstream("127.0.0.1:0", size, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := up.Close(); err != nil {
			t.Errorf("upstream Close: %v", err)
		}
	})
	return up
}

func TestRunMedianAgainstDelayedUpstream(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024, 5*time.Millisecond)
	res, err := Run(context.Background(), Config{
		URL:            up.URL() + "/api/echo",
		Body:           Body(1024),
		Connections:    8,
		Warmup:         200 * time.Millisecond,
		Duration:       1500 * time.Millisecond,
		ExpectSize:     1024,
		Verify:         true,
		VerifyChecksum: up.Checksum(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() != 0 {
		t.Fatalf("failures against a healthy upstream: %+v", res)
	}
	// 8 connections × 1.5 s / ~5 ms: about 2,400 in theory; a shared
	// 2-core box under -race gets less, but not 10× less.
	if res.Requests < 240 {
		t.Fatalf("Requests = %d, want at least 240", res.Requests)
	}
	// The median cannot beat the delay; the upper bound leaves room for a
	// busy machine and the race detector.
	if p50 := res.Latency.P50; p50 < 5*time.Millisecond || p50 > 15*time.Millisecond {
		t.Fatalf("median %v, want 5ms..15ms (upstream delay 5ms)", p50)
	}
	l := res.Latency
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Fatalf("percentiles out of order: %+v", l)
	}
	if l.Min < 5*time.Millisecond {
		t.Fatalf("min %v is below the upstream delay", l.Min)
	}
	if res.Duration != 1500*time.Millisecond || res.RPS() <= 0 {
		t.Fatalf("Duration %v, RPS %v", res.Duration, res.RPS())
	}
}

// freePort returns a loopback address with nothing listening on it. It
// uses 127.0.0.2, where no other test listens, so a port freed here is
// not handed straight to a parallel test's upstream on 127.0.0.1:0.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRunCountsFailures(t *testing.T) {
	t.Parallel()
	status500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(Body(1024))
	}))
	t.Cleanup(status500.Close)
	healthy := startUpstream(t, 1024, 0)
	slow := startUpstream(t, 1024, 400*time.Millisecond)
	short := startUpstream(t, 100, 0)

	tests := []struct {
		name   string
		url    string
		cfg    Config
		failed func(Result) int64
	}{
		{"connection refused", "http://" + freePort(t), Config{}, func(r Result) int64 { return r.Errors }},
		{"timeout", slow.URL(), Config{Timeout: 50 * time.Millisecond}, func(r Result) int64 { return r.Timeouts }},
		{"status 500", status500.URL, Config{}, func(r Result) int64 { return r.Non2xx }},
		{"short body", short.URL(), Config{ExpectSize: 1024}, func(r Result) int64 { return r.BadBody }},
		{"wrong checksum", healthy.URL(), Config{ExpectSize: 1024, Verify: true, VerifyChecksum: healthy.Checksum() ^ 1}, func(r Result) int64 { return r.BadBody }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.URL = tt.url
			cfg.Connections = 2
			cfg.Duration = 500 * time.Millisecond
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := tt.failed(res)
			if n == 0 || n != res.Failed() {
				t.Fatalf("want every failure in the %s counter: %+v", tt.name, res)
			}
			if res.Requests != 0 || res.Latency != (Percentiles{}) {
				t.Fatalf("failures leaked into requests or latency: %+v", res)
			}
		})
	}
}

// TestRunTimeoutsAreNotCountedAtTheEnd: a request still in flight when the
// window closes is neither a success nor a timeout.
func TestRunTimeoutsAreNotCountedAtTheEnd(t *testing.T) {
	t.Parallel()
	slow := startUpstream(t, 16, time.Second)
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: slow.URL(), Connections: 2, Duration: 300 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() != 0 || res.Requests != 0 {
		t.Fatalf("cut-off requests were counted: %+v", res)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Fatalf("Run took %v for a 300ms window: it waited for the slow answer", took)
	}
}

// stallServer answers at once, except that every request arriving during
// one 300 ms window (a GC pause, a failover) waits until the window ends.
func stallServer(t *testing.T, stallAfter, stall time.Duration) string {
	t.Helper()
	var once sync.Once
	var stallEnd atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		once.Do(func() { stallEnd.Store(now.Add(stallAfter + stall).UnixNano()) })
		end := time.Unix(0, stallEnd.Load())
		if begin := end.Add(-stall); !now.Before(begin) && now.Before(end) {
			time.Sleep(end.Sub(now))
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRunOpenLoopCorrectsCoordinatedOmission(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	url := stallServer(t, 500*time.Millisecond, stall)
	// One connection at 100 req/s for 2 s: 200 requests due, 30 of them
	// during the stall.
	res, err := Run(context.Background(), Config{URL: url, Method: "GET", Connections: 1, Rate: 100, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() != 0 || res.Requests < 150 || res.Requests > 201 {
		t.Fatalf("want about 200 successes at 100 req/s for 2s: %+v", res)
	}
	// Corrected: the ~30 requests due during the stall waited 10..300 ms,
	// 15% of all, so p90 and p99 both show the stall.
	if res.Latency.P99 < 200*time.Millisecond || res.Latency.P90 < 50*time.Millisecond {
		t.Errorf("corrected p90 %v / p99 %v do not show the 300ms stall", res.Latency.P90, res.Latency.P99)
	}
	// Naive (from the actual send): only the one request that hit the
	// stall is slow; the backlog after it is sent late and answered fast,
	// so the p99 hides the stall — the coordinated omission.
	// (Its exact size depends on when within the stall that request
	// arrived, which a busy machine can delay.)
	if res.Service.Max < 100*time.Millisecond {
		t.Errorf("naive max %v misses the stall itself", res.Service.Max)
	}
	if res.Service.P99 > 100*time.Millisecond {
		t.Errorf("naive p99 %v: expected it to hide the stall", res.Service.P99)
	}
	t.Logf("corrected p50/p90/p99 %v/%v/%v; naive %v/%v/%v", res.Latency.P50, res.Latency.P90, res.Latency.P99,
		res.Service.P50, res.Service.P90, res.Service.P99)
}

func TestRunClosedLoopServiceEqualsLatency(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 64, 0)
	res, err := Run(context.Background(), Config{URL: up.URL(), Connections: 1, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Service != res.Latency || res.Requests == 0 {
		t.Fatalf("closed loop: %+v", res)
	}
}

func TestRunStopsAtMaxRequests(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 64, 0)
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: up.URL(), Connections: 4, Duration: 10 * time.Second, MaxRequests: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 {
		t.Fatalf("Requests = %d, want exactly the bound 100 (25 per connection)", res.Requests)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Run ignored MaxRequests and ran for its duration")
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	// A slow upstream keeps every worker blocked in a read, which the
	// cancel must interrupt.
	up := startUpstream(t, 64, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	var calls atomic.Int32
	res, err := Run(ctx, Config{
		URL: up.URL(), Connections: 4, Duration: 10 * time.Second,
		Progress: func(Progress) { calls.Add(1) }, ProgressInterval: 50 * time.Millisecond,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 800*time.Millisecond {
		t.Fatalf("cancel took %v", took)
	}
	if res.Failed() != 0 || res.Duration <= 0 || res.Duration > time.Second {
		t.Fatalf("cancelled run: %+v", res)
	}
	if calls.Load() == 0 {
		t.Fatal("Progress was never called")
	}
}

func TestRunCancelDuringConnect(t *testing.T) {
	t.Parallel()
	// A server that accepts and never answers holds every TLS handshake
	// open; a cancel must end them at once, not when Timeout runs out.
	silent := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res, err := Run(ctx, Config{
		URL: "https" + strings.TrimPrefix(silent, "http"), Connections: 2,
		Duration: 30 * time.Second, Timeout: 30 * time.Second,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancel took %v: the handshakes ran to their deadline", took)
	}
	if res.Failed() != 0 {
		t.Fatalf("a connect cut short by the cancel was counted: %+v", res)
	}
}

func TestRunProgress(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 64, 0)
	var mu sync.Mutex
	var got []Progress
	_, err := Run(context.Background(), Config{
		URL: up.URL(), Connections: 2, Warmup: 300 * time.Millisecond, Duration: 600 * time.Millisecond,
		ProgressInterval: 25 * time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var warm, measured bool
	for _, p := range got {
		if p.Warmup {
			warm = true
			if p.Requests != 0 || p.Total != 300*time.Millisecond {
				t.Errorf("warm-up progress %+v", p)
			}
		} else if p.Requests > 0 {
			measured = true
			if p.Total != 600*time.Millisecond || p.RPS() <= 0 {
				t.Errorf("measured progress %+v", p)
			}
		}
	}
	if !warm || !measured {
		t.Fatalf("want warm-up and measured progress, got %+v", got)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ok := Config{URL: "http://127.0.0.1:1/", Connections: 1, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"ftp URL", func(c *Config) { c.URL = "ftp://127.0.0.1/" }},
		{"no host", func(c *Config) { c.URL = "http:///x" }},
		{"user info", func(c *Config) { c.URL = "http://u:p@127.0.0.1/" }},
		{"zero connections", func(c *Config) { c.Connections = 0 }},
		{"zero duration", func(c *Config) { c.Duration = 0 }},
		{"negative warm-up", func(c *Config) { c.Warmup = -1 }},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }},
		{"negative rate", func(c *Config) { c.Rate = -1 }},
		{"huge rate", func(c *Config) { c.Rate = 1e9 }},
		{"negative expect size", func(c *Config) { c.ExpectSize = -1 }},
		{"negative max requests", func(c *Config) { c.MaxRequests = -1 }},
		{"method with space", func(c *Config) { c.Method = "GET /" }},
		{"lower-case standard method", func(c *Config) { c.Method = "head" }},
		{"HEAD with an expected size", func(c *Config) { c.Method, c.ExpectSize = "HEAD", 10 }},
		{"HEAD with a checksum", func(c *Config) { c.Method, c.Verify = "HEAD", true }},
	}
	for _, tt := range tests {
		cfg := ok
		tt.mutate(&cfg)
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err = %v, want ErrBadConfig", tt.name, err)
		}
	}
}

func TestRequestSerialization(t *testing.T) {
	t.Parallel()
	c := Config{
		URL: "http://127.0.0.1:9000/api/echo?x=1",
		Headers: []Header{{"x-mte-upstream", "http://127.0.0.1:8081"}, {"Content-Length", "5"},
			{"X-Twice", "1"}, {"X-Twice", "2"}, {"User-Agent", "mine"}},
		Body: []byte("hello world"),

		Connections: 1,
		Duration:    time.Second,
	}
	p, err := c.plan()
	if err != nil {
		t.Fatal(err)
	}
	raw := string(p.raw)
	for _, want := range []string{
		"POST /api/echo?x=1 HTTP/1.1\r\n",
		"\r\nHost: 127.0.0.1:9000\r\n",
		"\r\nContent-Length: 11\r\n",
		"\r\nx-mte-upstream: http://127.0.0.1:8081\r\n",
		"\r\n\r\nhello world",
		"\r\nX-Twice: 1\r\n", "\r\nX-Twice: 2\r\n",
		"\r\nUser-Agent: mine\r\n",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("request lacks %q:\n%s", want, raw)
		}
	}
	if n := strings.Count(raw, "User-Agent:"); n != 1 {
		t.Errorf("%d User-Agent headers, want the given one only:\n%s", n, raw)
	}
	if n := strings.Count(raw, "Content-Length:"); n != 1 {
		t.Errorf("%d Content-Length headers, want the body's only:\n%s", n, raw)
	}
	if p.addr != "127.0.0.1:9000" {
		t.Errorf("addr = %q", p.addr)
	}
}

// untilCloseServer answers every connection with one HTTP/1.1 response
// that has neither Content-Length nor chunked framing, so its body ends
// when the server closes the connection (RFC 9112 §6.3, item 8).
func untilCloseServer(t *testing.T, body []byte) string {
	t.Helper()
	return rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		var got []byte
		for !strings.Contains(string(got), "\r\n\r\n") {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
		c.Write(append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"), body...))
	})
}

// TestRunBodyFraming: every way HTTP/1.1 delimits a response body is read
// correctly, so the connection stays in step and lengths are checked.
func TestRunBodyFraming(t *testing.T) {
	t.Parallel()
	body := Body(1024)
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body[:300])
		w.(http.Flusher).Flush() // forces Transfer-Encoding: chunked
		w.Write(body[300:])
	}))
	t.Cleanup(chunked.Close)
	noContent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(noContent.Close)
	up := startUpstream(t, 1024, 0)

	tests := []struct {
		name   string
		url    string
		method string
		expect int
	}{
		{"content-length", up.URL(), "POST", 1024},
		{"chunked", chunked.URL, "GET", 1024},
		{"until close", untilCloseServer(t, body), "GET", 1024},
		{"HEAD has no body", up.URL(), "HEAD", 0},
		{"204 has no body", noContent.URL, "GET", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{URL: tt.url, Method: tt.method, Connections: 2, Duration: 300 * time.Millisecond, Timeout: time.Second, ExpectSize: tt.expect}
			if tt.expect > 0 {
				cfg.Verify, cfg.VerifyChecksum = true, Checksum(body)
			}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < 5 || res.Failed() != 0 {
				t.Fatalf("%+v", res)
			}
		})
	}
}

func TestRunHTTPS(t *testing.T) {
	t.Parallel()
	body := Body(512)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	trusting := srv.Client().Transport.(*http.Transport).TLSClientConfig
	// The unknown authority's run is longer: its first handshake loads
	// the system roots, which on a busy machine under -race has taken
	// longer than a short run lasts.
	tests := []struct {
		name     string
		cfg      Config
		duration time.Duration
		ok       bool
	}{
		{"trusted", Config{TLS: trusting}, 500 * time.Millisecond, true},
		{"unknown authority", Config{}, 2 * time.Second, false}, // system roots do not know httptest's CA
	}
	for _, tt := range tests {
		cfg := tt.cfg
		cfg.URL, cfg.Connections, cfg.Duration, cfg.ExpectSize = srv.URL+"/x", 2, tt.duration, len(body)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if tt.ok && (res.Requests == 0 || res.Failed() != 0) {
			t.Errorf("%s: %+v", tt.name, res)
		}
		if !tt.ok && (res.Requests != 0 || res.Errors == 0) {
			t.Errorf("%s: an unverified server must fail the handshake: %+v", tt.name, res)
		}
	}
}
