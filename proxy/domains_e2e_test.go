package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/session"
)

// secret2 is the second domain's CLIENT_ID_SECRET (random hex).
const secret2 = "5e0b9d3f71a24c68b8e1f0a7c3d95b2e4f6a1c08"

// storeKinds runs a DOMAIN_MAP test with each inbound store: memory, and a
// real redis-server shared by the entries (each under its namespace).
var storeKinds = []struct {
	name string
	open func(t *testing.T) proxy.StoreOpener
}{
	{"memory", func(*testing.T) proxy.StoreOpener { return nil }},
	{"redis", func(t *testing.T) proxy.StoreOpener {
		srv := redistest.Start(t)
		return func(namespace string, secrets *session.Secrets) (session.Store, error) {
			cfg, err := session.ParseRedisURL(srv.URL())
			if err != nil {
				return nil, err
			}
			cfg.Namespace = namespace
			return session.NewRedisStore(cfg, secrets, nil)
		}
	}},
}

// domainRelay starts relay B with DOMAIN_MAP entries for 127.0.0.2 and
// 127.0.0.3, serving on those addresses too, and returns the URLs under
// which peers reach each entry, and one (127.0.0.1) in no entry.
func domainRelay(t *testing.T, open proxy.StoreOpener, domains []proxy.Domain, edit func(*proxy.Config)) (b *relaytest.Relay, one, two, none string) {
	t.Helper()
	cfg := relaytest.BaseConfig("")
	cfg.Domains = domains
	if edit != nil {
		edit(&cfg)
	}
	if open == nil {
		b = relaytest.StartRelay(t, cfg, nil, "")
	} else {
		b = relaytest.StartRelayStores(t, cfg, open, "")
	}
	return b, b.ServeAlso(t, "127.0.0.2:0"), b.ServeAlso(t, "127.0.0.3:0"), b.URL
}

// outboundConfig is relay A's: outbound only, pairing under secret.
func outboundConfig(secret string) proxy.Config {
	cfg := relaytest.BaseConfig("")
	cfg.Role, cfg.ClientIDSecret = proxy.RoleOutbound, secret
	return cfg
}

func domainAppRequest(t *testing.T, a *relaytest.Relay, peer, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", a.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-mte-outbound-token", relaytest.Token)
	req.Header.Set("x-mte-upstream", peer)
	return req
}

