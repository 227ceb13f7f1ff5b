package loadtest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkRoundTrip measures one worker's per-request path against the
// in-process upstream: its ns/op is the floor of what one connection costs
// the loader and the upstream together, and allocs/op must stay 0.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{1 << 10, 10 << 10, 100 << 10} {
		b.Run("Loopback/"+FormatSize(size), func(b *testing.B) {
			up, err := StartUpstream("127.0.0.1:0", size, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer up.Close()
			cfg := Config{
				URL: up.URL(), Body: Body(size), Connections: 1, Duration: time.Hour,
				ExpectSize: size, Verify: true, VerifyChecksum: up.Checksum(),
			}
			p, err := cfg.plan()
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			w := newWorker(context.Background(), p, make(chan struct{}), now, now.Add(time.Hour), 0, nil)
			defer w.closeConn()
			if err := w.connect(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * size)) // request and response body
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				sent := time.Now()
				oc := w.roundTrip(sent)
				w.record(oc, sent, sent, time.Now())
			}
			b.StopTimer()
			if w.failed.Load() != 0 {
				b.Fatalf("%d failed requests", w.failed.Load())
			}
		})
	}
}

// BenchmarkMerge measures folding per-worker histograms at the end of a
// run: it is paid once per run, but grows with the connection count.
func BenchmarkMerge(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("Workers/"+strconv.Itoa(n), func(b *testing.B) {
			hs := make([]*hdrhistogram.Histogram, n)
			for i := range hs {
				hs[i] = newHistogram()
				for v := 1; v <= 1000; v++ {
					recordMicros(hs[i], time.Duration(v*(i+1))*time.Microsecond)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				mergeHistograms(hs)
			}
		})
	}
}
