package loadtest

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestMergedPercentiles(t *testing.T) {
	t.Parallel()
	// Three "workers" record 1..1000 µs between them, interleaved, so no
	// single histogram holds the answer.
	hs := []*hdrhistogram.Histogram{newHistogram(), newHistogram(), newHistogram()}
	for v := 1; v <= 1000; v++ {
		recordMicros(hs[v%3], time.Duration(v)*time.Microsecond)
	}
	got := percentiles(mergeHistograms(append(hs, nil)))
	// Exact below 2048 µs at 3 significant digits.
	want := Percentiles{
		Min:  1 * time.Microsecond,
		P50:  500 * time.Microsecond,
		P90:  900 * time.Microsecond,
		P99:  990 * time.Microsecond,
		P999: 999 * time.Microsecond,
		Max:  1000 * time.Microsecond,
	}
	if got != want {
		t.Fatalf("merged percentiles\n got %+v\nwant %+v", got, want)
	}
}

func TestPercentilesSkewed(t *testing.T) {
	t.Parallel()
	// 990 fast requests at 2 ms and 10 stalled at 1 s: the p99 is still
	// fast, the p99.9 and max are the stall. Values above 2048 µs land in
	// buckets 0.1 % wide, reported at their upper edge.
	a, b := newHistogram(), newHistogram()
	for i := 0; i < 990; i++ {
		recordMicros(a, 2*time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		recordMicros(b, time.Second)
	}
	got := percentiles(mergeHistograms([]*hdrhistogram.Histogram{a, b}))
	near := func(d, want time.Duration) bool { return d >= want && d <= want+want/1000 }
	if !near(got.P50, 2*time.Millisecond) || !near(got.P99, 2*time.Millisecond) {
		t.Errorf("p50 %v p99 %v, want 2ms", got.P50, got.P99)
	}
	if !near(got.P999, time.Second) || !near(got.Max, time.Second) {
		t.Errorf("p99.9 %v max %v, want 1s", got.P999, got.Max)
	}
}

func TestRecordMicrosClamps(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	recordMicros(h, -time.Second)   // clock went backwards
	recordMicros(h, 0)              // faster than the resolution
	recordMicros(h, 1000*time.Hour) // beyond the range
	if h.TotalCount() != 3 {
		t.Fatalf("recorded %d of 3 out-of-range values", h.TotalCount())
	}
	p := percentiles(h)
	if p.Min != time.Microsecond || p.Max < histHighest*time.Microsecond {
		t.Fatalf("clamped range %v..%v", p.Min, p.Max)
	}
}

func TestPercentilesEmpty(t *testing.T) {
	t.Parallel()
	if got := percentiles(newHistogram()); got != (Percentiles{}) {
		t.Fatalf("empty histogram gave %+v", got)
	}
}

// recordMicros records d in h the way a worker's flush does.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(micros(d))
}
