package codec

// blockMasks classifies the 64 bytes of one block, bit i for byte i: what
// each byte is, before anything knows whether it sits inside a string.
type blockMasks struct {
	quote     uint64 // '"'
	backslash uint64 // '\\'
	op        uint64 // one of {}[]:,
	space     uint64 // JSON whitespace: SP, HT, LF, CR
	control   uint64 // below 0x20
	nonASCII  uint64 // 0x80 and above
}

// Byte classes of classifyGeneric, one bit each in classTable.
const (
	classQuote = 1 << iota
	classBackslash
	classOp
	classSpace
	classControl
	classNonASCII
)

var classTable = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '"':
			t[c] = classQuote
		case c == '\\':
			t[c] = classBackslash
		case c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',':
			t[c] = classOp
		case c == ' ':
			t[c] = classSpace
		case c == '\t' || c == '\n' || c == '\r':
			t[c] = classSpace | classControl
		case c < 0x20:
			t[c] = classControl
		case c >= 0x80:
			t[c] = classNonASCII
		}
	}
	return t
}()

// findPositionsGeneric is findPositions in pure Go: each block classified a
// byte at a time, then the same bit arithmetic as the assembly.
func findPositionsGeneric(dst []uint64, src []byte, c *stage1Carry) {
	for i := range len(src) / blockLen {
		m := classifyGeneric(src[i*blockLen : (i+1)*blockLen])
		dst[i] = c.positions(&m)
	}
}

func classifyGeneric(block []byte) (m blockMasks) {
	for j, c := range block[:blockLen] {
		k := uint64(classTable[c])
		m.quote |= (k & 1) << j
		m.backslash |= (k >> 1 & 1) << j
		m.op |= (k >> 2 & 1) << j
		m.space |= (k >> 3 & 1) << j
		m.control |= (k >> 4 & 1) << j
		m.nonASCII |= (k >> 5 & 1) << j
	}
	return m
}

const oddBits = 0xaaaaaaaaaaaaaaaa

// prefixXor sets bit i to the parity of the bits 0..i of x: from a mask of
// quotes, the bytes from an opening quote up to its closing one.
func prefixXor(x uint64) uint64 {
	x ^= x << 1
	x ^= x << 2
	x ^= x << 4
	x ^= x << 8
	x ^= x << 16
	x ^= x << 32
	return x
}

// positions turns one block's masks into the positions stage 2 visits,
// without a branch per byte (simdjson's stage 1).
func (c *stage1Carry) positions(m *blockMasks) uint64 {
	// A block inside a long string, with nothing in it that ends or
	// escapes or needs a check, has no position and changes no carry but
	// the non-ASCII one.
	if c.inString != 0 && c.nextEscaped == 0 && m.quote|m.backslash|m.control|m.nonASCII == 0 {
		c.prevNonASCII = 0
		return 0
	}
	// Escapes: a backslash escapes the next byte unless it is itself
	// escaped, so runs of backslashes alternate. The subtraction carries
	// through each run from its start, and comparing with the odd bit
	// positions tells runs starting on odd bytes from those starting on
	// even ones.
	bs := m.backslash
	potential := bs &^ c.nextEscaped
	code := ((potential<<1 | oddBits) - potential) ^ oddBits
	escaped := code ^ (bs | c.nextEscaped)
	escape := code & bs
	c.nextEscaped = escape >> 63

	quote := m.quote &^ escaped
	inString := prefixXor(quote) ^ c.inString // opening quote included, closing quote not
	c.inString = uint64(int64(inString) >> 63)

	outside := ^(inString | quote)
	op := m.op & outside
	scalar := outside &^ (op | m.space)
	scalarStart := scalar &^ (scalar<<1 | c.prevScalar)
	c.prevScalar = scalar >> 63
	nonASCII := m.nonASCII & inString
	nonASCIIStart := nonASCII &^ (nonASCII<<1 | c.prevNonASCII)
	c.prevNonASCII = nonASCII >> 63
	return op | quote | scalarStart | inString&(escape|m.control|nonASCIIStart)
}
