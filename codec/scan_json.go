package codec

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// ScanJSON checks that body is one JSON text (RFC 8259: the grammar, and
// UTF-8 throughout) within lim. It allocates nothing.
//
// Stage 1 (findPositions: AVX2 or its twin) classifies 64-byte blocks and
// turns the classes into the positions stage 2 must look at with
// branch-free bit arithmetic (simdjson's technique): which quotes are
// escaped, which bytes lie inside strings, where scalars start. Stage 2
// walks those positions with a state machine; it reads the bytes of
// numbers, literals, escapes and non-ASCII runs itself, and jumps over
// everything else.
func ScanJSON(body []byte, lim JSONLimits) ScanResult {
	var s jsonScanner
	s.buf = body
	s.maxDepth = min(effective(lim.MaxDepth), MaxNesting)
	s.maxDepthLimit = lim.MaxDepth
	if lim.MaxDepth <= 0 || lim.MaxDepth > MaxNesting {
		s.maxDepthLimit = MaxNesting
	}
	s.maxElements = effective(lim.MaxArrayElements)
	s.maxEntries = effective(lim.MaxObjectEntries)
	s.maxName = effective(lim.MaxNameLength)
	s.maxString = effective(lim.MaxStringLength)
	if len(body) > MaxScanLen {
		s.malformed(MaxScanLen, "body too large to scan")
		return s.res
	}
	s.parse()
	return s.res
}

// chunkBlocks is how many blocks stage 1 does per call: enough to amortise
// the call, small enough to stay in L1 beside the body.
const chunkBlocks = 16

type jsonScanner struct {
	buf []byte
	res ScanResult

	maxDepth, maxDepthLimit                     int
	maxElements, maxEntries, maxName, maxString int

	depth    int
	isObject [MaxNesting/64 + 1]uint64 // bit d: the container at depth d is an object
	members  [MaxNesting + 1]int32     // elements or entries so far of the container at depth d

	// Stage 1: the positions of the chunk being walked.
	positions  [chunkBlocks]uint64
	blocks     int // positions filled
	block      int // next block to walk
	chunkStart int // offset of positions[0]'s block
	found      int // bytes stage 1 has done so far
	carry      stage1Carry
}

// refill returns the positions of the next block that has any, bit i for
// offset base+i, running stage 1 over the next chunk when the current one
// is used up; at the end of the body, the one position len(s.buf).
func (s *jsonScanner) refill() (positions uint64, base int) {
	for {
		if s.block == s.blocks {
			n := len(s.buf)
			whole := n &^ (blockLen - 1)
			switch {
			case s.found < whole:
				end := min(s.found+chunkBlocks*blockLen, whole)
				findPositions(s.positions[:], s.buf[s.found:end], &s.carry)
				s.blocks = (end - s.found) / blockLen
			case s.found < n:
				// Spaces are whitespace outside strings and plain bytes
				// inside them, so padding adds no position.
				tail := [blockLen]byte{}
				for i := copy(tail[:], s.buf[whole:]); i < blockLen; i++ {
					tail[i] = ' '
				}
				findPositions(s.positions[:1], tail[:], &s.carry)
				s.blocks = 1
			default:
				return 1, n
			}
			s.chunkStart, s.block = s.found, 0
			s.found += s.blocks * blockLen
		}
		base = s.chunkStart + s.block*blockLen
		positions = s.positions[s.block]
		s.block++
		if positions != 0 {
			return positions, base
		}
	}
}

// at is the byte at position p, 0 (which no rule accepts) at the end.
func (s *jsonScanner) at(p int) byte {
	if uint(p) < uint(len(s.buf)) { // one comparison, and no bounds check after it
		return s.buf[p]
	}
	return 0
}

func (s *jsonScanner) malformed(p int, reason string) {
	if p >= len(s.buf) {
		reason = "unexpected end of JSON"
	}
	s.res.Verdict, s.res.Offset, s.res.Reason = Malformed, p, reason
}

func (s *jsonScanner) exceeded(v Verdict, p, limit int) {
	s.res.Verdict, s.res.Offset, s.res.Limit = v, p, limit
}

func (s *jsonScanner) isObjectAt(depth int) bool {
	return s.isObject[depth/64]>>(depth%64)&1 != 0
}