// TestDomainMapTwoAPIs: one inbound relay serves two APIs with different
// secrets, each chosen by the Host relay A reaches it under. Relay A with
// the first secret reaches the first API and is refused pairing by the
// second; relay A with the second secret reaches the second API, with that
// entry's headers; a Host in no entry is answered MTE_UNKNOWN_HOST, which
// relay A passes to the app in x-mte-peer-error, and neither upstream sees
// anything it should not.
func TestDomainMapTwoAPIs(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			up1, up2 := relaytest.StartUpstream(t), relaytest.StartUpstream(t)
			_, one, two, none := domainRelay(t, kind.open(t), []proxy.Domain{
				{Host: "127.0.0.2", Upstream: up1.URL + "/v1"},
				{Host: "127.0.0.3", Upstream: up2.URL, ClientIDSecret: secret2,
					Headers: []proxy.Header{{Name: "X-Domain", Value: "two"}}},
			}, func(c *proxy.Config) { c.Headers = []proxy.Header{{Name: "X-Global", Value: "yes"}} })
			a1 := relaytest.StartRelay(t, outboundConfig(relaytest.Secret), nil, "")
			a2 := relaytest.StartRelay(t, outboundConfig(secret2), nil, "")

			if r := do(t, domainAppRequest(t, a1, one, "/orders")); r.status != 200 || r.header.Get("X-Echo-URI") != "/v1/orders" {
				t.Fatalf("domain one: %d %s %q", r.status, r.body, r.header.Get("X-Echo-URI"))
			}
			if got := up1.Last(t); got.Header.Get("X-Global") != "yes" || got.Header.Get("X-Domain") != "" {
				t.Errorf("domain one's upstream got X-Global %q, X-Domain %q: want HEADERS only", got.Header.Get("X-Global"), got.Header.Get("X-Domain"))
			}
			if r := do(t, domainAppRequest(t, a1, two, "/orders")); r.status != 502 || relayCode(r) != "MTE_PAIR_REFUSED" {
				t.Fatalf("domain two with domain one's secret: %d %s", r.status, r.body)
			}
			if n := up2.Calls(); n != 0 {
				t.Fatalf("domain two's upstream called %d times by a relay that could not pair", n)
			}
			if r := do(t, domainAppRequest(t, a2, two, "/items")); r.status != 200 || r.header.Get("X-Echo-URI") != "/items" {
				t.Fatalf("domain two: %d %s", r.status, r.body)
			}
			if got := up2.Last(t); got.Header.Get("X-Domain") != "two" || got.Header.Get("X-Global") != "" {
				t.Errorf("domain two's upstream got X-Domain %q, X-Global %q: want the entry's headers in place of HEADERS", got.Header.Get("X-Domain"), got.Header.Get("X-Global"))
			}
			calls1, calls2 := up1.Calls(), up2.Calls()
			r := do(t, domainAppRequest(t, a1, none, "/orders"))
			if r.status != 502 || relayCode(r) != "MTE_PEER_REFUSED" || r.header.Get("x-mte-peer-error") != "MTE_UNKNOWN_HOST" {
				t.Fatalf("a host in no entry: %d %s, peer error %q", r.status, r.body, r.header.Get("x-mte-peer-error"))
			}
			if up1.Calls() != calls1 || up2.Calls() != calls2 {
				t.Fatal("an upstream was called for a host in no entry")
			}
		})
	}
}

// TestDomainMapSessionBoundToEntry: two entries with the same secret. An
// attacker who captured a frame relay A sent under the first entry's Host
// replays it under the second's (another address, or only another Host
// field): the second entry does not know the session (MTE_SESSION_UNKNOWN,
// not the replay window's MTE_FRAME_REJECTED, so a frame diverted before it
// reached the first entry would not run either), and its upstream is never
// called. Pairing requests, frames and link upgrades under a Host in
// no entry are refused 421 before anything is looked up.
func TestDomainMapSessionBoundToEntry(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			up1, up2 := relaytest.StartUpstream(t), relaytest.StartUpstream(t)
			// The tap listens on 127.0.0.1: A reaches entry one through it.
			b, _, two, _ := domainRelay(t, kind.open(t), []proxy.Domain{
				{Host: "127.0.0.1", Upstream: up1.URL},
				{Host: "127.0.0.3", Upstream: up2.URL},
			}, nil)
			tap := relaytest.StartTap(t, b.Addr)
			cfgA := outboundConfig(relaytest.Secret)
			httpOnly(&cfgA) // frames over HTTP, to be read off the wire
			a := relaytest.StartRelay(t, cfgA, nil, "")
			req := domainAppRequest(t, a, "http://"+tap.Addr, "/transfer?amount=100")
			if r := do(t, req); r.status != 200 {
				t.Fatalf("entry one: %d %s", r.status, r.body)
			}
			f := lastFrame(t, tap.Sent())
			calls1 := up1.Calls()

			if r := f.sendTo(t, two, f.body); r.status != 401 || relayCode(r) != "MTE_SESSION_UNKNOWN" {
				t.Fatalf("entry one's frame replayed to entry two's address: %d %s", r.status, r.body)
			}
			// The same, to entry one's address with entry two's Host.
			spoofed, _ := http.NewRequest("POST", b.URL+f.path, strings.NewReader(string(f.body)))
			spoofed.Host = "127.0.0.3:443"
			spoofed.Header.Set("x-mte-client-id", f.clientID)
			if r := do(t, spoofed); r.status != 401 || relayCode(r) != "MTE_SESSION_UNKNOWN" {
				t.Fatalf("entry one's frame under entry two's Host: %d %s", r.status, r.body)
			}
			if up2.Calls() != 0 || up1.Calls() != calls1 {
				t.Fatalf("replays reached an upstream: entry one %d more, entry two %d", up1.Calls()-calls1, up2.Calls())
			}

			for _, c := range []struct {
				name   string
				method string
				path   string
				header [2]string
			}{
				{"frame", "POST", "/api/mte-relay", [2]string{"x-mte-client-id", f.clientID}},
				{"pairing", "POST", "/api/mte-pair", [2]string{"Content-Type", "application/octet-stream"}},
				{"link", "POST", "/api/mte-link", [2]string{"x-mte-link", f.clientID}},
			} {
				req, _ := http.NewRequest(c.method, b.URL+c.path, strings.NewReader(string(f.body)))
				req.Host = "api.unknown.example"
				req.Header.Set(c.header[0], c.header[1])
				if c.name == "link" {
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "pqrelay-link/1")
				}
				if r := do(t, req); r.status != 421 || relayCode(r) != "MTE_UNKNOWN_HOST" {
					t.Errorf("%s under a host in no entry: %d %s", c.name, r.status, r.body)
				}
			}
			if up2.Calls() != 0 || up1.Calls() != calls1 {
				t.Fatal("a request under a host in no entry reached an upstream")
			}
		})
	}
}

