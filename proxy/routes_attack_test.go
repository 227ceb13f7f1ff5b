package proxy_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// rawStatus is the status code of a raw HTTP/1.1 answer, "" for none.
func rawStatus(raw string) string {
	if !strings.HasPrefix(raw, "HTTP/1.1 ") || len(raw) < 12 {
		return ""
	}
	return raw[9:12]
}

// reachedPaths returns the path of every request the upstream received,
// decoded as the upstream's own router reads it.
func reachedPaths(t *testing.T, u *relaytest.Upstream) []string {
	t.Helper()
	var paths []string
	for _, r := range u.Requests() {
		parsed, err := url.ParseRequestURI(r.RequestURI)
		if err != nil {
			t.Fatalf("upstream got %q: %v", r.RequestURI, err)
		}
		paths = append(paths, parsed.Path)
	}
	return paths
}

// withoutPathParameters is path as Tomcat reads it: ";" and what follows
// it up to the next "/" dropped from each segment.
func withoutPathParameters(path string) string {
	segments := strings.Split(path, "/")
	for i, seg := range segments {
		segments[i], _, _ = strings.Cut(seg, ";")
	}
	return strings.Join(segments, "/")
}

// TestPassThroughAttacks: PASS_THROUGH_ROUTES bypasses sealing, so an
// attacker with a raw socket tries every spelling of a path that might make
// the pattern see one path and the upstream act on another. Each request
// that reaches the upstream must be at a path the pattern allows, as the
// upstream decodes it; the rest are refused before the upstream.
func TestPassThroughAttacks(t *testing.T) {
	t.Parallel()
	// ^/public/ is a prefix rule; ^/[^a] the kind of negated class an
	// operator writes to keep /admin out, which raw matching of /%61dmin
	// would get wrong; \.css$ a suffix rule for static files, which a path
	// parameter (/admin;.css) would satisfy for a server that drops it.
	const patterns = `^/public/,^/[^a][^/]*$,\.css$`
	allowed := regexp.MustCompile(`^/public/|^/[^a][^/]*$|\.css$`)
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = patterns }})
	for _, c := range []struct {
		target, want string // want: the status
	}{
		{"/public/x", "200"},
		{"/public/x?next=/admin", "200"},
		{"http://evil.example/public/x", "200"}, // absolute-form: the authority is dropped, UPSTREAM's used
		{"/status", "200"},
		{"/admin", "404"},
		{"/%61dmin", "404"},
		{"/%41dmin", "200"}, // "/Admin": a different path, which the pattern allows
		{"/public/..%2fadmin", "404"},
		{"/public/..%2Fadmin", "404"},
		{"/public%2f..%2fadmin", "404"},
		{"/public/%2e%2e/admin", "404"},
		{"/public/%2e%2E/%61dmin", "404"},
		{"/public/.%2e/admin", "404"},
		{"/public/../admin", "404"},
		{"/public/./../admin", "404"},
		{"/public/..;/admin", "404"},
		{"/public/%252e%252e/admin", "404"},
		{"/public/..%252fadmin", "404"},
		{"//public/../admin", "404"},
		{"/public//../admin", "404"},
		{`/public/..\admin`, "404"},
		{"/public/..%5cadmin", "404"},
		{"/public/x%00/../../admin", "404"},
		{"/admin?/public/", "404"},
		{"/admin#/public/", "404"},
		{"/admin%23/public/", "404"},
		{"/admin%3f/public/", "404"},
		{"http://evil.example/admin?x=/public/", "404"},
		{"http://evil.example", "404"},
		{"//evil.example/public/x", "404"},
		{"https:/public/x", "404"},
		{"*", "404"},
		{"/public/x%", "404"},
		{"/public/x%zz", "404"},
		// Overlong UTF-8: "." and "/" as old Tomcat and IIS decoders read
		// them (CVE-2008-2938, CVE-2000-0884), escaped and raw.
		{"/public/%c0%ae%c0%ae/admin", "404"},
		{"/public/\xc0\xae\xc0\xae/admin", "404"},
		{"/%c0%afadmin", "404"},
		{"/public/%ff", "404"},
		{"/public/%C3%A9t%C3%A9", "200"}, // "/public/été": valid UTF-8 passes
		{"/static/site.css", "200"},
		// Path parameters: Tomcat, Jetty and Spring drop ";..." from each
		// segment, Go and nginx do not.
		{"/admin;.css", "404"},
		{"/admin;x=/y.css", "404"},
		{"/admin%3b.css", "404"},
		{"/admin?.css", "404"}, // the query is cut before matching
		{"/admin?x=/y.css", "404"},
		{"/admin#.css", "404"},
		{"/public/x;v=1", "404"},
	} {
		raw := "GET " + c.target + " HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n"
		got := rawExchange(t, p.B.Addr, raw, 5*time.Second)
		if s := rawStatus(got); s != c.want && !(c.want == "404" && s == "400") {
			t.Errorf("%s: answered %.120q, want %s", c.target, got, c.want)
		}
	}
	for _, path := range reachedPaths(t, p.Upstream) {
		if !allowed.MatchString(path) || !allowed.MatchString(withoutPathParameters(path)) {
			t.Errorf("the upstream acted on %q, which PASS_THROUGH_ROUTES does not allow", path)
		}
	}
	for _, r := range p.Upstream.Requests() {
		if r.Host != strings.TrimPrefix(p.Upstream.URL, "http://") {
			t.Errorf("the upstream got Host %q", r.Host)
		}
	}
	if n := p.Upstream.Calls(); n != 7 {
		t.Errorf("the upstream got %d requests, want 7", n)
	}
}

