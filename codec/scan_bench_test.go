package codec

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// scanSizes are the body sizes of BenchmarkScan.
var scanSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// JSONShape builds a valid JSON array of about n bytes of one of three
// shapes: "api" (records as a typical API sends them), "numbers" (a
// number-heavy document), "strings" (a string-heavy one). Deterministic.
func JSONShape(shape string, n int) []byte {
	rnd := rand.New(rand.NewPCG(7, uint64(n)))
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; b.Len() < n-2; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		switch shape {
		case "api":
			fmt.Fprintf(&b, `{"id":%d,"name":"Patient %d","email":"user%d@example.com","active":%v,"score":%.3f,`+
				`"tags":["a","bc","déf"],"address":{"street":"%d Main St","city":"Zürich","zip":"%05d"},"note":null}`,
				i, rnd.IntN(1e6), i, i%2 == 0, rnd.Float64()*100, rnd.IntN(999), rnd.IntN(99999))
		case "numbers":
			b.WriteString(strconv.FormatFloat(rnd.NormFloat64()*1e3, 'g', -1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(rnd.IntN(1 << 30)))
		case "strings":
			b.WriteByte('"')
			for range 4 {
				b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor ")
			}
			b.WriteString(`\"quoted\" and a tab\t`)
			b.WriteByte('"')
		}
	}
	b.WriteByte(']')
	return []byte(b.String())
}

var jsonShapes = []string{"api", "numbers", "strings"}

// BenchmarkScan: ScanJSON with each classify kernel, per shape and size.
func BenchmarkScan(b *testing.B) {
	lim := JSONLimits{MaxDepth: 20, MaxArrayElements: 1 << 20, MaxObjectEntries: 100, MaxNameLength: 100, MaxStringLength: 1 << 16}
	for _, k := range kernels(b) {
		for _, shape := range jsonShapes {
			for _, size := range scanSizes {
				body := JSONShape(shape, size.n)
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
