package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// routedPair is a pair whose relay B passes /public/ and /health through
// and lets sealed requests reach /api/ only.
func routedPair(t *testing.T, edit func(*proxy.Config)) *relaytest.Pair {
	t.Helper()
	return relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.PassThroughRoutes = "^/public/, ^/health$"
		c.MTERoutes = "^/api/"
		c.Headers = []proxy.Header{{Name: "X-Relay-B", Value: "yes"}}
		if edit != nil {
			edit(c)
		}
	}})
}

// plain sends a request to relay B as a client without the relays would.
func plain(t *testing.T, method, url, body string, header map[string]string) result {
	t.Helper()
	var req *http.Request
	var err error
	if body == "" {
		req, err = http.NewRequest(method, url, nil)
	} else {
		req, err = http.NewRequest(method, url, strings.NewReader(body))
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// TestPassThrough: a plain request PASS_THROUGH_ROUTES matches reaches the
// upstream as sent (method, path, query, body, the app's fields), minus
// x-mte-* and hop-by-hop fields and with HEADERS; the answer comes back as
// the upstream gave it.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	p := routedPair(t, nil)
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("x-mte-relay-error", "FORGED")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
	})
	r := plain(t, "PUT", p.B.URL+"/public/items?id=42&q=a%20b", `{"n":1}`, map[string]string{
		"Content-Type": "application/json", "Cookie": `k="v"`, "Authorization": "Bearer t",
		"Connection": "X-Secret", "X-Secret": "hop", "x-mte-encode-type": "MTE", "X-Relay-B": "app's",
	})
	if r.status != http.StatusAccepted || string(r.body) != "PUT /public/items?id=42&q=a%20b" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if r.header.Get("X-Upstream") != "yes" || r.header.Get("X-Relay-B") != "yes" || relayCode(r) != "" ||
		len(r.header.Values("Set-Cookie")) != 2 {
		t.Errorf("response header %v", r.header)
	}
	got := p.Upstream.Last(t)
	if got.Method != "PUT" || got.RequestURI != "/public/items?id=42&q=a%20b" || string(got.Body) != `{"n":1}` {
		t.Errorf("upstream got %s %s %q", got.Method, got.RequestURI, got.Body)
	}
	h := got.Header
	if h.Get("Cookie") != `k="v"` || h.Get("Authorization") != "Bearer t" || h.Get("Content-Type") != "application/json" ||
		h.Get("X-Relay-B") != "yes" || len(h.Values("X-Relay-B")) != 1 {
		t.Errorf("upstream header %v", h)
	}
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-mte-") || name == "X-Secret" {
			t.Errorf("upstream got %s", name)
		}
	}
	if r := plain(t, "HEAD", p.B.URL+"/health", "", nil); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Errorf("HEAD /health: %d %q", r.status, r.body)
	}
}

// TestRouteAllowList: with MTE_ROUTES set, sealed requests reach only the
// paths it matches, over relay links and per-request HTTP alike; others,
// and plain requests for a path in neither list, are answered 404
// MTE_ROUTE_NOT_FOUND without the upstream seeing them.
func TestRouteAllowList(t *testing.T) {
	t.Parallel()
	for _, links := range []bool{true, false} {
		t.Run(fmt.Sprintf("links=%v", links), func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{
				ConfigA: func(c *proxy.Config) { c.NoPeerLinks = !links },
				ConfigB: func(c *proxy.Config) { c.PassThroughRoutes, c.MTERoutes = "^/public/", "^/api/" },
			})
			// Links open in the background while the first requests go
			// over HTTP: wait for one, so that the table runs on it.
			for deadline := time.Now().Add(5 * time.Second); links && p.B.Server.LinkConnections() == 0; {
				if time.Now().After(deadline) {
					t.Fatal("no relay link opened")
				}
				do(t, p.Request(t, "GET", "/api/warm-up", nil))
				time.Sleep(10 * time.Millisecond)
			}
			for _, c := range []struct {
				sealed       bool
				path, code   string
				status       int
				reachesUpstr bool
			}{
				{true, "/api/items?id=1", "", 200, true},
				{true, "/admin", "MTE_ROUTE_NOT_FOUND", 404, false},
				{true, "/public/x", "MTE_ROUTE_NOT_FOUND", 404, false}, // pass-through is for plain requests
				{true, "/v1/api/items", "MTE_ROUTE_NOT_FOUND", 404, false},
				{false, "/public/x", "", 200, true},
				{false, "/admin", "MTE_ROUTE_NOT_FOUND", 404, false},
				{false, "/api/items", "MTE_TOKEN_MISSING", 401, false}, // B is also an outbound relay
			} {
				before := p.Upstream.Calls()
				var r result
				if c.sealed {
					r = do(t, p.Request(t, "GET", c.path, nil))
				} else {
					r = plain(t, "GET", p.B.URL+c.path, "", nil)
				}
				if r.status != c.status || relayCode(r) != c.code {
					t.Errorf("sealed %v %s: %d %s %s", c.sealed, c.path, r.status, relayCode(r), r.body)
				}
				if reached := p.Upstream.Calls() > before; reached != c.reachesUpstr {
					t.Errorf("sealed %v %s: upstream reached %v", c.sealed, c.path, reached)
				}
			}
		})
	}
}

