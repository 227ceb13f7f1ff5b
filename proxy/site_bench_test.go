package proxy

import (
	"log/slog"
	"testing"
)

// BenchmarkSiteFor is what choosing the site costs per frame: without
// DOMAIN_MAP a pointer read; with it, the lower-cased Host looked up with
// its port, and again without when only a port-less key matches.
func BenchmarkSiteFor(b *testing.B) {
	base := Config{ClientIDSecret: "site-bench-secret-8f3a91c07d2e4b65a1", OutboundToken: "site-bench-token-5521"}
	withMap := base
	withMap.Domains = []Domain{
		{Host: "api.example.com", Upstream: "http://127.0.0.1:9"},
		{Host: "billing.example.com:8443", Upstream: "http://127.0.0.1:9"},
	}
	base.Upstream = "http://127.0.0.1:9"
	for _, c := range []struct {
		name string
		cfg  Config
		host string
	}{
		{"unset", base, "api.example.com:8443"},
		{"DOMAIN_MAP/key-with-port", withMap, "Billing.Example.com:8443"},
		{"DOMAIN_MAP/key-without-port", withMap, "API.example.com:8443"},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := New(c.cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			host := []byte(c.host)
			b.ReportAllocs()
			for b.Loop() {
				if s.siteFor(host) == nil {
					b.Fatal("no site")
				}
			}
		})
	}
}
