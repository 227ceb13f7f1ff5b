package proxy_test

import (
	"net/http"
	"net/url"
	"regexp"
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

// TestPassThroughAttacks: PASS_THROUGH_ROUTES bypasses sealing, so an
// attacker with a raw socket tries every spelling of a path that might make
// the pattern see one path and the upstream act on another. Each request
// that reaches the upstream must be at a path the pattern allows, as the
// upstream decodes it; the rest are refused before the upstream.
func TestPassThroughAttacks(t *testing.T) {
	t.Parallel()
	// ^/public/ is a prefix rule; ^/[^a] the kind of negated class an
	// operator writes to keep /admin out, which raw matching of /%61dmin
	// would get wrong.
	const patterns = "^/public/,^/[^a][^/]*$"
	allowed := regexp.MustCompile("^/public/|^/[^a][^/]*$")
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
	} {
		raw := "GET " + c.target + " HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n"
		got := rawExchange(t, p.B.Addr, raw, 5*time.Second)
		if s := rawStatus(got); s != c.want && !(c.want == "404" && s == "400") {
			t.Errorf("%s: answered %.120q, want %s", c.target, got, c.want)
		}
	}
	for _, path := range reachedPaths(t, p.Upstream) {
		if !allowed.MatchString(path) {
			t.Errorf("the upstream acted on %q, which PASS_THROUGH_ROUTES does not allow", path)
		}
	}
	for _, r := range p.Upstream.Requests() {
		if r.Host != strings.TrimPrefix(p.Upstream.URL, "http://") {
			t.Errorf("the upstream got Host %q", r.Host)
		}
	}
	if n := p.Upstream.Calls(); n != 5 {
		t.Errorf("the upstream got %d requests, want 5", n)
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
