package codec

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

// classifyGeneric is classify in pure Go, a byte at a time.
func classifyGeneric(dst []blockMasks, src []byte) {
	for i := range len(src) / blockLen {
		var m blockMasks
		for j, c := range src[i*blockLen : (i+1)*blockLen] {
			k := uint64(classTable[c])
			m.quote |= (k & 1) << j
			m.backslash |= (k >> 1 & 1) << j
			m.op |= (k >> 2 & 1) << j
			m.space |= (k >> 3 & 1) << j
			m.control |= (k >> 4 & 1) << j
			m.nonASCII |= (k >> 5 & 1) << j
		}
		dst[i] = m
	}
}
