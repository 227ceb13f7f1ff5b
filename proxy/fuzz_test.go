package proxy

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pqrelay/pqrelay/codec"
)

// FuzzParsePeerOrigin: x-mte-upstream comes from the app. Whatever it holds,
// parsing must not panic, and an accepted value must come out as a plain
// origin that parses to itself (so allow-list checks compare like with like).
func FuzzParsePeerOrigin(f *testing.F) {
	for _, seed := range []string{
		"http://127.0.0.1:8081", "https://relay-b.example.com", "HTTPS://Relay.Example.COM:443/",
		"http://[::1]:8081", "http://u:p@h:1", "ftp://h", "http://h/path", "http://h?q", "relay:8081", "",
		"http://h:99999", "http://%zz", "http://h#f", "//h", "http:/h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		origin, err := parsePeerOrigin(raw)
		if err != nil {
			return
		}
		again, err := parsePeerOrigin(origin)
		if err != nil || again != origin {
			t.Fatalf("%q → %q → %q, %v", raw, origin, again, err)
		}
		u, err := url.Parse(origin)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" ||
			(u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(origin, " \r\n\t") {
			t.Fatalf("%q accepted as %q, which is not a plain origin", raw, origin)
		}
	})
}

// FuzzMediaKind: Content-Type comes from the app. mediaKind must agree with
// a plain reading done with strings (lower-case, cut at ';', trim, split at
// '/'), so that no spelling of a JSON or XML type slips past protection.
func FuzzMediaKind(f *testing.F) {
	for _, seed := range []string{
		"application/json", "Application/JSON; charset=utf-8", " application/vnd.api+json ", "text/xml",
		"application/soap+xml;action=x", "application/xml-dtd", "+json", "/json", "application/+json", "json",
		"text/plain", "", "application/json\t;", "APPLICATION/XML",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want := 0
		media, _, _ := strings.Cut(v, ";")
		typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(media)), "/")
		switch {
		case !ok || typ == "":
		case typ == "application" && sub == "json", len(sub) > len("+json") && strings.HasSuffix(sub, "+json"):
			want = kindJSON
		case (typ == "application" || typ == "text") && sub == "xml", len(sub) > len("+xml") && strings.HasSuffix(sub, "+xml"):
			want = kindXML
		}
		if got := mediaKind([]byte(v)); got != want {
			t.Fatalf("mediaKind(%q) = %d, want %d", v, got, want)
		}
	})
}

// FuzzValidTokenList: Access-Control-Request-Headers comes from the client
// and is reflected when it passes. Whatever it holds, checking must not
// panic, and an accepted value must be header names separated by commas and
// optional whitespace: nothing that could end the header line or start a
// new field in the answer.
func FuzzValidTokenList(f *testing.F) {
	for _, seed := range []string{
		"content-type", "content-type,x-mte-outbound-token", "x-a, x-b", "", ",", "x-a,", ",x-a", "x-a,,x-b",
		"x-a; evil=1", "bad name", "x-a\r\nSet-Cookie: a=b", "\t x-a \t", "x-\x80", "*",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, list []byte) {
		if !validTokenList(list) {
			return
		}
		for _, item := range strings.Split(string(list), ",") {
			name := strings.Trim(item, " \t")
			if name == "" || !codec.ValidHeaderName([]byte(name)) {
				t.Fatalf("%q accepted, with item %q", list, item)
			}
		}
	})
}

// FuzzRoutePath: the request target comes from the app, and a pass-through
// pattern decides on what routePath makes of it. An accepted path must be
// one that every server reads the same way: absolute, UTF-8, no query,
// fragment, backslash, path parameter, empty or dot segment, and decoding it again (as an upstream
// that decodes twice would) changes nothing.
func FuzzRoutePath(f *testing.F) {
	for _, seed := range []string{
		"/public/x", "/public/x?a=/admin", "/%61dmin", "/public/..%2fadmin", "/public/%2e%2e/admin",
		"/public/..;/admin", "//x", `/a\b`, "/%252e", "/x%", "/caf%C3%A9", "/a#b", "",
		"/%c0%ae%c0%ae/x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, target []byte) {
		var scratch []byte
		path, ok := routePath(target, &scratch)
		if !ok {
			return
		}
		p := string(path)
		if p == "" || p[0] != '/' || !utf8.ValidString(p) || strings.ContainsAny(p, `?#\%;`) || strings.Contains(p, "//") ||
			hasDotSegment(path) {
			t.Fatalf("routePath(%q) = %q", target, p)
		}
		var again []byte
		if twice, ok := routePath(path, &again); !ok || string(twice) != p {
			t.Fatalf("routePath(%q) = %q, then %q, %v", target, p, twice, ok)
		}
	})
}
