package proxy

import (
	"fmt"
	"strings"
	"testing"
)

// TestRouteAnchoring: patterns are anchored only where they say so.
func TestRouteAnchoring(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		patterns, path string
		want           bool
	}{
		{"^/public/", "/public/x", true},
		{"^/public/", "/api/public/x", false},
		{"public", "/api/public/x", true},
		{"^/health$", "/health", true},
		{"^/health$", "/health/x", false},
		{"^/health$", "/healthz", false},
		{"health", "/healthz", true},
		{"^/a/, ^/b/ ,^/c/", "/b/x", true},
		{"^/v[0-9]{1,3}/items$", "/v12/items", true},
		{"^/v[0-9]{1,3}/items$", "/v1234/items", false},
		{"^/[,;]x$", "/,x", true},
		{`^/a\,b$`, "/a,b", true},
	} {
		l, err := parseRouteList("PASS_THROUGH_ROUTES", c.patterns)
		if err != nil {
			t.Fatalf("%q: %v", c.patterns, err)
		}
		if got := l.match([]byte(c.path)); got != c.want {
			t.Errorf("%q matches %q: %v, want %v", c.patterns, c.path, got, c.want)
		}
	}
}

// TestParseRouteListErrors: a malformed or empty pattern stops start-up
// with one line naming the variable and the pattern; an unset value is
// no list.
func TestParseRouteListErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ raw, want string }{
		{"^/ok/,(", `MTE_ROUTES: "(" is not an RE2 regular expression: missing closing )`},
		{"^/a/,[z-a]", `MTE_ROUTES: "[z-a]" is not an RE2 regular expression`},
		{"^/(?!admin)", `MTE_ROUTES: "^/(?!admin)" is not an RE2 regular expression`},
		{"^/a/,,^/b/", "MTE_ROUTES: an empty pattern"},
		{"^/a/,", "MTE_ROUTES: an empty pattern"},
		{" , ", "MTE_ROUTES: an empty pattern"},
	} {
		_, err := parseRouteList("MTE_ROUTES", c.raw)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want %q…", c.raw, err, c.want)
		}
	}
	for _, raw := range []string{"", "  "} {
		if l, err := parseRouteList("MTE_ROUTES", raw); err != nil || l.set() {
			t.Errorf("%q: %v, set %v", raw, err, l.set())
		}
	}
}

// TestRoutePath: the path a pattern sees is the one the upstream acts on,
// or none: every spelling that servers read differently is refused.
func TestRoutePath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		target, want string
		ok           bool
	}{
		{"/public/x", "/public/x", true},
		{"/public/x?a=/admin", "/public/x", true},
		{"/%61dmin", "/admin", true},
		{"/caf%C3%A9", "/café", true},
		{"/a%20b", "/a b", true},
		{"/public/..%2fadmin", "", false},
		{"/public%2F..%2Fadmin", "", false},
		{"/public/%2e%2e/admin", "", false},
		{"/public/%2E./admin", "", false},
		{"/public/../admin", "", false},
		{"/public/./x", "", false},
		{"/public/..;/admin", "", false},
		{"/public/;/x", "", false},
		{"/public/x;v=1", "", false},
		{"/admin;.css", "", false},
		{"//public/x", "", false},
		{"/public//x", "", false},
		{`/public\..\admin`, "", false},
		{"/public/%5c..%5cadmin", "", false},
		{"/public/%252e%252e/admin", "", false},
		{"/public/x%00", "", false},
		{"/public/x%0d%0a", "", false},
		{"/public/x%3fy", "", false},
		{"/public/x%23y", "", false},
		{"/public/x%", "", false},
		{"/public/x%4", "", false},
		{"/public/x%zz", "", false},
		{"/public/x#frag", "", false},
		{"/public/%c0%ae%c0%ae/admin", "", false}, // overlong "..": not UTF-8
		{"/public/\xc0\xae\xc0\xae/admin", "", false},
		{"/%c0%afadmin", "", false},
		{"/caf%e9", "", false}, // Latin-1, not UTF-8
		{"public/x", "", false},
		{"", "", false},
		{"?x", "", false},
	} {
		var scratch []byte
		got, ok := routePath([]byte(c.target), &scratch)
		if ok != c.ok || string(got) != c.want {
			t.Errorf("routePath(%q) = %q, %v; want %q, %v", c.target, got, ok, c.want, c.ok)
		}
	}
}

// BenchmarkRouteMatch is what MTE_ROUTES costs relay B per sealed request:
// the path read and the patterns of BenchmarkPairRoutes tried until the
// last one matches.
func BenchmarkRouteMatch(b *testing.B) {
	r, err := parseRoutes("PASS_THROUGH_ROUTES", `^/health$,^/public/`,
		"MTE_ROUTES", `^/v[0-9]+/orders/[0-9]+$,^/admin/,^/internal/,^/api/items$`)
	if err != nil {
		b.Fatal(err)
	}
	for _, target := range []string{"/api/items?id=42", "/%61pi/items?id=42"} {
		b.Run(target, func(b *testing.B) {
			uri := []byte(target)
			scratch := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				if !r.sealedAllowed(uri, &scratch) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkRouteMatchMany is the worst a plain request can make relay B pay
// for matching: a path no pattern matches, against lists of 4, 100 and
// 1,000 patterns (each tried in turn), and a path near MAX_HEADER_BYTES
// against one pattern anchored at the start and one that is not.
func BenchmarkRouteMatchMany(b *testing.B) {
	short := []byte("/nothing/here?x=1")
	long := []byte("/" + strings.Repeat("segment/", 2000)) // 16 KiB
	for _, c := range []struct {
		name   string
		n      int
		first  string
		target []byte
	}{
		{"4 patterns", 4, "", short},
		{"100 patterns", 100, "", short},
		{"1000 patterns", 1000, "", short},
		{"16KiB path, ^/public/", 1, `^/public/`, long},
		{`16KiB path, .*/items/.*\.json$`, 1, `.*/items/.*\.json$`, long},
		{`16KiB path, [a-z]{1000}x`, 1, `[a-z]{1000}x`, long},
	} {
		patterns := []string{c.first}
		if c.first == "" {
			patterns = patterns[:0]
			for i := range c.n {
				patterns = append(patterns, fmt.Sprintf(`^/svc%d/v[0-9]+/items/[0-9]+$`, i))
			}
		}
		l, err := parseRouteList("PASS_THROUGH_ROUTES", strings.Join(patterns, ","))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			scratch := make([]byte, 0, len(c.target))
			for b.Loop() {
				if path, ok := routePath(c.target, &scratch); ok && l.match(path) {
					b.Fatal("matched")
				}
			}
		})
	}
}
