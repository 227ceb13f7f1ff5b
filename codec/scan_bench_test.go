package codec

import (
	"testing"

	"github.com/pqrelay/pqrelay/internal/jsonshape"
)

// scanSizes are the body sizes of BenchmarkScan.
var scanSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// BenchmarkScan: ScanJSON with each stage-1 kernel, per shape and size.
func BenchmarkScan(b *testing.B) {
	lim := JSONLimits{MaxDepth: 20, MaxArrayElements: 1 << 20, MaxObjectEntries: 100, MaxNameLength: 100, MaxStringLength: 1 << 16}
	for _, k := range kernels(b) {
		for _, shape := range jsonshape.Shapes {
			for _, size := range scanSizes {
				body := jsonshape.Build(shape, size.n)
				b.Run(k.name+"/"+shape+"-"+size.name, func(b *testing.B) {
					defer k.off()()
					b.SetBytes(int64(len(body)))
					for b.Loop() {
						if r := ScanJSON(body, lim); r.Verdict != Accepted {
							b.Fatalf("%v at %d: %s", r.Verdict, r.Offset, r.Reason)
						}
					}
				})
			}
		}
	}
}
