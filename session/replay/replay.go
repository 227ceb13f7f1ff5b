// Package replay is the receiver's anti-replay window of RFC 6479: a ring of
// bitmap blocks that accepts each counter at most once and any counter within
// WindowSize of the highest seen, in any order.
//
// pqrelay's outbound relay seals requests concurrently from one atomic
// counter, so frames arrive out of order by up to the number of requests in
// flight; the window is sized for 10,000 of them with room to spare.
//
// A Window is not safe for concurrent use; the session that owns it holds a
// lock around Accept.
package replay

const (
	blockBits  = 64
	ringBlocks = 1 << 8 // a power of two, so the modulo is a mask
	// WindowSize is how far behind the newest counter a counter may be and
	// still be accepted. One block is kept free so that advancing never
	// clears a block still inside the window (RFC 6479 §2).
	WindowSize = (ringBlocks - 1) * blockBits // 16,320
)

// Window remembers which counters were accepted. The zero value is ready.
type Window struct {
	last uint64 // highest counter accepted
	ring [ringBlocks]uint64
}

// Accept reports whether counter is new, and records it if so. Call it only
// for messages that authenticated, or a forger could advance the window.
func (w *Window) Accept(counter uint64) bool {
	block := counter / blockBits
	if counter > w.last {
		current := w.last / blockBits
		diff := block - current
		if diff > ringBlocks {
			diff = ringBlocks
		}
		for i := current + 1; i <= current+diff; i++ {
			w.ring[i&(ringBlocks-1)] = 0
		}
		w.last = counter
	} else if w.last-counter > WindowSize {
		return false
	}
	i := block & (ringBlocks - 1)
	bit := uint64(1) << (counter & (blockBits - 1))
	if w.ring[i]&bit != 0 {
		return false
	}
	w.ring[i] |= bit
	return true
}