// parse is stage 2, a state machine whose state is where the code is: each
// label expects what may come next at that point of the grammar. The
// current block's positions live in locals so that they stay in registers;
// every "next position" is written out as
//
//	if pos == 0 {
//		pos, base = s.refill()
//	}
//	p = base + bits.TrailingZeros64(pos)
//	pos &= pos - 1
//
// because a helper method that may call refill is too big to inline.
func (s *jsonScanner) parse() {
	var (
		pos             uint64
		base, p, n      int
		c               byte
		name            bool // the string being walked is an entry's name
		object          bool // the innermost open container is an object
		start, saved, k int  // the string's quote, what its escapes save
		pair            bool
	)
	pos, base = s.refill()
	p = base + bits.TrailingZeros64(pos)
	pos &= pos - 1

value: // p is the first byte of a value
	switch c = s.at(p); c {
	case '{', '[':
		if s.depth >= s.maxDepth {
			s.exceeded(DepthExceeded, p, s.maxDepthLimit)
			return
		}
		s.depth++
		s.res.Depth = max(s.res.Depth, s.depth)
		s.members[s.depth] = 0
		word, bit := s.depth/64, uint64(1)<<(s.depth%64)
		if pos == 0 {
			pos, base = s.refill()
		}
		p = base + bits.TrailingZeros64(pos)
		pos &= pos - 1
		if c == '{' {
			s.isObject[word] |= bit
			object = true
			if s.at(p) == '}' {
				goto closed
			}
			goto entry
		}
		s.isObject[word] &^= bit
		object = false
		if s.at(p) == ']' {
			goto closed
		}
		goto element
	case '"':
		name = false
		goto str
	case ']', '}', ':', ',', 0:
		s.malformed(p, "expected a value")
		return
	}
	if !s.scalar(p) {
		return
	}
	goto afterValue

element: // p is the first byte of an array element
	s.members[s.depth]++
	n = int(s.members[s.depth])
	s.res.ArrayElements = max(s.res.ArrayElements, n)
	if n > s.maxElements {
		s.exceeded(ArrayElementsExceeded, p, s.maxElements)
		return
	}
	goto value

entry: // p is the opening quote of an entry's name
	if s.at(p) != '"' {
		s.malformed(p, "expected a string for an entry name")
		return
	}
	s.members[s.depth]++
	n = int(s.members[s.depth])
	s.res.ObjectEntries = max(s.res.ObjectEntries, n)
	if n > s.maxEntries {
		s.exceeded(ObjectEntriesExceeded, p, s.maxEntries)
		return
	}
	name = true

str: // p is a string's opening quote: walk to its closing quote, checking
	// escapes, control bytes, UTF-8 and the length after unescaping.
	start, saved = p, 0
strNext:
	if pos == 0 {
		pos, base = s.refill()
	}
	p = base + bits.TrailingZeros64(pos)
	pos &= pos - 1
	switch c = s.at(p); {
	case c == '"':
		n = p - start - 1 - saved
		if name {
			s.res.NameLength = max(s.res.NameLength, n)
			if n > s.maxName {
				s.exceeded(NameLengthExceeded, start, s.maxName)
				return
			}
			goto colon
		}
		s.res.StringLength = max(s.res.StringLength, n)
		if n > s.maxString {
			s.exceeded(StringLengthExceeded, start, s.maxString)
			return
		}
		goto afterValue
	case c == '\\':
		if k, pair = s.escape(p); k < 0 {
			return
		}
		saved += k
		if pair { // skip the low surrogate's backslash, the next position
			if pos == 0 {
				pos, base = s.refill()
			}
			pos &= pos - 1
		}
		goto strNext
	case p >= len(s.buf):
		s.malformed(p, "unterminated string")
		return
	case c < 0x20:
		s.malformed(p, "control character in string")
		return
	}
	if !s.nonASCII(p) {
		return
	}
	goto strNext

colon:
	if pos == 0 {
		pos, base = s.refill()
	}
	p = base + bits.TrailingZeros64(pos)
	pos &= pos - 1
	if s.at(p) != ':' {
		s.malformed(p, "expected ':' after an entry name")
		return
	}
	if pos == 0 {
		pos, base = s.refill()
	}
	p = base + bits.TrailingZeros64(pos)
	pos &= pos - 1
	goto value

closed: // the container at s.depth has just closed
	s.depth--
	object = s.isObjectAt(s.depth)

afterValue:
	if pos == 0 {
		pos, base = s.refill()
	}
	p = base + bits.TrailingZeros64(pos)
	pos &= pos - 1
	if s.depth == 0 {
		if p < len(s.buf) {
			s.malformed(p, "data after the top-level value")
		}
		return
	}
	c = s.at(p)
	if object {
		switch c {
		case ',':
			if pos == 0 {
				pos, base = s.refill()
			}
			p = base + bits.TrailingZeros64(pos)
			pos &= pos - 1
			goto entry
		case '}':
			goto closed
		}
		s.malformed(p, "expected ',' or '}'")
		return
	}
	switch c {
	case ',':
		if pos == 0 {
			pos, base = s.refill()
		}
		p = base + bits.TrailingZeros64(pos)
		pos &= pos - 1
		goto element
	case ']':
		goto closed
	}
	s.malformed(p, "expected ',' or ']'")
}

