// Package jsonshape builds the JSON bodies that the scanner's benchmarks and
// tests share, so that codec's benchmarks and the comparison in
// benchmarks/scan measure the same bytes. Test support: nothing in the
// relay imports it.
package jsonshape

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Shapes are the kinds of document Build makes: records as a typical API
// sends them, a number-heavy document, a string-heavy one.
var Shapes = []string{"api", "numbers", "strings"}

// Build returns a valid JSON array of about n bytes of the given shape, the
// same bytes for the same arguments.
func Build(shape string, n int) []byte {
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
		default:
			panic("jsonshape: unknown shape " + shape)
		}
	}
	b.WriteByte(']')
	return []byte(b.String())
}
