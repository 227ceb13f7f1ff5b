//go:build !race

package proxy_test

import (
	"testing"

	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// TestCORSZeroAllocations: with a CORS policy of listed origins and
// credentials, a browser's request through the pair (the policy strips and
// sets its headers on every answer) still allocates nothing in steady state.
func TestCORSZeroAllocations(t *testing.T) {
	up := fastUpstream(t)
	b := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	cfg := relaytest.BaseConfig(up)
	cfg.CORSOrigins = []string{"https://app.example.com"}
	cfg.CORSCredentials = true
	cfg.CORSExposeHeaders = []string{"X-Request-Id"}
	a := relaytest.StartRelay(t, cfg, nil, "")
	client := &fasthttp.HostClient{Addr: a.Addr}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(a.URL + "/api/items?id=42")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("x-mte-outbound-token", relaytest.Token)
	req.Header.Set("x-mte-upstream", b.URL)
	req.SetBody(make([]byte, 1024))
	send := func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 ||
			string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" {
			t.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Header.Header())
		}
	}
	for i := 0; i < 200; i++ { // pair, fill pools
		send()
	}
	if allocs := testing.AllocsPerRun(500, send); allocs > 0 {
		t.Errorf("%.2f allocations per request, want 0", allocs)
	}
}
