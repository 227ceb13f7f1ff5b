//go:build !race

package link

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestRoundTripAllocs: in steady state a request over a link allocates
// nothing at A or at B: answers, exchanges, buffers and timers are pooled,
// and B's workers outlive their requests.
func TestRoundTripAllocs(t *testing.T) {
	srv := startServer(t, &Server{}, echo)
	c := dialRaw(t, srv.addr, ClientConfig{})
	msg := bytes.Repeat([]byte{'m'}, 1024)
	var id uint64
	send := func() {
		id++
		a, err := c.RoundTrip(id, msg, time.Now().Add(5*time.Second))
		if err != nil || len(a.Response()) != len(msg) {
			t.Fatalf("round trip: %v", err)
		}
		a.Release()
	}
	for range 200 {
		send()
	}
	if allocs := testing.AllocsPerRun(1000, send); allocs != 0 {
		t.Errorf("%.2f allocations per sequential round trip, want 0", allocs)
	}

	// Concurrent: eight callers at once, so that batches hold several
	// messages and B runs several workers.
	const callers = 8
	var mu sync.Mutex
	concurrent := func() {
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mu.Lock()
				id++
				my := id
				mu.Unlock()
				a, err := c.RoundTrip(my, msg, time.Now().Add(5*time.Second))
				if err != nil {
					t.Errorf("round trip: %v", err)
					return
				}
				a.Release()
			}()
		}
		wg.Wait()
	}
	for range 100 {
		concurrent()
	}
	// The callers' own goroutines and WaitGroup cost allocations of their
	// own; the link's share must be nothing.
	base := testing.AllocsPerRun(200, func() {
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() { defer wg.Done(); mu.Lock(); id++; mu.Unlock() }()
		}
		wg.Wait()
	})
	if allocs := testing.AllocsPerRun(200, concurrent) - base; allocs > 0.5 {
		t.Errorf("%.2f allocations per batch of %d concurrent round trips beyond the callers' own, want 0", allocs, callers)
	}
}
