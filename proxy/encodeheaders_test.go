package proxy_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// listModeHeaders are the app's headers in the list-mode tests, each with
// a value found nowhere else, so that the wire can be searched for it.
var listModeHeaders = map[string]string{
	"Authorization": "Bearer auth-value-4417",
	"Cookie":        "sid=cookie-value-2290",
	"X-Route":       "route-value-8803",
	"X-Tenant":      "tenant-value-5126",
	"Content-Type":  "application/x-list-mode-3371",
}

// TestEncodeHeadersList reads the wire between A and B: with
// x-mte-encode-headers naming headers, the named ones are absent from the
// clear copy, every other one is in it, the option itself is in neither,
// and the upstream receives every header as the app sent it. The pair has
// relay links open: a list-mode request still goes over per-request HTTP.
func TestEncodeHeadersList(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true})
	untilLinked(t, p)
	all := []string{"Authorization", "Cookie", "X-Route", "X-Tenant", "Content-Type", "X-Request-Id"}
	for _, c := range []struct {
		mode, list string
		sealedOnly []string // the rest of all travels in clear too
	}{
		{"MKE", "authorization, cookie", []string{"Authorization", "Cookie"}},
		{"MTE", "AUTHORIZATION,Cookie , \tx-tenant", []string{"Authorization", "Cookie", "X-Tenant"}},
		// The request id relay A makes is one of the app's headers here.
		{"MKE", "x-request-id,authorization", []string{"X-Request-Id", "Authorization"}},
		{"MKE", "content-type", []string{"Content-Type"}},
		// Naming a header the request lacks sends the others as false does.
		{"MKE", "x-not-sent", nil},
	} {
		p.Tap.Reset()
		calls := p.Upstream.Calls()
		req := p.Request(t, "POST", "/orders/list-mode", strings.NewReader(`{"n":1}`))
		for name, value := range listModeHeaders {
			req.Header.Set(name, value)
		}
		req.Header.Set("x-mte-encode-type", c.mode)
		req.Header.Set("x-mte-encode-headers", c.list)
		r := do(t, req)
		if r.status != 200 || p.Upstream.Calls() != calls+1 {
			t.Fatalf("%q: %d %s", c.list, r.status, r.body)
		}
		want := map[string]string{"X-Request-Id": r.header.Get("X-Request-Id")}
		for name, value := range listModeHeaders {
			want[name] = value
		}
		wire := bytes.ToLower(p.Tap.Sent())
		if !bytes.Contains(wire, []byte("x-mte-client-id")) {
			t.Fatalf("%q: the request did not travel over per-request HTTP", c.list)
		}
		if bytes.Contains(wire, []byte("x-mte-encode-headers")) {
			t.Errorf("%q: x-mte-encode-headers travelled in clear", c.list)
		}
		for _, name := range all {
			field := []byte(strings.ToLower(name + ": " + want[name]))
			sealedOnly := slices.Contains(c.sealedOnly, name)
			if inClear := bytes.Contains(wire, field); inClear == sealedOnly {
				t.Errorf("%q: %s in clear: %v, want %v", c.list, name, inClear, !sealedOnly)
			}
			if sealedOnly && bytes.Contains(wire, []byte(strings.ToLower(want[name]))) {
				t.Errorf("%q: the value of the sealed-only %s is on the wire", c.list, name)
			}
		}
		up := p.Upstream.Last(t)
		for _, name := range all {
			if got := up.Header.Values(name); len(got) != 1 || got[0] != want[name] {
				t.Errorf("%q: the upstream got %s %q, want %q", c.list, name, got, want[name])
			}
		}
		for name := range up.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-mte-") {
				t.Errorf("%q: %s reached the upstream", c.list, name)
			}
		}
	}
}

// TestEncodeHeadersListClearCopyIgnored puts a man in the middle between A
// and B who rewrites the clear copies: he changes a header he sees, adds a
// value for one that stays sealed-only, removes one and adds his own. The
// upstream receives the app's headers from the sealed copy, untouched.
func TestEncodeHeadersListClearCopyIgnored(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	target, _ := url.Parse(p.B.URL)
	var mu sync.Mutex
	var seen http.Header // the clear copy of the last frame, as the attacker received it
	mitm := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			if r.In.Header.Get("x-mte-client-id") == "" {
				return // pairing passes
			}
			mu.Lock()
			seen = r.In.Header.Clone()
			mu.Unlock()
			r.Out.Header.Set("X-Route", "forged-route")
			r.Out.Header.Set("Authorization", "Bearer forged")
			r.Out.Header.Del("X-Tenant")
			r.Out.Header.Set("X-Injected", "forged")
		},
	})
	defer mitm.Close()
	req := p.Request(t, "POST", "/orders", strings.NewReader(`{"n":1}`))
	req.Header.Set("x-mte-upstream", mitm.URL)
	for name, value := range listModeHeaders {
		req.Header.Set(name, value)
	}
	req.Header.Set("x-mte-encode-headers", "authorization,cookie")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	mu.Lock()
	if seen.Get("X-Route") != listModeHeaders["X-Route"] || seen.Get("Authorization") != "" {
		t.Fatalf("the attacker saw the clear copy %v: not list mode", seen)
	}
	mu.Unlock()
	up := p.Upstream.Last(t)
	for name, value := range listModeHeaders {
		if got := up.Header.Values(name); len(got) != 1 || got[0] != value {
			t.Errorf("the upstream got %s %q, want %q", name, got, value)
		}
	}
	if got := up.Header.Get("X-Injected"); got != "" {
		t.Errorf("a header the attacker added reached the upstream: %q", got)
	}
}

// TestEncodeHeadersListWithoutLinks: a relay without links sends list-mode
// requests over per-request HTTP like any other; the headers arrive whole.
func TestEncodeHeadersListWithoutLinks(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true, ConfigA: func(c *proxy.Config) { c.NoPeerLinks = true }})
	req := p.Request(t, "GET", "/x", nil)
	req.Header.Set("Authorization", listModeHeaders["Authorization"])
	req.Header.Set("X-Route", listModeHeaders["X-Route"])
	req.Header.Set("x-mte-encode-headers", "Authorization")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	f := lastFrame(t, p.Tap.Sent())
	if f.header.Get("X-Route") != listModeHeaders["X-Route"] || f.header.Get("Authorization") != "" {
		t.Errorf("clear copy %v", f.header)
	}
	if f.header.Get("Content-Type") != "application/x-mte-frame" {
		t.Errorf("frame Content-Type %q", f.header.Get("Content-Type"))
	}
	if up := p.Upstream.Last(t); up.Header.Get("Authorization") != listModeHeaders["Authorization"] {
		t.Errorf("the upstream got Authorization %q", up.Header.Get("Authorization"))
	}
}
