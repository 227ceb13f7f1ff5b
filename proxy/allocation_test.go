//go:build !race

package proxy_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/jsonshape"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/upsign"
	"github.com/valyala/fasthttp"
)

// TestZeroAllocations: in steady state a request through the pair (app
// client → A → B → upstream and back) allocates nothing (docs/ARCHITECTURE.md
// §4.1), over a relay link and over per-request HTTP alike, with metrics
// recorded on both relays, and with B choosing the API by Host from
// DOMAIN_MAP (a key without the port: the longer of the two lookups).
func TestZeroAllocations(t *testing.T) {
	for _, carriage := range []struct {
		name      string
		links     bool
		domainMap bool
	}{{"link", true, false}, {"HTTP", false, false}, {"link DOMAIN_MAP", true, true}, {"HTTP DOMAIN_MAP", false, true}} {
		t.Run(carriage.name, func(t *testing.T) {
			up := fastUpstream(t)
			cfgB := relaytest.BaseConfig(up)
			if carriage.domainMap {
				cfgB.Upstream = ""
				cfgB.Domains = []proxy.Domain{{Host: "api.example.com", Upstream: "http://127.0.0.1:9"}, {Host: "127.0.0.1", Upstream: up}}
			}
			recA, recB := newRecorder(), newRecorder()
			cfgB.Metrics = recB
			b := relaytest.StartRelay(t, cfgB, nil, "")
			cfgA := relaytest.BaseConfig(up)
			cfgA.NoPeerLinks = !carriage.links
			cfgA.Metrics = recA
			a := relaytest.StartRelay(t, cfgA, nil, "")
			zeroAllocations(t, a, b, recA, recB)
			if linked := b.Server.LinkConnections() > 0; linked != carriage.links {
				t.Errorf("B serves %d links", b.Server.LinkConnections())
			}
		})
	}
}

func zeroAllocations(t *testing.T, a, b *relaytest.Relay, recA, recB *metrics.Relay) {
	client := &fasthttp.HostClient{Addr: a.Addr}
	body := make([]byte, 1024)
	for _, mode := range allocModes {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(a.URL + "/api/items?id=42")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", "Bearer abc")
		req.Header.Set("x-mte-outbound-token", relaytest.Token)
		req.Header.Set("x-mte-upstream", b.URL)
		req.Header.Set("x-mte-encode-type", mode)
		req.SetBody(body)
		send := func() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
				t.Fatalf("%s: %v %d %q", mode, err, resp.StatusCode(), resp.Body())
			}
		}
		for i := 0; i < 200; i++ { // pair, open links, fill pools
			send()
		}
		allocs := testing.AllocsPerRun(500, send)
		t.Logf("%s: %.2f allocations per request", mode, allocs)
		limit := 0.0
		if mode == "MTE" {
			// MTE keys each message anew: four message keys per round trip
			// (seal and open at each relay), and crypto/aes and crypto/cipher
			// allocate the key schedule and the GCM wrapper of each.
			limit = 8
		}
		if allocs > limit {
			t.Errorf("%s: %.2f allocations per request, want at most %v", mode, allocs, limit)
		}
	}
	// The requests were recorded, not skipped: 200 + 500 runs (and
	// AllocsPerRun's warm-up) per mode.
	for _, c := range []struct {
		rec    *metrics.Relay
		series string
	}{
		{recA, `pqrelay_requests_total{role="outbound",code="ok"}`},
		{recB, `pqrelay_requests_total{role="inbound",code="ok"}`},
	} {
		if n, _ := strconv.Atoi(metricValues(c.rec)[c.series]); n < 2*700 {
			t.Errorf("%s = %d, want at least %d", c.series, n, 2*700)
		}
	}
}

var allocModes = []string{"MKE", "MTE"}

