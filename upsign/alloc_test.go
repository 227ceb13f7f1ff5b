//go:build !race

package upsign

import (
	"testing"
	"time"
)

// TestSignAlloc: with an HMAC algorithm, signing a request the relay has
// built (body, query, repeated headers) allocates nothing once the pools
// are warm, in both schemes and with every covered-component kind in use.
func TestSignAlloc(t *testing.T) {
	tests := []struct{ scheme, alg, headers string }{
		{SchemeCavage, "hmac-sha1", ""},
		{SchemeCavage, "hmac-sha256", ""},
		{SchemeCavage, "hmac-sha384", "(request-target) host date content-type digest content-length x-trace"},
		{SchemeCavage, "hmac-sha512", ""},
		{SchemeRFC9421, "hmac-sha256", ""},
		{SchemeRFC9421, "hmac-sha256", `"@method" "@target-uri" "@authority" "@scheme" "@request-target" "@path" "@query" "@query-param";name="id" "content-digest" "content-length" "x-trace" "date"`},
	}
	for _, tt := range tests {
		c, _ := testConfig(t, tt.scheme, tt.alg)
		c.Headers = tt.headers
		if tt.scheme == SchemeRFC9421 {
			c.MaxAge = time.Minute
		}
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		req := upstreamRequest("POST", "http://127.0.0.1:9000/api/items?id=42&q=a+b", `{"hello": "world"}`)
		now := time.Now()
		sign := func() {
			if err := s.Sign(req, now); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			sign()
		}
		if allocs := testing.AllocsPerRun(200, sign); allocs != 0 {
			t.Errorf("%s %s %q: %.1f allocations per request, want 0", tt.scheme, tt.alg, tt.headers, allocs)
		}
	}
}
