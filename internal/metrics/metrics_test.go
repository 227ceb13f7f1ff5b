package metrics

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var testOpts = Options{Version: "v1.2.3", Commit: "abc123", Codes: []string{"MTE_TOKEN_INVALID", "MTE_PEER_TIMEOUT"}}

// samples parses an exposition into series → value text, failing on any
// line that is neither a comment nor "series value".
func samples(t *testing.T, text []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("line %q: no value", line)
		}
		if _, dup := out[line[:i]]; dup {
			t.Fatalf("series %s twice", line[:i])
		}
		out[line[:i]] = line[i+1:]
	}
	return out
}

// TestRecordedValues: each recording method moves exactly its series, and
// histograms put an observation in the first bucket whose bound it does not
// exceed (cumulatively from there on).
func TestRecordedValues(t *testing.T) {
	t.Parallel()
	degraded := true
	opts := testOpts
	opts.StoreDegraded = func() bool { return degraded }
	opts.LinkConnections = func() int { return 2 }
	r := New(opts)
	timeout, _ := opts.Outcome("MTE_PEER_TIMEOUT")
	r.RequestStarted()
	r.RequestStarted()
	r.RequestStarted()
	r.RequestDone(Outbound, OK, 300*time.Microsecond)
	r.RequestDone(Outbound, timeout, 30*time.Second)
	r.UpstreamDone(time.Millisecond)
	r.PeerDone(time.Minute)
	r.Pairing(Outbound, ResultOK)
	r.Pairing(Inbound, ResultRefused)
	r.Rekey(ResultFailed)
	r.FrameRefused(RefusedReplay)
	r.FrameRefused(RefusedReplay)
	r.StoreCommandError()
	got := samples(t, r.AppendText(nil))

	for _, c := range []struct{ series, want string }{
		{`pqrelay_requests_in_flight`, "1"},
		{`pqrelay_requests_total{role="outbound",code="ok"}`, "1"},
		{`pqrelay_requests_total{role="outbound",code="MTE_PEER_TIMEOUT"}`, "1"},
		{`pqrelay_requests_total{role="outbound",code="MTE_TOKEN_INVALID"}`, "0"},
		{`pqrelay_requests_total{role="inbound",code="ok"}`, "0"},
		{`pqrelay_request_duration_seconds_bucket{role="outbound",le="0.00025"}`, "0"},
		{`pqrelay_request_duration_seconds_bucket{role="outbound",le="0.0005"}`, "1"},
		{`pqrelay_request_duration_seconds_bucket{role="outbound",le="10"}`, "1"},
		{`pqrelay_request_duration_seconds_bucket{role="outbound",le="30"}`, "2"},
		{`pqrelay_request_duration_seconds_bucket{role="outbound",le="+Inf"}`, "2"},
		{`pqrelay_request_duration_seconds_sum{role="outbound"}`, "30.0003"},
		{`pqrelay_request_duration_seconds_count{role="outbound"}`, "2"},
		{`pqrelay_request_duration_seconds_count{role="inbound"}`, "0"},
		{`pqrelay_upstream_duration_seconds_bucket{le="0.001"}`, "1"},
		{`pqrelay_upstream_duration_seconds_bucket{le="0.0005"}`, "0"},
		{`pqrelay_peer_duration_seconds_bucket{le="30"}`, "0"},
		{`pqrelay_peer_duration_seconds_bucket{le="+Inf"}`, "1"},
		{`pqrelay_peer_duration_seconds_sum`, "60"},
		{`pqrelay_pairings_total{role="outbound",result="ok"}`, "1"},
		{`pqrelay_pairings_total{role="inbound",result="refused"}`, "1"},
		{`pqrelay_pairings_total{role="inbound",result="ok"}`, "0"},
		{`pqrelay_rekeys_total{result="failed"}`, "1"},
		{`pqrelay_frames_refused_total{reason="replay"}`, "2"},
		{`pqrelay_frames_refused_total{reason="unauthentic"}`, "0"},
		{`pqrelay_store_degraded`, "1"},
		{`pqrelay_store_command_errors_total`, "1"},
		{`pqrelay_link_connections`, "2"},
		{`pqrelay_build_info{version="v1.2.3",commit="abc123",goversion="` + r.goVersion + `"}`, "1"},
	} {
		if got[c.series] != c.want {
			t.Errorf("%s = %q, want %q", c.series, got[c.series], c.want)
		}
	}
	degraded = false
	if v := samples(t, r.AppendText(nil))["pqrelay_store_degraded"]; v != "0" {
		t.Errorf("store recovered: pqrelay_store_degraded = %q", v)
	}
}

// TestEveryNameExported: Names lists exactly the families the exposition
// has, so a dashboard checked against Names is checked against the relay.
func TestEveryNameExported(t *testing.T) {
	t.Parallel()
	var types []string
	for _, line := range strings.Split(string(New(testOpts).AppendText(nil)), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			types = append(types, f[2])
		}
	}
	if strings.Join(types, " ") != strings.Join(Names(), " ") {
		t.Errorf("TYPE lines %v, Names() %v", types, Names())
	}
}

// TestPromtoolChecksExposition runs Prometheus's own linter on the
// exposition of a relay that recorded some of everything, label values that
// need escaping included.
func TestPromtoolChecksExposition(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: make deps installs it (Debian package prometheus)")
	}
	opts := testOpts
	opts.Version = `v1 "quoted" \ back` + "\nslash"
	opts.StoreDegraded = func() bool { return true }
	r := New(opts)
	r.RequestStarted()
	r.RequestDone(Inbound, OK, 2*time.Millisecond)
	r.UpstreamDone(time.Millisecond)
	r.FrameRefused(RefusedStale)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.AppendText(nil))
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHandler serves the exposition over real HTTP and refuses writes.
func TestHandler(t *testing.T) {
	t.Parallel()
	r := New(testOpts)
	r.Pairing(Outbound, ResultOK)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	for _, c := range []struct {
		method     string
		wantStatus int
		wantBody   string
	}{
		{"GET", 200, `pqrelay_pairings_total{role="outbound",result="ok"} 1`},
		{"POST", 405, ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.wantStatus || !strings.Contains(string(body), c.wantBody) {
			t.Errorf("%s: %d %q", c.method, resp.StatusCode, body)
		}
		if c.wantStatus == 200 && resp.Header.Get("Content-Type") != ContentType {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
	}
}

// TestConcurrentRecording: counts recorded from many goroutines while
// scrapes run all arrive (run under -race by make test).
func TestConcurrentRecording(t *testing.T) {
	t.Parallel()
	r := New(testOpts)
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r.RequestStarted()
				r.RequestDone(Inbound, OK, time.Millisecond)
			}
		}()
	}
	for range 10 {
		r.AppendText(nil)
	}
	wg.Wait()
	got := samples(t, r.AppendText(nil))
	if got[`pqrelay_requests_total{role="inbound",code="ok"}`] != "8000" ||
		got[`pqrelay_request_duration_seconds_count{role="inbound"}`] != "8000" ||
		got[`pqrelay_requests_in_flight`] != "0" {
		t.Errorf("after %d requests: %v", workers*each, got)
	}
}
