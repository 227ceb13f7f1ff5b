package proxy_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{16}$`)

// TestRequestID: the app's x-request-id, or one relay A generates, reaches
// the upstream (sealed between the relays) and comes back to the app, on
// errors too.
func TestRequestID(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true})
	for _, c := range []struct {
		name, sent string
		keep       bool
	}{
		{"app's id", "app-id-42", true},
		{"none", "", false},
		{"with a space", "two words", false},
		{"too long", strings.Repeat("x", 129), false},
	} {
		p.Tap.Reset()
		req := p.Request(t, "GET", "/id", nil)
		if c.sent != "" {
			req.Header.Set("X-Request-Id", c.sent)
		}
		r := do(t, req)
		got := r.header.Get("X-Request-Id")
		if c.keep && got != c.sent || !c.keep && !generatedID.MatchString(got) {
			t.Errorf("%s: the app got id %q", c.name, got)
		}
		if up := p.Upstream.Last(t).Header.Get("X-Request-Id"); up != got {
			t.Errorf("%s: the upstream got id %q, the app %q", c.name, up, got)
		}
		if got != "" && strings.Contains(string(p.Tap.Sent()), got) {
			t.Errorf("%s: the id travels in clear between the relays", c.name)
		}
	}

	bad := p.Request(t, "GET", "/", nil)
	bad.Header.Set("x-mte-outbound-token", "wrong")
	bad.Header.Set("X-Request-Id", "refused-1")
	if r := do(t, bad); r.header.Get("X-Request-Id") != "refused-1" || relayCode(r) != "MTE_TOKEN_INVALID" {
		t.Errorf("refused request: id %q, code %q", r.header.Get("X-Request-Id"), relayCode(r))
	}
}

// TestAccessLog: with ACCESS_LOG each relay writes one line per request
// with role, method, path, status, code, duration, sizes and request id,
// and nothing of the query, headers or body; without it, none.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	on := func(c *proxy.Config) { c.AccessLog = true }
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: on, ConfigB: on})
	req := p.Request(t, "POST", "/items/7?api_key=QUERYSECRET", strings.NewReader("BODYSECRET"))
	req.Header.Set("Authorization", "Bearer HEADERSECRET")
	req.Header.Set("X-Request-Id", "log-me-1")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, c := range []struct {
		name, logs, role string
	}{
		{"A", p.A.Logs(), "outbound"},
		{"B", p.B.Logs(), "inbound"},
	} {
		var lines []string
		for _, l := range strings.Split(c.logs, "\n") {
			if strings.Contains(l, "msg=request ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("relay %s: %d access lines in\n%s", c.name, len(lines), c.logs)
		}
		for _, want := range []string{"role=" + c.role, "method=POST", "path=/items/7", "status=200", `code=""`,
			"duration=", "bytes_in=10", "bytes_out=10", "request_id=log-me-1"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("relay %s: access line %q lacks %q", c.name, lines[0], want)
			}
		}
		for _, secret := range []string{"QUERYSECRET", "BODYSECRET", "HEADERSECRET", relaytest.Secret, relaytest.Token} {
			if strings.Contains(c.logs, secret) {
				t.Errorf("relay %s logs %q", c.name, secret)
			}
		}
	}

	quiet := relaytest.NewPair(t, relaytest.Options{})
	do(t, quiet.Request(t, "GET", "/", nil))
	if logs := quiet.A.Logs() + quiet.B.Logs(); strings.Contains(logs, "msg=request ") {
		t.Errorf("access lines without ACCESS_LOG:\n%s", logs)
	}
}
