package codec

import (
	"math/rand/v2"
	"testing"
)

// disableAVX2 switches the AVX2 kernels off until the returned function runs:
// defer disableAVX2()().
func disableAVX2() func() {
	saved := useAVX2
	useAVX2 = false
	return func() { useAVX2 = saved }
}

// kernel is one implementation of the kernels: off selects it and returns
// what restores the previous selection.
type kernel struct {
	name string
	off  func() func()
}

// kernels are the implementations every kernel test runs: the twin always,
// the assembly where the CPU has it.
func kernels(testing.TB) []kernel {
	ks := []kernel{{"generic", disableAVX2}}
	if useAVX2 {
		ks = append(ks, kernel{"avx2", func() func() { return func() {} }})
	}
	return ks
}

// TestClassifyMatchesGeneric: the assembly classifies every byte value at
// every position of a block as the twin does, and writes nothing past the
// masks it was given room for.
func TestClassifyMatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 on this CPU or build")
	}
	src := make([]byte, 256*blockLen)
	for i := range src {
		src[i] = byte(i/blockLen + i%blockLen) // every value at every position
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		extra := make([]byte, 8*blockLen)
		for i := range extra {
			extra[i] = byte(rnd.IntN(256))
		}
		src = append(src, extra...)
	}
	n := len(src) / blockLen
	want := make([]blockMasks, n)
	classifyGeneric(want, src)
	for _, blocks := range []int{0, 1, 2, 7, n} {
		got := make([]blockMasks, blocks+1)
		canary := blockMasks{0xdead, 0xbeef, 1, 2, 3, 4}
		got[blocks] = canary
		classifyAVX2(got[:blocks], src[:blocks*blockLen])
		for i := range blocks {
			if got[i] != want[i] {
				t.Fatalf("block %d of %q: avx2 %+v, generic %+v", i, src[i*blockLen:(i+1)*blockLen], got[i], want[i])
			}
		}
		if got[blocks] != canary {
			t.Fatalf("classifyAVX2 of %d blocks wrote past them", blocks)
		}
	}
}