// TestRoutesInboundOnly: an inbound-only relay B passes matching plain
// requests through, answers others MTE_ROUTE_NOT_FOUND, and still refuses
// an app's request for the outbound role.
func TestRoutesInboundOnly(t *testing.T) {
	t.Parallel()
	p := routedPair(t, func(c *proxy.Config) { c.Role, c.OutboundToken = proxy.RoleInbound, "" })
	for _, c := range []struct {
		path, token, code string
		status            int
	}{
		{"/health", "", "", 200},
		{"/admin", "", "MTE_ROUTE_NOT_FOUND", 404},
		{"/api/x", "", "MTE_INBOUND_ONLY", 403},
		{"/public/x", relaytest.Token, "MTE_INBOUND_ONLY", 403},
	} {
		h := map[string]string{}
		if c.token != "" {
			h["x-mte-outbound-token"] = c.token
		}
		r := plain(t, "POST", p.B.URL+c.path, "body", h)
		if r.status != c.status || relayCode(r) != c.code {
			t.Errorf("%s: %d %s %s", c.path, r.status, relayCode(r), r.body)
		}
	}
	if r := do(t, p.Request(t, "GET", "/api/x", nil)); r.status != 200 {
		t.Errorf("sealed /api/x: %d %s", r.status, r.body)
	}
	if n := p.Upstream.Calls(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

// TestPassThroughLimits: pass-through requests get the relay's limits and
// upstream errors: MAX_BODY_BYTES, UPSTREAM_TIMEOUT, an unreachable
// upstream, JSON protection.
func TestPassThroughLimits(t *testing.T) {
	t.Parallel()
	p := routedPair(t, func(c *proxy.Config) {
		c.MaxBodyBytes = 1000
		c.UpstreamTimeout = 300 * time.Millisecond
		c.JSONLimits.MaxDepth = 3
	})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/slow" {
			time.Sleep(time.Second)
		}
	})
	for _, c := range []struct {
		path, body, ctype, code string
		status                  int
	}{
		{"/public/ok", strings.Repeat("x", 1000), "", "", 200},
		{"/public/big", strings.Repeat("x", 1001), "", "MTE_BODY_TOO_LARGE", 413},
		{"/public/slow", "", "", "MTE_UPSTREAM_TIMEOUT", 504},
		{"/public/deep", `[[[[1]]]]`, "application/json", "MTE_JSON_THREAT", 400},
		{"/public/bad", `{`, "application/json", "MTE_JSON_INVALID", 400},
	} {
		before := p.Upstream.Calls()
		r := plain(t, "POST", p.B.URL+c.path, c.body, map[string]string{"Content-Type": c.ctype})
		if r.status != c.status || relayCode(r) != c.code {
			t.Errorf("%s: %d %s %.100s", c.path, r.status, relayCode(r), r.body)
		}
		if c.status != 200 && c.status != 504 && p.Upstream.Calls() != before {
			t.Errorf("%s reached the upstream", c.path)
		}
	}

	// Over admit's limit too: refused on the header section alone.
	got := rawExchange(t, p.B.Addr, "POST /public/huge HTTP/1.1\r\nHost: b\r\nContent-Length: 8388608\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 413 ") || !strings.Contains(got, "MTE_BODY_TOO_LARGE") {
		t.Errorf("8 MiB: %.200q", got)
	}

	down := relaytest.StartRelay(t, func() proxy.Config {
		c := relaytest.BaseConfig("http://127.0.0.1:1")
		c.PassThroughRoutes = "^/public/"
		return c
	}(), nil, "")
	if r := plain(t, "GET", down.URL+"/public/x", "", nil); relayCode(r) != "MTE_UPSTREAM_UNREACHABLE" {
		t.Errorf("upstream down: %d %s", r.status, r.body)
	}
}