// TestDomainMapOutboundSettings: an entry's outbound_token and cors_origins
// replace OUTBOUND_TOKEN and CORS_ORIGINS for app requests that reach the
// relay under the entry's Host, and only there; under a host in no entry
// the relay-wide values apply. The relay relays each request to itself
// under another entry's Host, the whole way to that entry's upstream.
func TestDomainMapOutboundSettings(t *testing.T) {
	t.Parallel()
	const token2 = "7d2f9a0c41b8e3566e1f"
	up := relaytest.StartUpstream(t)
	_, two, three, none := domainRelay(t, nil, []proxy.Domain{
		{Host: "127.0.0.2", Upstream: "http://127.0.0.1:9", OutboundToken: token2, CORSOrigins: []string{"https://two.example"}},
		{Host: "127.0.0.3", Upstream: up.URL},
	}, func(c *proxy.Config) { c.CORSOrigins = []string{"https://global.example"} })

	for _, c := range []struct {
		name, base, token string
		status            int
		code              string
	}{
		{"entry's token under its host", two, token2, 200, ""},
		{"relay-wide token under the entry's host", two, relaytest.Token, 401, "MTE_TOKEN_INVALID"},
		{"relay-wide token under a host in no entry", none, relaytest.Token, 200, ""},
		{"entry's token under a host in no entry", none, token2, 401, "MTE_TOKEN_INVALID"},
		{"relay-wide token under an entry without one", three, relaytest.Token, 200, ""},
	} {
		req, _ := http.NewRequest("GET", c.base+"/items", nil)
		req.Header.Set("x-mte-outbound-token", c.token)
		req.Header.Set("x-mte-upstream", three)
		calls := up.Calls()
		r := do(t, req)
		if r.status != c.status || relayCode(r) != c.code {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if reached := up.Calls() > calls; reached != (c.status == 200) {
			t.Errorf("%s: reached the upstream: %v", c.name, reached)
		}
	}
	for _, c := range []struct {
		name, base, origin string
		status             int
	}{
		{"entry's origin under its host", two, "https://two.example", 204},
		{"relay-wide origin under the entry's host", two, "https://global.example", 403},
		{"relay-wide origin under a host in no entry", none, "https://global.example", 204},
		{"entry's origin under a host in no entry", none, "https://two.example", 403},
	} {
		req, _ := http.NewRequest("OPTIONS", c.base+"/items", nil)
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		r := do(t, req)
		if r.status != c.status {
			t.Errorf("%s: preflight %d %s", c.name, r.status, r.body)
		}
		if allowed := r.header.Get("Access-Control-Allow-Origin"); (c.status == 204) != (allowed == c.origin) {
			t.Errorf("%s: Access-Control-Allow-Origin %q", c.name, allowed)
		}
	}
}

// TestDomainMapValidation: proxy.New refuses every invalid entry with one
// line naming DOMAIN_MAP, the entry and the field.
func TestDomainMapValidation(t *testing.T) {
	t.Parallel()
	ok := proxy.Domain{Host: "api.example.com", Upstream: "http://127.0.0.1:9000"}
	with := func(edit func(*proxy.Domain)) []proxy.Domain {
		d := ok
		edit(&d)
		return []proxy.Domain{d}
	}
	for _, c := range []struct {
		domains []proxy.Domain
		edit    func(*proxy.Config)
		want    string
	}{
		{with(func(d *proxy.Domain) { d.Host = "api example" }), nil, `DOMAIN_MAP: "api example": not a host name`},
		{[]proxy.Domain{ok, ok}, nil, `DOMAIN_MAP: "api.example.com": the host is listed twice`},
		{with(func(d *proxy.Domain) { d.Upstream = "" }), nil, `DOMAIN_MAP: "api.example.com": upstream: required`},
		{with(func(d *proxy.Domain) { d.Upstream = "http://h:99999" }), nil, `DOMAIN_MAP: "api.example.com": upstream: "h:99999" needs a host`},
		{with(func(d *proxy.Domain) { d.ClientIDSecret = strings.Repeat("ab", 20) }), nil, `DOMAIN_MAP: "api.example.com": client_id_secret: too predictable`},
		{with(func(d *proxy.Domain) { d.OutboundToken = "with spaces inside it" }), nil, `DOMAIN_MAP: "api.example.com": outbound_token: must be visible ASCII`},
		{with(func(d *proxy.Domain) { d.Headers = []proxy.Header{{Name: "Transfer-Encoding", Value: "chunked"}} }), nil,
			`DOMAIN_MAP: "api.example.com": headers: "Transfer-Encoding"`},
		{with(func(d *proxy.Domain) { d.Headers = []proxy.Header{{Name: "Access-Control-Allow-Origin", Value: "*"}} }), nil,
			`DOMAIN_MAP: "api.example.com": headers: "Access-Control-Allow-Origin" is a CORS header`},
		{with(func(d *proxy.Domain) { d.CORSOrigins = []string{"*"} }), func(c *proxy.Config) { c.CORSCredentials = true },
			`DOMAIN_MAP: "api.example.com": cors_origins: "*" cannot be combined with CORS_CREDENTIALS=true`},
		{[]proxy.Domain{ok}, func(c *proxy.Config) { c.Upstream = "http://127.0.0.1:9000" }, "DOMAIN_MAP: set either UPSTREAM or DOMAIN_MAP"},
		{[]proxy.Domain{ok}, func(c *proxy.Config) { c.Role = proxy.RoleOutbound }, "DOMAIN_MAP: relay A (RELAY_ROLE=outbound) serves no upstream"},
	} {
		cfg := relaytest.BaseConfig("")
		cfg.Domains = c.domains
		if c.edit != nil {
			c.edit(&cfg)
		}
		_, err := proxy.New(cfg, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line starting %q", c.domains, err, c.want)
		}
	}
}

// TestDomainMapLinkBoundToEntry: a relay link belongs to a session, so to
// its entry. The link upgrade relay A sent under the first entry's Host,
// replayed under the second's, is refused as a session the second entry
// does not know; its upstream sees nothing.
func TestDomainMapLinkBoundToEntry(t *testing.T) {
	t.Parallel()
	up1, up2 := relaytest.StartUpstream(t), relaytest.StartUpstream(t)
	b, _, two, _ := domainRelay(t, nil, []proxy.Domain{
		{Host: "127.0.0.1", Upstream: up1.URL},
		{Host: "127.0.0.3", Upstream: up2.URL},
	}, nil)
	tap := relaytest.StartTap(t, b.Addr)
	a := relaytest.StartRelay(t, outboundConfig(relaytest.Secret), nil, "")
	deadline := time.Now().Add(5 * time.Second)
	for b.Server.LinkConnections() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no relay link opened in 5s")
		}
		if r := do(t, domainAppRequest(t, a, "http://"+tap.Addr, "/warm-up")); r.status != 200 {
			t.Fatalf("entry one: %d %s", r.status, r.body)
		}
	}
	wire := tap.Sent()
	at := bytes.Index(wire, []byte("POST /api/mte-link HTTP/1.1\r\n"))
	if at < 0 {
		t.Fatal("no link upgrade on the wire")
	}
	upgrade, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire[at:])))
	if err != nil {
		t.Fatal(err)
	}
	frame, _ := io.ReadAll(upgrade.Body)
	req, _ := http.NewRequest("POST", two+"/api/mte-link", bytes.NewReader(frame))
	for _, name := range []string{"Connection", "Upgrade", "x-mte-link"} {
		req.Header.Set(name, upgrade.Header.Get(name))
	}
	if r := do(t, req); r.status != 401 || relayCode(r) != "MTE_SESSION_UNKNOWN" {
		t.Fatalf("entry one's link upgrade replayed to entry two: %d %s", r.status, r.body)
	}
	if n := up2.Calls(); n != 0 {
		t.Fatalf("entry two's upstream called %d times", n)
	}
}

