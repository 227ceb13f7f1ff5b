package codec

// The codec's byte-crunching kernels, each with an amd64 assembly path
// (codec_amd64.s) and a pure-Go twin (codec_generic.go) that the `purego`
// build tag forces and other architectures use. The assembly is chosen once
// at start-up from the CPU's features (codec_amd64.go); the twin is the
// reference the assembly is fuzzed against.

// blockLen is the width of one stage-1 block: one bit per byte in a uint64.
const blockLen = 64

// stage1Carry is what stage 1 of ScanJSON carries from one block to the
// next.
type stage1Carry struct {
	nextEscaped  uint64 // 1: the next block's first byte is escaped
	inString     uint64 // all ones: the next block starts inside a string
	prevScalar   uint64 // 1: the last byte was part of a scalar
	prevNonASCII uint64 // 1: the last byte was a non-ASCII byte inside a string
}

// findPositions is stage 1 of ScanJSON: for each 64-byte block of src it
// sets dst[i] to the positions stage 2 must visit, bit j for byte j:
// structural characters outside strings, unescaped quotes, the first byte
// of each scalar, and inside strings escaping backslashes, control bytes and
// the first byte of each non-ASCII run. c carries state across blocks and
// calls. len(src) must be a multiple of blockLen and dst must have room.
func findPositions(dst []uint64, src []byte, c *stage1Carry) {
	if len(src)%blockLen != 0 || len(dst) < len(src)/blockLen {
		panic("codec: findPositions needs whole blocks and room for their positions")
	}
	if len(src) == 0 {
		return
	}
	if useAVX2 {
		findPositionsAVX2(dst, src, c)
		return
	}
	findPositionsGeneric(dst, src, c)
}
