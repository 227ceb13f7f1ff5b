package proxy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// browserReads is the browser's half of the Fetch standard's CORS protocol
// ("CORS check"): whether a script at origin may read the response, with or
// without credentials (cookies).
func browserReads(h http.Header, origin string, credentials bool) bool {
	acao := h.Values("Access-Control-Allow-Origin")
	switch {
	case len(acao) != 1:
		return false
	case acao[0] == "*":
		return !credentials
	case acao[0] != origin:
		return false
	}
	return !credentials || slices.Equal(h.Values("Access-Control-Allow-Credentials"), []string{"true"})
}

// exposedHeaders is the set of header names a script may read beyond the
// CORS-safelisted ones ("CORS-unsafe response header names").
func exposedHeaders(h http.Header) map[string]bool {
	out := map[string]bool{}
	for _, v := range h.Values("Access-Control-Expose-Headers") {
		for _, name := range strings.Split(v, ",") {
			out[strings.ToLower(strings.TrimSpace(name))] = true
		}
	}
	return out
}

// hostileCORS is an upstream that grants everything itself: the relay's
// policy must win over it.
func hostileCORS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "https://evil.example")
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	w.Header().Set("Access-Control-Expose-Headers", "x-secret")
	w.Header().Set("Access-Control-Allow-Methods", "DELETE")
	w.Header().Set("X-Secret", "s")
	w.Header().Set("X-Request-Id", "r-1")
	w.Write([]byte("data"))
}

// TestCORSResponses: CORS_ORIGINS=* answers the literal *, never with
// credentials; null and other origins are reflected only when listed;
// CORS_CREDENTIALS adds credentials for listed origins only; the upstream's
// own Access-Control-* headers never reach the browser; relay errors and
// CORS_EXPOSE_HEADERS are readable.
func TestCORSResponses(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	pair := func(origins []string, credentials bool) *relaytest.Pair {
		p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) {
			c.CORSOrigins, c.CORSCredentials = origins, credentials
			c.CORSExposeHeaders = []string{"X-Request-Id"}
		}})
		p.Upstream.Handle(hostileCORS)
		return p
	}
	anyOrigin := pair([]string{"*"}, false)
	listed := pair([]string{"HTTPS://App.Example.com:443/"}, false)
	listedNull := pair([]string{app, "null"}, false)
	withCredentials := pair([]string{app}, true)

	cases := []struct {
		name       string
		p          *relaytest.Pair
		origin     string
		acao       string // "" means absent
		acac       bool
		readable   bool // by a script without credentials
		credReads  bool // by a script sending cookies
		varyOrigin bool
	}{
		{"* answers the literal *", anyOrigin, "https://any.example", "*", false, true, false, false},
		{"* answers null with the literal *", anyOrigin, "null", "*", false, true, false, false},
		{"listed origin, canonical form", listed, app, app, false, true, false, true},
		{"null not listed", listed, "null", "", false, false, false, true},
		{"unlisted origin", listed, "https://evil.example", "", false, false, false, true},
		{"null listed", listedNull, "null", "null", false, true, false, true},
		{"credentials for a listed origin", withCredentials, app, app, true, true, true, true},
		{"no credentials for an unlisted origin", withCredentials, "https://evil.example", "", false, false, false, true},
	}
	for _, c := range cases {
		req := c.p.Request(t, "GET", "/data", nil)
		req.Header.Set("Origin", c.origin)
		r := do(t, req)
		if r.status != 200 || string(r.body) != "data" {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		h := r.header
		if got := strings.Join(h.Values("Access-Control-Allow-Origin"), "|"); got != c.acao {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c.name, got, c.acao)
		}
		if got := h.Get("Access-Control-Allow-Credentials"); (got == "true") != c.acac || len(h.Values("Access-Control-Allow-Credentials")) > 1 {
			t.Errorf("%s: Access-Control-Allow-Credentials %q, want present=%v", c.name, got, c.acac)
		}
		if browserReads(h, c.origin, false) != c.readable || browserReads(h, c.origin, true) != c.credReads {
			t.Errorf("%s: readable %v / with credentials %v, want %v / %v (%v)", c.name,
				browserReads(h, c.origin, false), browserReads(h, c.origin, true), c.readable, c.credReads, h)
		}
		if h.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("%s: the upstream's Access-Control-Allow-Methods reached the browser", c.name)
		}
		exposed := exposedHeaders(h)
		if exposed["x-secret"] {
			t.Errorf("%s: the upstream's Access-Control-Expose-Headers reached the browser", c.name)
		}
		if c.readable && !(exposed["x-mte-relay-error"] && exposed["x-mte-peer-error"] && exposed["x-request-id"]) {
			t.Errorf("%s: exposed headers %v, want the relay's two and CORS_EXPOSE_HEADERS", c.name, exposed)
		}
		if got := slices.Contains(h.Values("Vary"), "Origin"); got != c.varyOrigin {
			t.Errorf("%s: Vary %q, want Origin: %v", c.name, h.Values("Vary"), c.varyOrigin)
		}
	}

	// A relay error is readable too, with its code.
	req := withCredentials.Request(t, "GET", "/data", nil)
	req.Header.Set("x-mte-outbound-token", "wrong-"+relaytest.Token)
	req.Header.Set("Origin", app)
	r := do(t, req)
	if r.status != 401 || !browserReads(r.header, app, true) || !exposedHeaders(r.header)["x-mte-relay-error"] || relayCode(r) != "MTE_TOKEN_INVALID" {
		t.Errorf("relay error: %d %v", r.status, r.header)
	}
}

