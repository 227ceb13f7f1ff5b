package upsign

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkSign: the CPU one signature adds to a request the inbound relay
// forwards (a POST with a query and a 1 KiB JSON body, default coverage),
// per scheme and algorithm. benchmarks/signing/README.md records the runs.
func BenchmarkSign(b *testing.B) {
	body := `{"data":"` + strings.Repeat("x", 1024-11) + `"}`
	for _, scheme := range []struct {
		name string
		algs []algorithm
	}{{SchemeCavage, cavageAlgorithms}, {SchemeRFC9421, rfc9421Algorithms}} {
		for _, alg := range scheme.algs {
			b.Run(scheme.name+"/"+alg.name, func(b *testing.B) {
				c, _ := testConfig(b, scheme.name, alg.name)
				s, err := New(c)
				if err != nil {
					b.Fatal(err)
				}
				req := upstreamRequest("POST", "http://127.0.0.1:9000/api/items?id=42", body)
				now := time.Now()
				b.ReportAllocs()
				for b.Loop() {
					if err := s.Sign(req, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
