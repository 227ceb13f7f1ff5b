package codec

import (
	"bytes"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"10KiB", 10 << 10}, {"1MiB", 1 << 20}}

// benchFrame returns a request frame (header and envelope with a body of n
// bytes, unsealed) in a buffer with room for the tag.
func benchFrame(mode uint8, n int) []byte {
	buf := make([]byte, 0, HeaderLen+PaddedLen(n+64)+TagLen)
	buf = AppendHeader(buf, reqHeader(mode, 1))
	b := BeginRequest(buf, []byte("POST"), []byte("/v1/items"))
	b.AddHeader([]byte("content-type"), []byte("application/json"))
	return b.Finish(bytes.Repeat([]byte("x"), n), mode)
}

// BenchmarkSeal seals in place, as the relays do; the bytes sealed on the
// second round are the first round's ciphertext, which costs the same.
func BenchmarkSeal(b *testing.B) {
	k := testKeys()
	for _, m := range modes {
		for _, sz := range benchSizes {
			b.Run(m.name+"/"+sz.name, func(b *testing.B) {
				frame := benchFrame(m.mode, sz.n)
				b.SetBytes(int64(len(frame)))
				b.ReportAllocs()
				for b.Loop() {
					Seal(frame, k, testClientID, nil)
				}
			})
		}
	}
}

// BenchmarkOpen opens in place; each round first restores the sealed frame
// (a memmove, small next to AES-GCM).
func BenchmarkOpen(b *testing.B) {
	k := testKeys()
	for _, m := range modes {
		for _, sz := range benchSizes {
			b.Run(m.name+"/"+sz.name, func(b *testing.B) {
				sealed := Seal(benchFrame(m.mode, sz.n), k, testClientID, nil)
				work := make([]byte, len(sealed))
				h, err := ParseHeader(sealed)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(sealed)))
				b.ReportAllocs()
				for b.Loop() {
					copy(work, sealed)
					if _, err := Open(work, h, k, testClientID, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkParseRequest decodes and validates the envelope of a 1 KiB body.
func BenchmarkParseRequest(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name+"/1KiB", func(b *testing.B) {
			env := benchFrame(m.mode, 1<<10)[HeaderLen:]
			b.SetBytes(int64(len(env)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(env, m.mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
