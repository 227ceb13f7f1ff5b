package proxy_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// metricValues reads a recorder's exposition into series → value.
func metricValues(rec *metrics.Relay) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(rec.AppendText(nil)))
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			i := strings.LastIndexByte(line, ' ')
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

func newRecorder() *metrics.Relay {
	return metrics.New(metrics.Options{Codes: proxy.ErrorCodes()})
}

// TestMetricsRecordWhatHappened drives a real pair through a success, an
// app error, a sealed upstream error, a replayed and a tampered frame, and
// checks that each relay counted exactly that.
func TestMetricsRecordWhatHappened(t *testing.T) {
	t.Parallel()
	recA, recB := newRecorder(), newRecorder()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true,
		ConfigA: func(c *proxy.Config) { c.Metrics = recA },
		ConfigB: func(c *proxy.Config) { c.Metrics = recB },
	})
	if r := do(t, p.Request(t, "POST", "/ok", strings.NewReader("x"))); r.status != 200 {
		t.Fatalf("ok: %d %s", r.status, r.body)
	}
	frame := lastFrame(t, p.Tap.Sent())

	bad := p.Request(t, "GET", "/", nil)
	bad.Header.Set("x-mte-outbound-token", "wrong")
	if r := do(t, bad); relayCode(r) != "MTE_TOKEN_INVALID" {
		t.Fatalf("wrong token: %d %s", r.status, r.body)
	}

	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close() // the upstream hangs up without answering
		}
	})
	if r := do(t, p.Request(t, "GET", "/down", nil)); relayCode(r) != "MTE_UPSTREAM_UNREACHABLE" {
		t.Fatalf("upstream down: %d %s", r.status, r.body)
	}

	if r := frame.sendTo(t, p.B.URL, frame.body); relayCode(r) != "MTE_FRAME_REJECTED" {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	tampered := bytes.Clone(frame.body)
	tampered[len(tampered)-1] ^= 1
	frame.sendTo(t, p.B.URL, tampered)

	a, b := metricValues(recA), metricValues(recB)
	for _, c := range []struct {
		name   string
		values map[string]string
		series string
		want   string
	}{
		{"A", a, `pqrelay_requests_total{role="outbound",code="ok"}`, "1"},
		{"A", a, `pqrelay_requests_total{role="outbound",code="MTE_TOKEN_INVALID"}`, "1"},
		{"A", a, `pqrelay_requests_total{role="outbound",code="MTE_UPSTREAM_UNREACHABLE"}`, "1"},
		{"A", a, `pqrelay_request_duration_seconds_count{role="outbound"}`, "3"},
		{"A", a, `pqrelay_requests_in_flight`, "0"},
		{"A", a, `pqrelay_peer_duration_seconds_count`, "2"},
		{"A", a, `pqrelay_pairings_total{role="outbound",result="ok"}`, "1"},
		{"A", a, `pqrelay_requests_total{role="inbound",code="ok"}`, "0"},
		{"B", b, `pqrelay_requests_total{role="inbound",code="ok"}`, "1"},
		{"B", b, `pqrelay_requests_total{role="inbound",code="MTE_UPSTREAM_UNREACHABLE"}`, "1"},
		{"B", b, `pqrelay_requests_total{role="inbound",code="MTE_FRAME_REJECTED"}`, "2"},
		{"B", b, `pqrelay_upstream_duration_seconds_count`, "2"},
		{"B", b, `pqrelay_pairings_total{role="inbound",result="ok"}`, "1"},
		{"B", b, `pqrelay_frames_refused_total{reason="replay"}`, "1"},
		{"B", b, `pqrelay_frames_refused_total{reason="unauthentic"}`, "1"},
		{"B", b, `pqrelay_frames_refused_total{reason="stale"}`, "0"},
		{"B", b, `pqrelay_requests_in_flight`, "0"},
	} {
		if c.values[c.series] != c.want {
			t.Errorf("relay %s: %s = %q, want %s", c.name, c.series, c.values[c.series], c.want)
		}
	}
}

// TestMetricsCountRoleRefusals: a request a relay's RELAY_ROLE refuses is
// counted under the role it asked for, with the refusal's code.
func TestMetricsCountRoleRefusals(t *testing.T) {
	t.Parallel()
	recA, recB := newRecorder(), newRecorder()
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.Role, c.Upstream, c.Metrics = proxy.RoleOutbound, "", recA },
		ConfigB: func(c *proxy.Config) { c.Role, c.OutboundToken, c.Metrics = proxy.RoleInbound, "", recB },
	})
	app, _ := http.NewRequest("GET", p.B.URL+"/api/items", nil)
	if r := do(t, app); relayCode(r) != "MTE_INBOUND_ONLY" {
		t.Fatalf("app request to B: %d %s", r.status, r.body)
	}
	pairing, _ := http.NewRequest("POST", p.A.URL+"/api/mte-pair", nil)
	if r := do(t, pairing); relayCode(r) != "MTE_OUTBOUND_ONLY" {
		t.Fatalf("pairing with A: %d %s", r.status, r.body)
	}
	if v := metricValues(recB)[`pqrelay_requests_total{role="outbound",code="MTE_INBOUND_ONLY"}`]; v != "1" {
		t.Errorf("B counted %q app requests refused by its role, want 1", v)
	}
	if v := metricValues(recA)[`pqrelay_requests_total{role="inbound",code="MTE_OUTBOUND_ONLY"}`]; v != "1" {
		t.Errorf("A counted %q relay requests refused by its role, want 1", v)
	}
}
