package replay

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestAcceptSequence(t *testing.T) {
	t.Parallel()
	// Steps as (counter, want): the RFC 6479 cases plus the window edges.
	steps := []struct {
		counter uint64
		want    bool
	}{
		{0, true}, {0, false}, {1, true}, {1, false},
		{3, true}, {2, true}, {2, false},
		{WindowSize + 10, true},
		{10, true}, // exactly WindowSize behind, never seen: inside
		{9, false}, // one further, never seen: outside
		{WindowSize + 9, true},
		{WindowSize + 10, false},
		{WindowSize*3 + 10, true}, // a jump clears the whole ring
		{WindowSize*2 + 11, true},
		{WindowSize*2 + 9, false},
		{WindowSize*2 + 10, true},
		{WindowSize*3 + 9, true},
		{WindowSize*3 + 10, false},
	}
	var w Window
	for i, s := range steps {
		if got := w.Accept(s.counter); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.counter, got, s.want)
		}
	}
}

// TestOutOfOrderInFlight models 10,000 concurrent requests: each counter is
// delivered before any counter sealed 10,000 later (sort by counter + jitter
// in [0, inFlight)), each exactly once; then all are replayed.
func TestOutOfOrderInFlight(t *testing.T) {
	t.Parallel()
	const inFlight, total = 10_000, 200_000
	r := rand.New(rand.NewPCG(1, 2))
	type arrival struct{ key, counter uint64 }
	order := make([]arrival, total)
	for i := range order {
		c := uint64(i + 1)
		order[i] = arrival{c + uint64(r.IntN(inFlight)), c}
	}
	slices.SortFunc(order, func(a, b arrival) int { return cmp.Compare(a.key, b.key) })
	var w Window
	for _, a := range order {
		if !w.Accept(a.counter) {
			t.Fatalf("fresh counter %d refused (last %d)", a.counter, w.last)
		}
	}
	for c := uint64(total - inFlight); c <= total; c++ {
		if w.Accept(c) {
			t.Fatalf("replayed counter %d accepted", c)
		}
	}
}

// TestAgainstModel compares the ring with an exact set over random walks.
func TestAgainstModel(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		var w Window
		seen := map[uint64]bool{}
		var last uint64
		for i := 0; i < 5000; i++ {
			var c uint64
			switch r.IntN(4) {
			case 0:
				c = last + uint64(r.IntN(3*WindowSize))
			default:
				c = last - min(last, uint64(r.IntN(WindowSize+200)))
			}
			want := !seen[c] && (c > last || last-c <= WindowSize)
			if got := w.Accept(c); got != want {
				t.Fatalf("trial %d step %d: Accept(%d) = %v, want %v (last %d)", trial, i, c, got, want, last)
			}
			if want {
				seen[c] = true
				last = max(last, c)
			}
		}
	}
}

func BenchmarkAccept(b *testing.B) {
	var w Window
	for i := 0; b.Loop(); i++ {
		w.Accept(uint64(i))
	}
}