// TestCORSDisabledIsTransparent: without CORS_ORIGINS the relay has no CORS
// policy of its own, and the upstream's headers pass through as they are.
func TestCORSDisabledIsTransparent(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	p.Upstream.Handle(hostileCORS)
	req := p.Request(t, "GET", "/data", nil)
	req.Header.Set("Origin", "https://app.example.com")
	r := do(t, req)
	if r.header.Get("Access-Control-Allow-Origin") != "https://evil.example" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("upstream's CORS headers: %v", r.header)
	}
}

// TestCORSPreflight: the relay answers preflights itself, with the policy's
// origin and credentials, and reflects Access-Control-Request-Headers only
// when it is a list of header names.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	edit := func(origins []string, credentials bool) func(*proxy.Config) {
		return func(c *proxy.Config) {
			c.CORSOrigins, c.CORSCredentials, c.CORSMethods = origins, credentials, []string{"GET", "POST"}
		}
	}
	listed := relaytest.NewPair(t, relaytest.Options{ConfigA: edit([]string{app}, true)})
	anyOrigin := relaytest.NewPair(t, relaytest.Options{ConfigA: edit([]string{"*"}, false)})
	cases := []struct {
		name, origin, requestHeaders string
		p                            *relaytest.Pair
		status                       int
		acao, acac, allowHeaders     string
	}{
		{"listed origin with credentials", app, "content-type,x-mte-outbound-token,x-mte-upstream", listed, 204,
			app, "true", "content-type,x-mte-outbound-token,x-mte-upstream"},
		{"a list with spaces", app, "content-type, x-a", listed, 204, app, "true", "content-type, x-a"},
		{"not a list of names", app, "x-a; evil=1", listed, 204, app, "true", ""},
		{"a name with a space", app, "x-a, bad name", listed, 204, app, "true", ""},
		{"an empty item", app, "x-a,,x-b", listed, 204, app, "true", ""},
		{"a trailing comma", app, "x-a,", listed, 204, app, "true", ""},
		{"unlisted origin", "https://evil.example", "x-a", listed, 403, "", "", ""},
		{"null not listed", "null", "x-a", listed, 403, "", "", ""},
		{"* without credentials", "https://any.example", "x-a", anyOrigin, 204, "*", "", "x-a"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("OPTIONS", c.p.A.URL+"/data", nil)
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", c.requestHeaders)
		r := do(t, req)
		h := r.header
		if r.status != c.status || h.Get("Access-Control-Allow-Origin") != c.acao || h.Get("Access-Control-Allow-Credentials") != c.acac ||
			h.Get("Access-Control-Allow-Headers") != c.allowHeaders {
			t.Errorf("%s: %d %v, want %d origin %q credentials %q headers %q", c.name, r.status, h, c.status, c.acao, c.acac, c.allowHeaders)
		}
		if c.status == 204 && h.Get("Access-Control-Allow-Methods") != "GET, POST" {
			t.Errorf("%s: Access-Control-Allow-Methods %q", c.name, h.Get("Access-Control-Allow-Methods"))
		}
	}
	if n := listed.Upstream.Calls() + anyOrigin.Upstream.Calls(); n != 0 {
		t.Errorf("preflights reached the upstream %d times", n)
	}
}
