package proxy_test

import (
	"testing"

	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// BenchmarkPair sends 1 KiB requests through an in-process pair (client →
// A → B → fasthttp upstream) from parallel clients. ns/op is wall time per
// request with everything on the same cores; profile it with -cpuprofile
// to see where a relayed request's CPU goes.
//
// The TLS variants put mutual TLS on the A↔B hop, as in production.
func BenchmarkPair(b *testing.B) {
	for _, c := range []struct {
		mode string
		tls  bool
	}{{"MKE", false}, {"MTE", false}, {"MKE", true}} {
		name := c.mode
		if c.tls {
			name += "-TLS"
		}
		mode := c.mode
		b.Run(name+"/1KiB", func(b *testing.B) {
			up := fastUpstream(b)
			cfgA, cfgB := relaytest.BaseConfig(up), relaytest.BaseConfig(up)
			if c.tls {
				k := newPKI(b)
				cfgA.TLS, cfgB.TLS = k.clientA(b), k.serverB(b)
			}
			relayB := relaytest.StartRelay(b, cfgB, nil, "")
			relayA := relaytest.StartRelay(b, cfgA, nil, "")
			client := &fasthttp.HostClient{Addr: relayA.Addr, MaxConns: 1024}
			body := make([]byte, 1024)
			b.SetBytes(2 * 1024)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI(relayA.URL + "/api/items")
				req.Header.SetMethod("POST")
				req.Header.Set("x-mte-outbound-token", relaytest.Token)
				req.Header.Set("x-mte-upstream", relayB.URL)
				req.Header.Set("x-mte-encode-type", mode)
				req.SetBody(body)
				for pb.Next() {
					if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("%v %d", err, resp.StatusCode())
						return
					}
				}
			})
		})
	}
}
