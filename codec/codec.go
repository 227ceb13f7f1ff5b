package codec

// The codec's byte-crunching kernels, each with an amd64 assembly path
// (codec_amd64.s) and a pure-Go twin (codec_generic.go) that the `purego`
// build tag forces and other architectures use. The assembly is chosen once
// at start-up from the CPU's features (codec_amd64.go); the twin is the
// reference the assembly is fuzzed against.

// blockLen is the width of one classification block: one bit per byte in a
// uint64 mask.
const blockLen = 64

// blockMasks classifies the 64 bytes of one block, bit i for byte i. It is
// stage 1 of the JSON scanner: what each byte is, before anything knows
// whether it sits inside a string.
type blockMasks struct {
	quote     uint64 // '"'
	backslash uint64 // '\\'
	op        uint64 // one of {}[]:,
	space     uint64 // JSON whitespace: SP, HT, LF, CR
	control   uint64 // below 0x20
	nonASCII  uint64 // 0x80 and above
}

// classify fills dst[i] for each 64-byte block of src; len(src) must be a
// multiple of blockLen and dst must hold len(src)/blockLen masks.
func classify(dst []blockMasks, src []byte) {
	if len(src)%blockLen != 0 || len(dst) < len(src)/blockLen {
		panic("codec: classify needs whole blocks and room for their masks")
	}
	if len(src) == 0 {
		return
	}
	if useAVX2 {
		classifyAVX2(dst, src)
		return
	}
	classifyGeneric(dst, src)
}
