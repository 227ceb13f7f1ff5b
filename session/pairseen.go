package session

import (
	"sync"
	"time"
)

// SeenPairRequests remembers the PairRequests a relay has answered for as
// long as their timestamps could still pass the clock check (2 × MaxClockSkew),
// so that a captured PairRequest replayed to the same relay is refused
// instead of creating a useless session each time (docs/PROTOCOL.md §6.4).
// Entries are keyed by the request's MAC, unique to each request. The zero
// value is ready to use.
type SeenPairRequests struct {
	mu   sync.Mutex
	seen map[[macLen]byte]time.Time // MAC → when it may be forgotten
}

// maxSeenPairRequests bounds the memory; only verified requests get in, so
// filling it takes CLIENT_ID_SECRET.
const maxSeenPairRequests = 1 << 16

// FirstTime records req, a PairRequest that verified, and reports whether it
// is new. It also reports false when the cache is full of live entries.
func (c *SeenPairRequests) FirstTime(req []byte, now time.Time) bool {
	if len(req) < macLen {
		return false
	}
	key := [macLen]byte(req[len(req)-macLen:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[[macLen]byte]time.Time)
	}
	if until, ok := c.seen[key]; ok && now.Before(until) {
		return false
	}
	if len(c.seen) >= maxSeenPairRequests {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= maxSeenPairRequests {
			return false
		}
	}
	c.seen[key] = now.Add(2 * MaxClockSkew)
	return true
}
