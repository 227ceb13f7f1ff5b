package proxy_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// TestRelayRoles: the production split, RELAY_ROLE=outbound on A (no
// UPSTREAM) and inbound on B (no OUTBOUND_TOKEN), relays end to end; B
// refuses every app request, A refuses pairing and frames, each with its
// code, and nothing refused reaches the upstream.
func TestRelayRoles(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.Role, c.Upstream = proxy.RoleOutbound, "" },
		ConfigB: func(c *proxy.Config) { c.Role, c.OutboundToken = proxy.RoleInbound, "" },
	})
	// Frames reach B at /api/mte-relay, or at the app's own path when the
	// URL travels in clear.
	for _, encodeURL := range []string{"true", "false"} {
		req := p.Request(t, "POST", "/api/items?x=1", strings.NewReader("payload"))
		req.Header.Set("x-mte-encode-url", encodeURL)
		if r := do(t, req); r.status != 200 || string(r.body) != "payload" || p.Upstream.Last(t).RequestURI != "/api/items?x=1" {
			t.Fatalf("through the split pair, x-mte-encode-url %s: %d %s", encodeURL, r.status, r.body)
		}
	}
	// An inbound-only B takes A's relay links.
	deadline := time.Now().Add(5 * time.Second)
	for p.B.Server.LinkConnections() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the inbound-only relay took no link")
		}
		if r := do(t, p.Request(t, "GET", "/warm-up", nil)); r.status != 200 {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
	}
	relayed := p.Upstream.Calls()

	send := func(method, url string, header map[string]string, body string) result {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	app := map[string]string{"x-mte-outbound-token": relaytest.Token, "x-mte-upstream": p.B.URL}
	clientID := map[string]string{"x-mte-client-id": strings.Repeat("A", 54)}
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "pqrelay-link/1", "x-mte-link": strings.Repeat("A", 54)}
	cases := []struct {
		name, method, url string
		header            map[string]string
		status            int
		code              string
	}{
		{"app request to B", "POST", p.B.URL + "/api/items", app, 403, "MTE_INBOUND_ONLY"},
		{"bare request to B", "GET", p.B.URL + "/", nil, 403, "MTE_INBOUND_ONLY"},
		{"app request to B on a relay path", "GET", p.B.URL + "/api/mte-other", app, 403, "MTE_INBOUND_ONLY"},
		{"app request to B as POST /api/mte-echo", "POST", p.B.URL + "/api/mte-echo", app, 403, "MTE_INBOUND_ONLY"},
		{"B still answers probes", "GET", p.B.URL + "/api/mte-echo", nil, 200, ""},
		{"B still reports health", "GET", p.B.URL + "/api/mte-health", nil, 200, ""},
		{"B still answers readiness", "GET", p.B.URL + "/api/mte-ready", nil, 200, ""},
		{"pairing with A", "POST", p.A.URL + "/api/mte-pair", nil, 403, "MTE_OUTBOUND_ONLY"},
		{"frame to A", "POST", p.A.URL + "/api/mte-relay", clientID, 403, "MTE_OUTBOUND_ONLY"},
		{"frame to A on an app path", "POST", p.A.URL + "/api/items", clientID, 403, "MTE_OUTBOUND_ONLY"},
		{"link upgrade to A", "POST", p.A.URL + "/api/mte-link", upgrade, 403, "MTE_OUTBOUND_ONLY"},
		{"A still answers probes", "GET", p.A.URL + "/api/mte-echo", nil, 200, ""},
		{"A still answers readiness", "GET", p.A.URL + "/api/mte-ready", nil, 200, ""},
	}
	for _, c := range cases {
		bodies := []string{"x"}
		if c.status == 403 {
			// A large body is refused before it is read: the answer must
			// still name the role.
			bodies = append(bodies, strings.Repeat("x", 64<<10))
		}
		for _, body := range bodies {
			if r := send(c.method, c.url, c.header, body); r.status != c.status || relayCode(r) != c.code {
				t.Errorf("%s, %d-byte body: %d %s %q, want %d %s", c.name, len(body), r.status, relayCode(r), r.body, c.status, c.code)
			}
		}
	}

	// A relay of both roles told to use the outbound-only A as its peer
	// passes A's refusal on, instead of blaming the secrets.
	both := relaytest.StartRelay(t, relaytest.BaseConfig(p.Upstream.URL), nil, "")
	r := send("GET", both.URL+"/x", map[string]string{"x-mte-outbound-token": relaytest.Token, "x-mte-upstream": p.A.URL}, "")
	if r.status != 502 || relayCode(r) != "MTE_PEER_REFUSED" || r.header.Get("x-mte-peer-error") != "MTE_OUTBOUND_ONLY" {
		t.Errorf("pairing with an outbound-only relay: %d %s %v", r.status, r.body, r.header)
	}
	if n := p.Upstream.Calls(); n != relayed {
		t.Errorf("refused requests reached the upstream: %d calls, want %d", n, relayed)
	}
}
