package loadtest

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what one Run measured. Only successes (2xx with the expected
// body) are in Requests and in the latency percentiles; every failure is
// counted in exactly one of Errors, Timeouts, Non2xx and BadBody, so a
// target that fails fast cannot look fast.
type Result struct {
	// Connections and Rate echo the Config (Rate zero: closed loop).
	Connections int
	Rate        float64

	// Requests is the number of successful responses that completed in
	// the measured phase.
	Requests int64

	// Errors are failed connects, writes and reads and unparsable
	// responses; Timeouts requests that exceeded Config.Timeout; Non2xx
	// complete responses with a status outside 200–299; BadBody 2xx
	// responses of the wrong length or checksum.
	Errors, Timeouts, Non2xx, BadBody int64

	// Duration is the length of the measured phase (shorter than
	// Config.Duration only if the run was cancelled).
	Duration time.Duration

	// Latency of the successes: from the send time in closed loop, from
	// the intended send time in open loop.
	Latency Percentiles

	// Service is, in open loop, the latency from the actual send time:
	// what a measurement without the coordinated-omission correction
	// would report. In closed loop it equals Latency.
	Service Percentiles
}

// Failed is the sum of all failure counters.
func (r Result) Failed() int64 { return r.Errors + r.Timeouts + r.Non2xx + r.BadBody }

// RPS is successful requests per second of the measured phase.
func (r Result) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// Percentiles summarises a latency distribution. All fields are zero when
// nothing succeeded.
type Percentiles struct {
	Min, P50, P90, P99, P999, Max time.Duration
}

// percentiles reads a histogram of microseconds. Quantiles are the
// histogram's highest equivalent value, so they are accurate to the
// histogram's 3 significant digits and never under-report.
func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Percentiles{
		Min:  us(h.Min()),
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

// mergeHistograms folds per-worker histograms into one; they share one
// geometry, so nothing is dropped.
func mergeHistograms(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	total := newHistogram()
	for _, h := range hs {
		if h != nil {
			total.Merge(h)
		}
	}
	return total
}