// TestRoutesMalformedPattern: a malformed pattern stops the relay with one
// line naming the variable and the pattern.
func TestRoutesMalformedPattern(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		edit func(*proxy.Config)
		want string
	}{
		{func(c *proxy.Config) { c.PassThroughRoutes = "^/ok/, ^/(a" }, `PASS_THROUGH_ROUTES: "^/(a" is not an RE2 regular expression`},
		{func(c *proxy.Config) { c.MTERoutes = `^/api/\` }, `MTE_ROUTES: "^/api/\\" is not an RE2 regular expression`},
		{func(c *proxy.Config) { c.MTERoutes = "^/api/,,^/v2/" }, "MTE_ROUTES: an empty pattern"},
		{func(c *proxy.Config) { c.Role, c.PassThroughRoutes = proxy.RoleOutbound, "*" }, `PASS_THROUGH_ROUTES: "*"`},
	} {
		cfg := relaytest.BaseConfig("http://127.0.0.1:1")
		c.edit(&cfg)
		_, err := proxy.New(cfg, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want %q…", err, c.want)
		}
	}
}

// TestRoutesOutboundWarning: the route settings act on relay B; set on an
// outbound-only relay they are ignored, with a warning.
func TestRoutesOutboundWarning(t *testing.T) {
	t.Parallel()
	cfg := relaytest.BaseConfig("")
	cfg.Role, cfg.MTERoutes = proxy.RoleOutbound, "^/api/"
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "PASS_THROUGH_ROUTES/MTE_ROUTES act on the inbound relay") {
		t.Errorf("warnings: %s", w)
	}
	cfg.Role = proxy.RoleBoth
	if w := strings.Join(cfg.Warnings(), "\n"); strings.Contains(w, "MTE_ROUTES") {
		t.Errorf("warnings for RELAY_ROLE=both: %s", w)
	}
}

// TestPassThroughVisible: pass-through requests, and plain ones refused for
// their path, are counted under their own role and logged as such.
func TestPassThroughVisible(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	p := routedPair(t, func(c *proxy.Config) { c.Metrics, c.AccessLog = rec, true })
	plain(t, "GET", p.B.URL+"/health?secret=1", "", nil)
	plain(t, "GET", p.B.URL+"/admin", "", nil)
	if r := do(t, p.Request(t, "GET", "/api/x", nil)); r.status != 200 {
		t.Fatalf("sealed: %d %s", r.status, r.body)
	}
	values := metricValues(rec)
	for series, want := range map[string]string{
		`pqrelay_requests_total{role="pass_through",code="ok"}`:                  "1",
		`pqrelay_requests_total{role="pass_through",code="MTE_ROUTE_NOT_FOUND"}`: "1",
		`pqrelay_requests_total{role="inbound",code="ok"}`:                       "1",
		`pqrelay_request_duration_seconds_count{role="pass_through"}`:            "2",
		`pqrelay_requests_in_flight`:                                             "0",
	} {
		if values[series] != want {
			t.Errorf("%s = %q, want %s", series, values[series], want)
		}
	}
	for name := range values {
		if strings.HasPrefix(name, "pqrelay_pairings_total{role=\"pass_through\"") {
			t.Errorf("exposition has %s", name)
		}
	}
	logs := p.B.Logs()
	if !strings.Contains(logs, "role=pass_through method=GET path=/health status=200") ||
		!strings.Contains(logs, "role=pass_through method=GET path=/admin status=404 code=MTE_ROUTE_NOT_FOUND") ||
		strings.Contains(logs, "secret=1") {
		t.Errorf("access log:\n%s", logs)
	}
}
