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

	// Requests is the number of successful responses to requests due in
	// the measured phase.
	Requests int64

	// Scheduled is, in open loop, how many requests were due in the
	// measured phase: Requests can never exceed it. Zero otherwise.
	Scheduled int64

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

	// CPU is what the processes involved spent during the measured phase.
	CPU CPUUsage

	// Service is, in open loop, the latency from the actual send time:
	// what a measurement without the coordinated-omission correction
	// would report. In closed loop it equals Latency.
	Service Percentiles
}

// CPUUsage is CPU time (user and system) spent during a measured phase,
// read from /proc on Linux. Measured is false elsewhere, and when the run
// was cancelled or stopped before its window ended.
type CPUUsage struct {
	Measured bool
	// Target is the CPU of the processes in Config.CPUPIDs (zero if none
	// were given), Loader the loader's own, Machine every CPU's busy time,
	// loader and targets included.
	Target, Loader, Machine time.Duration
	// Wall is the time between the two readings: the measured phase,
	// give or take how late a busy machine woke the reader.
	Wall time.Duration
	// CPUs is the number of CPUs the machine has online.
	CPUs int
}

// PerRequest divides d by the successes of r: the CPU cost of one request.
// Zero when nothing succeeded.
func (r Result) PerRequest(d time.Duration) time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return d / time.Duration(r.Requests)
}

// ShortfallPct is, in open loop, how far Requests fell short of Scheduled,
// in percent of Scheduled; zero in other modes.
func (r Result) ShortfallPct() float64 {
	if r.Scheduled <= 0 {
		return 0
	}
	return float64(r.Scheduled-r.Requests) / float64(r.Scheduled) * 100
}

// ShortfallWarnPct is the shortfall above which reports and the command
// say that the target did not keep up with the requested rate.
const ShortfallWarnPct = 3.0

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
