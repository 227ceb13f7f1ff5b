//go:build !race

package proxy_test

import (
	"testing"

	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// TestRoutesZeroAllocations: with PASS_THROUGH_ROUTES and MTE_ROUTES set
// on relay B, a sealed request the allow-list admits still allocates
// nothing through the pair (over a link and per-request HTTP), and neither
// does a plain request B passes through, escapes in its path included.
func TestRoutesZeroAllocations(t *testing.T) {
	up := fastUpstream(t)
	for _, carriage := range []struct {
		name  string
		links bool
	}{{"link", true}, {"HTTP", false}} {
		t.Run(carriage.name, func(t *testing.T) {
			cfgB := relaytest.BaseConfig(up)
			cfgB.PassThroughRoutes = `^/health$,^/public/[a-z ]+$`
			cfgB.MTERoutes = `^/v[0-9]+/public/,^/api/items$`
			recA, recB := newRecorder(), newRecorder()
			cfgB.Metrics = recB
			b := relaytest.StartRelay(t, cfgB, nil, "")
			cfgA := relaytest.BaseConfig(up)
			cfgA.NoPeerLinks = !carriage.links
			cfgA.Metrics = recA
			a := relaytest.StartRelay(t, cfgA, nil, "")
			zeroAllocations(t, a, b, recA, recB)
		})
	}
	t.Run("pass-through", func(t *testing.T) {
		cfg := relaytest.BaseConfig(up)
		cfg.PassThroughRoutes = `^/health$,^/public/[a-z ]+$`
		cfg.MTERoutes = `^/api/`
		b := relaytest.StartRelay(t, cfg, nil, "")
		client := &fasthttp.HostClient{Addr: b.Addr}
		for _, target := range []string{"/public/status%20page?full=1", "/health"} {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI(b.URL + target)
			req.URI().DisablePathNormalizing = true
			req.Header.SetMethod("POST")
			req.SetBody(make([]byte, 512))
			send := func() {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
					t.Fatalf("%s: %v %d %.200q", target, err, resp.StatusCode(), resp.Body())
				}
			}
			for range 200 {
				send()
			}
			if allocs := testing.AllocsPerRun(500, send); allocs > 0 {
				t.Errorf("%s: %.2f allocations per pass-through request, want 0", target, allocs)
			}
		}
	})
}