// TestAllowListAttacks: MTE_ROUTES fails closed. An app holding the token
// sends, over a raw socket to relay A, targets meant to reach a path
// outside the allow-list once relay B has opened them; none reaches the
// upstream.
func TestAllowListAttacks(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.MTERoutes = "^/api/" }})
	for _, c := range []struct {
		target  string
		reaches bool
	}{
		{"/api/items", true},
		{"/api/items?x=/admin", true},
		{"/%61pi/items", true}, // the upstream reads /api/items: allowed
		{"http://evil.example/api/items", true},
		{"/admin", false},
		{"/API/items", false},
		{"/admin?/api/", false},
		{"/v1/api/items", false},
		{"//api/items", false},
		{"/api/../admin", false},
		{"/api/%2e%2e/admin", false},
		{"/api/..%2fadmin", false},
		{"/api%2f..%2fadmin", false},
		{"/api/..;/admin", false},
		{`/api/..\admin`, false},
		{"/api/%252e%252e/admin", false},
		{"/api/x%", false},
		{"/api/%c0%ae%c0%ae/admin", false},
		{"/api/items;jsessionid=1", false}, // a path parameter: read two ways
		{"/api/%C3%A9t%C3%A9", true},
	} {
		before := p.Upstream.Calls()
		raw := "GET " + c.target + " HTTP/1.1\r\nHost: a.example\r\nx-mte-outbound-token: " + relaytest.Token +
			"\r\nx-mte-upstream: " + p.PeerURL + "\r\nConnection: close\r\n\r\n"
		got := rawExchange(t, p.A.Addr, raw, 10*time.Second)
		reached := p.Upstream.Calls() > before
		if reached != c.reaches {
			t.Errorf("%s: reached the upstream %v; answered %.200q", c.target, reached, got)
		}
		if !c.reaches && rawStatus(got) == "200" {
			t.Errorf("%s: answered %.200q", c.target, got)
		}
	}
	for _, path := range reachedPaths(t, p.Upstream) {
		if !strings.HasPrefix(path, "/api/") {
			t.Errorf("the upstream acted on %q", path)
		}
	}
	if r := do(t, p.Request(t, "GET", "/admin", nil)); r.status != http.StatusNotFound || relayCode(r) != "MTE_ROUTE_NOT_FOUND" {
		t.Errorf("/admin: %d %s %s", r.status, relayCode(r), r.body)
	}
}

