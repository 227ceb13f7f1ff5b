package codec

import (
	"fmt"
	"math/bits"
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

// xmlBody is an XML document of about n bytes: records with attributes,
// text with entity references, a CDATA section and comments.
func xmlBody(n int) []byte {
	b := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<records>\n")
	for i := 0; len(b) < n-12; i++ {
		b = fmt.Appendf(b, `  <record id="%d" status="active"><name>Patient %d</name><note>blood pressure &lt; 140 &amp; stable</note>`+
			`<!-- reviewed --><data><![CDATA[a<b>c]]></data><city>Zürich</city></record>`+"\n", i, i*7)
	}
	return append(b, "</records>\n"...)
}

// BenchmarkScanXML: ScanXML (pure Go, no kernel) per size.
func BenchmarkScanXML(b *testing.B) {
	lim := XMLLimits{MaxDepth: 20, MaxChildren: 100000, MaxAttributes: 64, MaxNameLength: 256, MaxTextLength: 65536, MaxAttributeLength: 4096}
	for _, size := range scanSizes {
		body := xmlBody(size.n)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if r := ScanXML(body, lim); r.Verdict != Accepted {
					b.Fatalf("%v at %d: %s", r.Verdict, r.Offset, r.Reason)
				}
			}
		})
	}
}

// BenchmarkScanFloor: where ScanJSON's time goes, per shape at 64 KiB, on
// the kernel selected: stage 1 alone (every block classified, its positions
// found), stage 1 and a visit of every position that reads its byte and
// does nothing else, and the whole scan. The gap between the last two is
// what the grammar, the limits and the validation of numbers, escapes and
// UTF-8 cost; the visit is the floor of any stage 2 that looks at every
// position.
func BenchmarkScanFloor(b *testing.B) {
	lim := JSONLimits{MaxDepth: 20, MaxArrayElements: 1 << 20, MaxObjectEntries: 100, MaxNameLength: 100, MaxStringLength: 1 << 16}
	for _, shape := range jsonshape.Shapes {
		body := jsonshape.Build(shape, 64<<10)
		for _, c := range []struct {
			name string
			run  func() int
		}{
			{"stage1", func() int {
				s := jsonScanner{buf: body}
				sum := 0
				for {
					pos, base := s.refill()
					if base >= len(body) {
						return sum
					}
					sum += int(pos) + base
				}
			}},
			{"visit", func() int {
				s := jsonScanner{buf: body}
				sum := 0
				for {
					pos, base := s.refill()
					if base >= len(body) {
						return sum
					}
					for ; pos != 0; pos &= pos - 1 {
						sum += int(body[base+bits.TrailingZeros64(pos)])
					}
				}
			}},
			{"scan", func() int { return int(ScanJSON(body, lim).Verdict) }},
		} {
			b.Run(c.name+"/"+shape+"-64KiB", func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				before := cpuTime()
				for b.Loop() {
					floorSink += c.run()
				}
				// The machine is shared: CPU time does not count the
				// time other processes held the core.
				b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

var floorSink int