// scalar checks the literal or number at p and that a delimiter follows it.
func (s *jsonScanner) scalar(p int) bool {
	end, bad := scanScalar(s.buf, p)
	if bad < 0 && end < len(s.buf) && classTable[s.buf[end]]&(classOp|classSpace) == 0 {
		bad = end
	}
	if bad >= 0 {
		s.malformed(bad, "invalid literal or number")
		return false
	}
	return true
}

// escape checks the escape sequence at p and returns how many bytes
// unescaping saves (-1 when malformed) and whether it is a surrogate pair
// that includes the escape after it. Unpaired surrogates are grammatical
// (RFC 8259 §8.2) and decode to U+FFFD, as encoding/json decodes them.
func (s *jsonScanner) escape(p int) (saved int, pair bool) {
	b := s.buf
	if p+1 >= len(b) {
		s.malformed(len(b), "unterminated string")
		return -1, false
	}
	switch b[p+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1, false
	case 'u':
	default:
		s.malformed(p+1, "invalid escape")
		return -1, false
	}
	r, bad := hex4(b, p+2)
	if bad >= 0 {
		s.malformed(bad, "invalid \\u escape")
		return -1, false
	}
	switch {
	case r < 0x80:
		return 5, false
	case r < 0x800:
		return 4, false
	case r >= 0xd800 && r < 0xdc00 && p+11 < len(b) && b[p+6] == '\\' && b[p+7] == 'u':
		if r2, bad := hex4(b, p+8); bad < 0 && r2 >= 0xdc00 && r2 < 0xe000 {
			return 12 - 4, true
		}
	}
	return 3, false
}

// hex4 decodes four hex digits at b[p:], or returns the offset of the first
// byte that is not one.
func hex4(b []byte, p int) (r rune, bad int) {
	for i := p; i < p+4; i++ {
		if i >= len(b) {
			return 0, len(b)
		}
		c := b[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, i
		}
		r = r<<4 | rune(c)
	}
	return r, -1
}

// nonASCII checks the run of non-ASCII bytes at p is UTF-8; the run cannot
// hold an ASCII byte, so stage 1 marks only its first byte.
func (s *jsonScanner) nonASCII(p int) bool {
	b := s.buf
	for i := p; i < len(b) && b[i] >= utf8.RuneSelf; {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			s.malformed(i, "invalid UTF-8")
			return false
		}
		i += size
	}
	return true
}

// scanScalar checks the literal or number at b[p:] (RFC 8259 §3, §6) and
// returns where it ends, or the offset of the first byte that breaks it.
func scanScalar(b []byte, p int) (end, bad int) {
	switch b[p] {
	case 't':
		return literal(b, p, "true")
	case 'f':
		return literal(b, p, "false")
	case 'n':
		return literal(b, p, "null")
	}
	i := p
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, i
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, i
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, i
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, i
		}
		i = digits(b, i+1)
	}
	return i, -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits returns the end of the run of ASCII digits at b[i:], eight bytes
// at a time: a byte is a digit when its high nibble is 3 both as it is and
// after adding 6 (which lifts ':' to '?' onward past 0x3f). A carry out of
// a non-digit byte can only spoil the bytes above it, and only the lowest
// non-digit counts.
func digits(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		const high, three, six = 0xf0f0f0f0f0f0f0f0, 0x3030303030303030, 0x0606060606060606
		if nonDigit := (v&high ^ three) | ((v+six)&high ^ three); nonDigit != 0 {
			return i + bits.TrailingZeros64(nonDigit)/8
		}
	}
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func literal(b []byte, p int, word string) (end, bad int) {
	for i := range len(word) {
		if p+i >= len(b) || b[p+i] != word[i] {
			return 0, p + i
		}
	}
	return p + len(word), -1
}