// TestPassThroughMethodsAndUpgrades: the request forms that would turn a
// pass-through route into more than a request and its answer. The upstream
// here does what a permissive server may: it echoes a TRACE as RFC 9110
// §9.3.8 describes (with the fields added on the way, here a signature),
// answers a CONNECT 200 and switches protocols when asked. None of it may
// reach the anonymous client: TRACE and CONNECT are refused before the
// upstream, an Upgrade is dropped, and a 101 is never passed on.
func TestPassThroughMethodsAndUpgrades(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = "^/public/" }})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "TRACE":
			w.Header().Set("Content-Type", "message/http")
			r.Header.Write(w)
		case r.Header.Get("Upgrade") != "" || r.URL.Path == "/public/always-101":
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Connection", "Upgrade")
			w.WriteHeader(http.StatusSwitchingProtocols)
		}
	})
	for _, c := range []struct {
		name, raw, status string
		reaches           bool
	}{
		{"TRACE", "TRACE /public/x HTTP/1.1\r\nHost: b\r\n\r\n", "404", false},
		{"trace", "trace /public/x HTTP/1.1\r\nHost: b\r\n\r\n", "404", false},
		{"CONNECT, origin-form", "CONNECT /public/x HTTP/1.1\r\nHost: b\r\n\r\n", "404", false},
		{"CONNECT, authority-form", "CONNECT b:80 HTTP/1.1\r\nHost: b\r\n\r\n", "404", false},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: b\r\n\r\n", "204", false}, // the relay's own answer
		{"websocket", "GET /public/x HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "200", true},
		{"h2c", "GET /public/x HTTP/1.1\r\nHost: b\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
			"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", "200", true},
		{"upstream answers 101", "GET /public/always-101 HTTP/1.1\r\nHost: b\r\n\r\n", "502", true},
		{"Expect: 100-continue", "POST /public/x HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", "200", true},
	} {
		before := p.Upstream.Calls()
		got := rawExchange(t, p.B.Addr, strings.Replace(c.raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1), 5*time.Second)
		got = strings.TrimPrefix(got, "HTTP/1.1 100 Continue\r\n\r\n")
		if s := rawStatus(got); s != c.status || strings.Contains(got, "message/http") {
			t.Errorf("%s: answered %.300q, want %s", c.name, got, c.status)
		}
		if reached := p.Upstream.Calls() > before; reached != c.reaches {
			t.Errorf("%s: reached the upstream %v", c.name, reached)
		}
	}
	for _, r := range p.Upstream.Requests() {
		for _, name := range []string{"Upgrade", "Http2-Settings", "Expect"} {
			if v := r.Header.Get(name); v != "" {
				t.Errorf("%s %s: the upstream got %s: %s", r.Method, r.RequestURI, name, v)
			}
		}
	}
}

// TestHeadersCannotBeShadowed: HEADERS replaces the client's field of the
// same name, and also one spelled with "_" for "-": servers that map field
// names to CGI-style variables (Rack, WSGI, PHP) read X_Tenant as X-Tenant,
// so an anonymous pass-through client, or an app, could otherwise override
// the value the relay sets (Puma's CVE-2024-45614 is this attack on
// X-Forwarded-For).
func TestHeadersCannotBeShadowed(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.PassThroughRoutes = "^/public/"
		c.Headers = []proxy.Header{{Name: "X-Tenant", Value: "acme"}}
	}})
	forged := "x_tenant: evil\r\nX-TENANT: evil\r\nX_Tenant: evil\r\nX-Tenant-Id: kept\r\n"
	for _, c := range []struct {
		name, addr, raw string
	}{
		{"pass-through", p.B.Addr, "GET /public/x HTTP/1.1\r\nHost: b\r\n" + forged + "Connection: close\r\n\r\n"},
		{"sealed", p.A.Addr, appRequest(p, "GET /x HTTP/1.1", forged+"Connection: close\r\n", "")},
	} {
		if got := rawExchange(t, c.addr, c.raw, 5*time.Second); rawStatus(got) != "200" {
			t.Fatalf("%s: answered %.200q", c.name, got)
		}
		got := p.Upstream.Last(t).Header
		cgi := map[string][]string{}
		for name, values := range got {
			key := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			cgi[key] = append(cgi[key], values...)
		}
		if v := cgi["X_TENANT"]; len(v) != 1 || v[0] != "acme" {
			t.Errorf("%s: the upstream read X-Tenant as %q (fields %v)", c.name, v, got)
		}
		if got.Get("X-Tenant-Id") != "kept" {
			t.Errorf("%s: X-Tenant-Id lost: %v", c.name, got)
		}
	}
}

