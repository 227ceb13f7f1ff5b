package metrics

import (
	"sync/atomic"
	"time"
)

// counter is a monotonically increasing series.
type counter struct{ n atomic.Uint64 }

func (c *counter) inc() { c.n.Add(1) }

// gauge is a series that goes up and down.
type gauge struct{ n atomic.Int64 }

// bucketBounds are the upper bounds of every histogram's buckets, from
// 100 µs (a relay's own work) to 30 s (the default timeouts).
var bucketBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// histogram counts observations per bucket (not cumulatively: one add per
// observation) and their sum in nanoseconds. The count is the sum of the
// buckets, so a scrape never shows a count that disagrees with them.
type histogram struct {
	buckets [len(bucketBounds) + 1]atomic.Uint64 // the last is +Inf
	sumNs   atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(bucketBounds) && d > bucketBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(int64(d))
}