// TestProtectionZeroAllocations: with JSON protection on both ways (the
// inbound relay scanning requests, the outbound relay responses), a
// request whose JSON bodies pass still allocates nothing.
func TestProtectionZeroAllocations(t *testing.T) {
	body := jsonshape.Build("api", 16<<10)
	up := fastUpstreamAnswering(t, body)
	cfg := relaytest.BaseConfig(up)
	cfg.JSONLimits = codec.JSONLimits{MaxDepth: 8, MaxArrayElements: 1000, MaxObjectEntries: 20, MaxNameLength: 64, MaxStringLength: 256}
	cfg.XMLLimits = codec.XMLLimits{MaxDepth: 8}
	cfg.JSONResponses = true
	b := relaytest.StartRelay(t, cfg, nil, "")
	a := relaytest.StartRelay(t, cfg, nil, "")
	client := &fasthttp.HostClient{Addr: a.Addr}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(a.URL + "/api/items")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json; charset=utf-8")
	req.Header.Set("x-mte-outbound-token", relaytest.Token)
	req.Header.Set("x-mte-upstream", b.URL)
	req.SetBody(body)
	send := func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != len(body) {
			t.Fatalf("%v %d %.200q", err, resp.StatusCode(), resp.Body())
		}
	}
	for range 200 { // pair, fill pools
		send()
	}
	if allocs := testing.AllocsPerRun(300, send); allocs > 0 {
		t.Errorf("%.2f allocations per request with JSON protection on, want 0", allocs)
	}
}

// TestSignedZeroAllocations: with UPSTREAM_SIGNING and an HMAC algorithm,
// a request through the pair still allocates nothing: relay B signs with
// pooled keyed hash states and buffers.
func TestSignedZeroAllocations(t *testing.T) {
	up := fastUpstream(t)
	a := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	body := make([]byte, 1024)
	for _, signing := range []upsign.Config{
		{Scheme: upsign.SchemeCavage, Algorithm: "hmac-sha256"},
		{Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256", MaxAge: time.Minute},
	} {
		signing.KeyID, signing.Secret = "relay-b", "alloc-test-secret-0123456789abcdef"
		cfg := relaytest.BaseConfig(up)
		cfg.Signing = signing
		b := relaytest.StartRelay(t, cfg, nil, "")
		client := &fasthttp.HostClient{Addr: a.Addr}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(a.URL + "/api/items?id=42")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("x-mte-outbound-token", relaytest.Token)
		req.Header.Set("x-mte-upstream", b.URL)
		req.SetBody(body)
		send := func() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
				t.Fatalf("%s: %v %d %q", signing.Scheme, err, resp.StatusCode(), resp.Body())
			}
		}
		for i := 0; i < 200; i++ { // pair, fill pools
			send()
		}
		if allocs := testing.AllocsPerRun(500, send); allocs > 0 {
			t.Errorf("%s %s: %.2f allocations per request, want 0", signing.Scheme, signing.Algorithm, allocs)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

// TestClearCopiesZeroAllocations: a request whose headers also travel in
// clear, all of them (x-mte-encode-headers: false) or all but a list,
// allocates nothing either: the list is matched against the app's header
// value in place, and the clear copies go into the pooled request to B.
func TestClearCopiesZeroAllocations(t *testing.T) {
	up := fastUpstream(t)
	b := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	a := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	client := &fasthttp.HostClient{Addr: a.Addr}
	body := make([]byte, 1024)
	for _, encodeHeaders := range []string{"false", "authorization, Cookie ,x-tenant"} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(a.URL + "/api/items?id=42")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", "Bearer abc")
		req.Header.Set("Cookie", "sid=1")
		req.Header.Set("X-Tenant", "t1")
		req.Header.Set("X-Route", "eu")
		req.Header.Set("x-mte-outbound-token", relaytest.Token)
		req.Header.Set("x-mte-upstream", b.URL)
		req.Header.Set("x-mte-encode-headers", encodeHeaders)
		req.SetBody(body)
		send := func() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
				t.Fatalf("%s: %v %d %q", encodeHeaders, err, resp.StatusCode(), resp.Body())
			}
		}
		for range 200 { // pair, fill pools
			send()
		}
		allocs := testing.AllocsPerRun(500, send)
		t.Logf("x-mte-encode-headers: %s: %.2f allocations per request", encodeHeaders, allocs)
		if allocs > 0 {
			t.Errorf("x-mte-encode-headers: %s: %.2f allocations per request, want 0", encodeHeaders, allocs)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}