// TestPassThroughRelayHeadersAndEndpoints: with a route that passes every
// path, a request that carries a relay header is still the relay's, never
// the upstream's, and so is every spelling of the relay's own endpoints.
func TestPassThroughRelayHeadersAndEndpoints(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = "^/" }})
	for _, c := range []struct {
		name, raw, status string
	}{
		{"client id, garbage", "GET /x HTTP/1.1\r\nHost: b\r\nx-mte-client-id: AAAA\r\n\r\n", "401"},
		{"client id, empty", "GET /x HTTP/1.1\r\nHost: b\r\nx-mte-client-id: \r\n\r\n", "401"},
		{"peer without the token", "GET /x HTTP/1.1\r\nHost: b\r\nx-mte-upstream: " + p.PeerURL + "\r\n\r\n", "401"},
		{"token without a peer", "GET /x HTTP/1.1\r\nHost: b\r\nx-mte-outbound-token: " + relaytest.Token + "\r\n\r\n", "400"},
		{"wrong token", "GET /x HTTP/1.1\r\nHost: b\r\nx-mte-outbound-token: guess\r\nx-mte-upstream: " + p.PeerURL + "\r\n\r\n", "401"},
		{"health", "GET /api/mte-health HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
		{"health, //", "GET /api//mte-health HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
		{"health, absolute-form", "GET http://up.example/api/mte-health HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
		{"echo", "GET /api/mte-echo/x HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
		{"relay", "HEAD /api/mte-relay HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
		{"pairing", "POST /api/mte-pair HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc", "401"},
		{"errors", "GET /api/mte-errors HTTP/1.1\r\nHost: b\r\n\r\n", "200"},
	} {
		before := p.Upstream.Calls()
		got := rawExchange(t, p.B.Addr, strings.Replace(c.raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1), 5*time.Second)
		if s := rawStatus(got); s != c.status {
			t.Errorf("%s: answered %.200q, want %s", c.name, got, c.status)
		}
		if p.Upstream.Calls() != before {
			t.Errorf("%s: reached the upstream", c.name)
		}
	}
}

// TestPassThroughPipelined: plain requests pipelined on one connection are
// routed one by one: a refused one between two that pass does not carry
// them, nor they it, to the upstream.
func TestPassThroughPipelined(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = "^/public/" }})
	inBody := "GET /admin HTTP/1.1\r\nHost: b\r\n\r\n"
	raw := "GET /public/a HTTP/1.1\r\nHost: b\r\n\r\n" +
		"GET /admin HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n" +
		"POST /public/b HTTP/1.1\r\nHost: b\r\nContent-Length: " + strconv.Itoa(len(inBody)) + "\r\n\r\n" + inBody +
		"GET /public/c HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
	got := rawExchange(t, p.B.Addr, raw, 5*time.Second)
	var statuses []string
	for _, part := range strings.Split(got, "HTTP/1.1 ")[1:] {
		statuses = append(statuses, part[:3])
	}
	if strings.Join(statuses, " ") != "200 404 200 200" {
		t.Errorf("answers %v: %q", statuses, got)
	}
	var uris []string
	for _, r := range p.Upstream.Requests() {
		uris = append(uris, r.RequestURI)
	}
	if strings.Join(uris, " ") != "/public/a /public/b /public/c" {
		t.Errorf("the upstream got %v", uris)
	}
}

// TestPassThroughFraming: a pass-through request whose body framing a
// front proxy and the relay could read differently is refused 400 and its
// connection closed, so that what follows it, here a second pass-through
// request, is never read as a request of its own.
func TestPassThroughFraming(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = "^/public/" }})
	const head = "POST /public/x HTTP/1.1\r\nHost: b\r\n"
	const next = "GET /public/smuggled HTTP/1.1\r\nHost: b\r\n\r\n"
	for _, c := range []struct{ name, fields, body string }{
		{"two lengths", "Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"},
		{"the same length twice", "Content-Length: 3\r\nContent-Length: 3\r\n", "abc"},
		{"a length list", "Content-Length: 3, 3\r\n", "abc"},
		{"a signed length", "Content-Length: +3\r\n", "abc"},
		{"a negative length", "Content-Length: -1\r\n", ""},
		{"a hexadecimal length", "Content-Length: 0x3\r\n", "abc"},
		{"space before the colon", "Content-Length : 3\r\n", "abc"},
		{"tab before the colon", "Transfer-Encoding\t: chunked\r\nContent-Length: 3\r\n", "abc"},
		{"chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"},
		{"chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"},
		{"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"},
		{"chunked, identity", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "3\r\nabc\r\n0\r\n\r\n"},
		{"an unknown coding with a length", "Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n", "abc"},
		{"a hexadecimal chunk size", "Transfer-Encoding: chunked\r\n", "0x3\r\nabc\r\n0\r\n\r\n"},
		{"a chunk size that overflows", "Transfer-Encoding: chunked\r\n", "ffffffffffffffff1\r\nabc\r\n0\r\n\r\n"},
		{"chunk lines ending in bare LF", "Transfer-Encoding: chunked\r\n", "3\nabc\n0\n\n"},
		{"a length in the trailer", "Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n"},
	} {
		got := rawExchange(t, p.B.Addr, head+c.fields+"\r\n"+c.body+next, 5*time.Second)
		if rawStatus(got) != "400" || strings.Count(got, "HTTP/1.1 ") != 1 {
			t.Errorf("%s: answered %.300q, want one 400", c.name, got)
		}
	}
	if n := p.Upstream.Calls(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}
