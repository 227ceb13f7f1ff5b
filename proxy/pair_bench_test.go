package proxy_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/upsign"
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

// BenchmarkPairSigning: the pair of BenchmarkPair (MKE, 1 KiB, parallel
// clients) with relay B signing upstream requests under each scheme and
// algorithm, and without. cpu-µs/op is the whole process's CPU time (user +
// system: client, both relays and the upstream) per request, so the
// difference from "off" is what signing adds; run with -count to alternate.
func BenchmarkPairSigning(b *testing.B) {
	for _, signing := range []upsign.Config{
		{},
		{Scheme: upsign.SchemeCavage, Algorithm: "hmac-sha256"},
		{Scheme: upsign.SchemeCavage, Algorithm: "rsa-sha256", KeyFile: "../upsign/testdata/test-key-rsa-2048.pem"},
		{Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256"},
		{Scheme: upsign.SchemeRFC9421, Algorithm: "ed25519", KeyFile: "../upsign/testdata/rfc9421-test-key-ed25519.pem"},
		{Scheme: upsign.SchemeRFC9421, Algorithm: "ecdsa-p256-sha256", KeyFile: "../upsign/testdata/rfc9421-test-key-ecc-p256.pem"},
		{Scheme: upsign.SchemeRFC9421, Algorithm: "rsa-pss-sha512", KeyFile: "../upsign/testdata/test-key-rsa-2048.pem"},
	} {
		name := "off"
		if signing.Scheme != "" {
			name = signing.Scheme + "/" + signing.Algorithm
			signing.KeyID = "relay-b"
			if signing.KeyFile == "" {
				signing.Secret = "pair-bench-secret-0123456789abcdef"
			}
		}
		b.Run(name, func(b *testing.B) {
			up := fastUpstream(b)
			cfgB := relaytest.BaseConfig(up)
			cfgB.Signing = signing
			loadPair(b, up, cfgB)
		})
	}
}

// BenchmarkPairRoutes: the pair of BenchmarkPairSigning (MKE, 1 KiB,
// parallel clients) with relay B's PASS_THROUGH_ROUTES and MTE_ROUTES unset
// and set (the allow-list matching every request's path after three
// patterns that do not), in cpu-µs/op; run with -count to alternate.
func BenchmarkPairRoutes(b *testing.B) {
	for _, c := range []struct{ name, passThrough, mte string }{
		{"unset", "", ""},
		{"set", `^/health$,^/public/`, `^/v[0-9]+/orders/[0-9]+$,^/admin/,^/internal/,^/api/items$`},
	} {
		b.Run(c.name, func(b *testing.B) {
			up := fastUpstream(b)
			cfgB := relaytest.BaseConfig(up)
			cfgB.PassThroughRoutes, cfgB.MTERoutes = c.passThrough, c.mte
			loadPair(b, up, cfgB)
		})
	}
}

// loadPair starts relay B with cfgB and a default relay A in front of the
// upstream up, sends parallel 1 KiB MKE POSTs through them, and reports
// the whole process's CPU time per request as cpu-µs/op.
func loadPair(b *testing.B, up string, cfgB proxy.Config) {
	relayB := relaytest.StartRelay(b, cfgB, nil, "")
	relayA := relaytest.StartRelay(b, relaytest.BaseConfig(up), nil, "")
	client := &fasthttp.HostClient{Addr: relayA.Addr, MaxConns: 1024}
	body := make([]byte, 1024)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(relayA.URL + "/api/items?id=42")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("x-mte-outbound-token", relaytest.Token)
		req.Header.Set("x-mte-upstream", relayB.URL)
		req.SetBody(body)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("%v %d", err, resp.StatusCode())
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
