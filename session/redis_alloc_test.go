//go:build !race

package session

import (
	"context"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
)

// The inbound hot path's lookup: a session this replica holds is served
// from the local layer without allocating (and without Redis, see
// TestRedisCrossReplica). Built without -race, which allocates.
func TestRedisGetLocalHitAllocs(t *testing.T) {
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a, b := openTestRedis(t, srv, sec), openTestRedis(t, srv, sec)
	waitHealthy(t, a)
	waitHealthy(t, b)
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, a, s)
	id := s.ClientID.ID()
	if _, err := b.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := b.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Get of a locally held session: %v allocations, want 0", n)
	}
}
