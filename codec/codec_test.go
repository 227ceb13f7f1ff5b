package codec

import (
	"math/rand/v2"
	"strings"
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

// TestFindPositionsMatchesGeneric: the assembly finds the same positions
// and carries as the twin for every byte value at every position of a
// block and for random blocks, whether called once or a block at a time,
// and writes nothing past the room it was given.
func TestFindPositionsMatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 on this CPU or build")
	}
	src := make([]byte, 256*blockLen)
	for i := range src {
		src[i] = byte(i/blockLen + i%blockLen) // every value at every position
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("\\\"\"{}[]:, \t\n\r\x00\x1fa1\x80\xc3\xff")
	for range 64 * blockLen {
		src = append(src, alphabet[rnd.IntN(len(alphabet))])
	}
	// Long strings, whose inner blocks take the fast path, ended by each
	// kind of byte that leaves it.
	for _, end := range []string{`"`, `\\"`, `\"`, "\x01", "\xc3\xa9", `"1`} {
		src = append(src, `["`+strings.Repeat("plain text ", 40)+end+`", 1]`...)
	}
	checkFindPositions(t, src)
}

// checkFindPositions compares findPositionsAVX2 with findPositionsGeneric on
// the whole blocks of src, in one call and a block per call.
func checkFindPositions(t *testing.T, src []byte) {
	t.Helper()
	src = src[:len(src)&^(blockLen-1)]
	n := len(src) / blockLen
	want := make([]uint64, n)
	var wantCarry stage1Carry
	findPositionsGeneric(want, src, &wantCarry)
	const canary = 0xdeadbeefcafef00d
	got := make([]uint64, n+1)
	got[n] = canary
	var carry stage1Carry
	findPositionsAVX2(got[:n], src, &carry)
	if got[n] != canary {
		t.Fatalf("findPositionsAVX2 of %d blocks wrote past them", n)
	}
	for i := range n {
		if got[i] != want[i] {
			t.Fatalf("block %d of %q: avx2 %064b\n                    generic %064b", i, src[i*blockLen:(i+1)*blockLen], got[i], want[i])
		}
	}
	if carry != wantCarry {
		t.Fatalf("carry: avx2 %+v, generic %+v", carry, wantCarry)
	}
	carry = stage1Carry{}
	for i := range n {
		one := []uint64{0, canary}
		findPositionsAVX2(one[:1], src[i*blockLen:(i+1)*blockLen], &carry)
		if one[0] != want[i] || one[1] != canary {
			t.Fatalf("block %d alone: avx2 %064b, generic %064b", i, one[0], want[i])
		}
	}
	if carry != wantCarry {
		t.Fatalf("carry, a block per call: avx2 %+v, generic %+v", carry, wantCarry)
	}
}