// TestDomainMapRoutes: an entry's pass_through_routes and mte_routes apply
// under its Host only; another entry without them relays every sealed path
// and passes nothing through, and a plain request under a host in no entry
// is never passed through.
func TestDomainMapRoutes(t *testing.T) {
	t.Parallel()
	up1, up2 := relaytest.StartUpstream(t), relaytest.StartUpstream(t)
	health, api := "^/health$", "^/api/"
	_, one, two, none := domainRelay(t, nil, []proxy.Domain{
		{Host: "127.0.0.2", Upstream: up1.URL, PassThroughRoutes: &health, MTERoutes: &api},
		{Host: "127.0.0.3", Upstream: up2.URL},
	}, nil)
	a := relaytest.StartRelay(t, outboundConfig(relaytest.Secret), nil, "")
	for _, c := range []struct {
		name, peer, path string
		status           int
		code             string
		reached          *relaytest.Upstream
	}{
		{"sealed, in the entry's mte_routes", one, "/api/items", 200, "", up1},
		{"sealed, outside the entry's mte_routes", one, "/admin", 404, "MTE_ROUTE_NOT_FOUND", nil},
		{"sealed, to the entry without routes", two, "/admin", 200, "", up2},
	} {
		r := do(t, domainAppRequest(t, a, c.peer, c.path))
		if r.status != c.status || relayCode(r) != c.code {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if c.reached != nil && c.reached.Last(t).RequestURI != c.path {
			t.Errorf("%s: the upstream last got %q", c.name, c.reached.Last(t).RequestURI)
		}
	}
	calls1, calls2 := up1.Calls(), up2.Calls()
	for _, c := range []struct {
		name, base, path string
		status           int
		code             string
	}{
		{"plain, in the entry's pass_through_routes", one, "/health", 200, ""},
		{"plain, in neither of the entry's lists", one, "/admin", 404, "MTE_ROUTE_NOT_FOUND"},
		{"plain, to the entry without routes", two, "/health", 401, "MTE_TOKEN_MISSING"},
		{"plain, under a host in no entry", none, "/health", 401, "MTE_TOKEN_MISSING"},
	} {
		resp, err := http.Get(c.base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("x-mte-relay-error") != c.code {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, resp.Header.Get("x-mte-relay-error"))
		}
	}
	if up1.Calls() != calls1+1 || up2.Calls() != calls2 {
		t.Errorf("plain requests reached the upstreams %d and %d times, want once (the entry's health check) and never",
			up1.Calls()-calls1, up2.Calls()-calls2)
	}
}
