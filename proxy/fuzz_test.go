package proxy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/fuzzseed"
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

// FuzzEncodeHeaders: x-mte-encode-headers comes from the app and decides
// which of its headers an on-path observer sees. Whatever it holds, parsing
// must not panic and must agree with a plain reading done with strings (true
// and false in any case; otherwise names split at commas, trimmed, each a
// token); for an accepted value, a header travels in clear exactly when the
// value is false or a list that does not name it, in any case.
//
// Seeds: testdata/fuzz/FuzzEncodeHeaders, written from encodeHeadersSeeds.
func FuzzEncodeHeaders(f *testing.F) {
	f.Fuzz(func(t *testing.T, value, name []byte) {
		inClear, sealedOnly, ok := parseEncodeHeaders(value)
		v := string(value)
		var listed []string
		wantOK, wantClear := true, false
		switch {
		case v == "" || strings.EqualFold(v, "true"):
		case strings.EqualFold(v, "false"):
			wantClear = true
		default:
			wantClear = true
			for _, item := range strings.Split(v, ",") {
				item = strings.Trim(item, " \t")
				if item == "" || !codec.ValidHeaderName([]byte(item)) {
					wantOK = false
				}
				listed = append(listed, item)
			}
		}
		if ok != wantOK || ok && inClear != wantClear {
			t.Fatalf("parseEncodeHeaders(%q) = %v, %q, %v; want in clear %v, ok %v", value, inClear, sealedOnly, ok, wantClear, wantOK)
		}
		if !ok {
			return
		}
		o := options{clearHeaders: inClear, sealedOnly: sealedOnly}
		want := wantClear
		for _, item := range listed {
			if strings.EqualFold(item, string(name)) {
				want = false
			}
		}
		if got := o.headerInClear(name); got != want {
			t.Fatalf("x-mte-encode-headers: %q: %q in clear %v, want %v", value, name, got, want)
		}
	})
}

func encodeHeadersSeeds() [][2]string {
	return [][2]string{
		{"", "Authorization"}, {"true", "Cookie"}, {"FALSE", "Cookie"}, {"False", "x-a"},
		{"authorization, cookie", "Cookie"}, {"authorization, cookie", "X-Route"},
		{"AUTHORIZATION,Cookie , \tx-tenant", "x-TENANT"}, {"x-a,", "x-a"}, {",x-a", "x-a"},
		{"x-a,,x-b", "x-b"}, {"x-a, ,x-b", "x-b"}, {"x-a;q=1", "x-a"}, {"yes please", "yes"},
		{"x-caf\u00e9", "x-caf\u00e9"}, {"\"cookie\"", "cookie"}, {"true,false", "false"},
		{"x-a\r\nx-b", "x-b"}, {"cookie", " cookie"}, {"k\u212a", "kk"}, {",", ""},
	}
}

// TestWriteEncodeHeadersSeeds rewrites testdata/fuzz/FuzzEncodeHeaders:
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteEncodeHeadersSeeds ./proxy
func TestWriteEncodeHeadersSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	for i, seed := range encodeHeadersSeeds() {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", "FuzzEncodeHeaders", fmt.Sprintf("seed-%02d", i)), []byte(seed[0]), []byte(seed[1]))
	}
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

// domainMapSeeds are FuzzParseDomainMap's seeds, valid and not.
var domainMapSeeds = []string{
	`{"api.example.com":{"upstream":"http://127.0.0.1:9000"}}`,
	`{"API.Example.com:8443":{"upstream":"https://api.internal/v1","client_id_secret":"9f1c3a7e52d84b06e1a9c4f27b3d8e50",` +
		`"outbound_token":"4b7e19c2a05fd386","cors_origins":"https://a.example, null","headers":{"X-Tenant":"a","X-B":""}}}`,
	`{"[::1]:8081":{"upstream":"http://h"},"10.0.0.1":{"upstream":"http://h","cors_origins":"","headers":{}}}`,
	`{"a":{"upstream":"http://h"},"A":{"upstream":"http://h"}}`,
	`{"a":{"upstream":"http://h","upstrem":"x"}}`,
	`{"a":{"upstream":1}}`, `{"a":{"headers":{"X":1},"upstream":"u"}}`, `{"a":null}`, `{"a":[]}`, `{}`, `[]`, `null`, ``,
	`{"a:0":{"upstream":"u"}}`, `{"a:":{"upstream":"u"}}`, `{"-a":{"upstream":"u"}}`, `{"a..b":{"upstream":"u"}}`,
	`{"a":{"upstream":"u"}} {}`, `{"a":{"upstream":"u","client_id_secret":""}}`, `{"a":{"upstream":"u","headers":null}}`,
	`{"a":{"upstream":"u","pass_through_routes":"^/health$,^/a{1,2}$","mte_routes":""}}`, `{"a":{"upstream":"u","mte_routes":["^/x"]}}`,
}

// FuzzParseDomainMap: DOMAIN_MAP is operator input, but a typo in it must
// be an error and never a panic or an entry that means something else.
// Whatever is accepted has lower-case, well-formed, distinct keys that
// parse to themselves and an upstream, errors are one line naming
// DOMAIN_MAP, and the entries written back as JSON parse to the same.
func FuzzParseDomainMap(f *testing.F) {
	for _, seed := range domainMapSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		domains, err := ParseDomainMap(string(raw))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "DOMAIN_MAP: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("%q: error %q is not one line naming DOMAIN_MAP", raw, msg)
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range domains {
			if again, err := domainKey(d.Host); err != nil || again != d.Host || seen[d.Host] {
				t.Fatalf("%q: key %q → %q, %v, seen before %v", raw, d.Host, again, err, seen[d.Host])
			}
			seen[d.Host] = true
		}
		again, err := ParseDomainMap(string(domainMapJSON(t, domains)))
		if err != nil || !reflect.DeepEqual(again, domains) {
			t.Fatalf("%q → %+v → %s → %+v, %v", raw, domains, domainMapJSON(t, domains), again, err)
		}
	})
}

// domainMapJSON writes domains back as DOMAIN_MAP, in their order.
func domainMapJSON(t *testing.T, domains []Domain) []byte {
	b := []byte{'{'}
	for i, d := range domains {
		if i > 0 {
			b = append(b, ',')
		}
		fields := map[string]any{"upstream": d.Upstream}
		if d.ClientIDSecret != "" {
			fields["client_id_secret"] = d.ClientIDSecret
		}
		if d.OutboundToken != "" {
			fields["outbound_token"] = d.OutboundToken
		}
		if d.CORSOrigins != nil {
			fields["cors_origins"] = strings.Join(d.CORSOrigins, ",")
		}
		if d.Headers != nil {
			m := map[string]string{}
			for _, h := range d.Headers {
				m[h.Name] = h.Value
			}
			fields["headers"] = m
		}
		if d.PassThroughRoutes != nil {
			fields["pass_through_routes"] = *d.PassThroughRoutes
		}
		if d.MTERoutes != nil {
			fields["mte_routes"] = *d.MTERoutes
		}
		key, err1 := json.Marshal(d.Host)
		value, err2 := json.Marshal(fields)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		b = append(append(append(b, key...), ':'), value...)
	}
	return append(b, '}')
}

// TestWriteDomainMapSeeds rewrites testdata/fuzz/FuzzParseDomainMap:
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteDomainMapSeeds ./proxy
func TestWriteDomainMapSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	for i, seed := range domainMapSeeds {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", "FuzzParseDomainMap", fmt.Sprintf("seed-%02d", i)), []byte(seed))
	}
}
