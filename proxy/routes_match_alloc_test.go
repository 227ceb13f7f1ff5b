//go:build !race

package proxy

import "testing"

// TestRouteMatchZeroAllocations: reading a path and matching it against
// the route lists allocates nothing once the scratch buffer has grown, a
// match or a miss, with or without escapes.
func TestRouteMatchZeroAllocations(t *testing.T) {
	r, err := parseRoutes("PASS_THROUGH_ROUTES", `^/health$, ^/public/[a-z]+/(items|orders)$, status`,
		"MTE_ROUTES", `^/api/v[0-9]{1,3}/`)
	if err != nil {
		t.Fatal(err)
	}
	scratch := make([]byte, 0, 64)
	for _, target := range []string{"/health", "/public/shop/items?x=1", "/api/v2/x", "/p%75blic/shop/orders", "/admin/status", "/nothing/here"} {
		b := []byte(target)
		if allocs := testing.AllocsPerRun(1000, func() {
			if path, ok := routePath(b, &scratch); ok {
				r.passThrough.match(path)
			}
			r.sealedAllowed(b, &scratch)
		}); allocs > 0 {
			t.Errorf("%s: %.2f allocations", target, allocs)
		}
	}
}
