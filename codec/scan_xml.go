package codec

import (
	"bytes"
	"hash/maphash"
	"unicode/utf8"
)

// ScanXML checks that body is a well-formed XML 1.0 document in UTF-8 within
// lim, as far as the limits need: elements and their nesting, end tags
// matching start tags, attributes, text and references, comments, CDATA
// sections and processing instructions. A DOCTYPE is always refused: it is
// how entities get declared, so refusing it rules out entity expansion
// ("billion laughs") and external entities (XXE) whatever parser the
// upstream uses. It allocates nothing.
//
// A start tag that names an attribute twice is refused (XML 1.0 §3.1,
// Unique Att Spec): parsers disagree on which value wins, so the relay and
// the upstream could read different documents. Names are compared as
// written: two prefixes bound to the same namespace are not resolved.
// Entity references other than the five predefined ones are refused:
// without a DOCTYPE none is declared. Only UTF-8 is read, whatever the XML
// declaration says.
func ScanXML(body []byte, lim XMLLimits) ScanResult {
	var s xmlScanner
	s.buf = body
	s.maxDepth = min(effective(lim.MaxDepth), MaxNesting)
	s.maxDepthLimit = lim.MaxDepth
	if lim.MaxDepth <= 0 || lim.MaxDepth > MaxNesting {
		s.maxDepthLimit = MaxNesting
	}
	s.maxChildren = effective(lim.MaxChildren)
	s.maxAttributes = min(effective(lim.MaxAttributes), MaxElementAttributes)
	s.maxAttributesLimit = lim.MaxAttributes
	if lim.MaxAttributes <= 0 || lim.MaxAttributes > MaxElementAttributes {
		s.maxAttributesLimit = MaxElementAttributes
	}
	s.maxName = effective(lim.MaxNameLength)
	s.maxText = effective(lim.MaxTextLength)
	s.maxAttribute = effective(lim.MaxAttributeLength)
	if len(body) > MaxScanLen {
		s.res.Verdict, s.res.Offset, s.res.Reason = Malformed, MaxScanLen, "body too large to scan"
		return s.res
	}
	s.parse()
	return s.res
}

type xmlScanner struct {
	buf []byte
	res ScanResult

	maxDepth, maxDepthLimit                                    int
	maxChildren, maxAttributes, maxName, maxText, maxAttribute int
	maxAttributesLimit                                         int

	depth    int
	open     [MaxNesting + 1]struct{ name, n uint32 } // the name of the open element at each depth
	children [MaxNesting + 1]int32
	rootDone bool
}

// Byte classes in text and attribute values.
const (
	xmlPlain    = iota // no role; not whitespace
	xmlBlank           // SP, HT, LF, CR
	xmlSpecial         // '<', '&', '>', ']' and quotes: the caller looks
	xmlControl         // a control byte, never allowed
	xmlNonASCII        // the first byte of a UTF-8 sequence to check
)

var xmlClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			t[c] = xmlBlank
		case c == '<' || c == '&' || c == '>' || c == ']' || c == '"' || c == '\'':
			t[c] = xmlSpecial
		case c < 0x20:
			t[c] = xmlControl
		case c >= 0x80:
			t[c] = xmlNonASCII
		}
	}
	return t
}()

// nameChars: 1 where a byte may start a name, 2 where it may only continue
// one (XML 1.0 §2.3, ASCII part).
var nameChars = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == ':', c >= 0x80:
			t[c] = 1
		case '0' <= c && c <= '9', c == '-', c == '.':
			t[c] = 2
		}
	}
	return t
}()

// nameRune reports whether the non-ASCII r may start a name (first) or
// continue one: NameStartChar and NameChar of XML 1.0 §2.3.
func nameRune(r rune, first bool) bool {
	switch {
	case 0xc0 <= r && r <= 0xd6, 0xd8 <= r && r <= 0xf6, 0xf8 <= r && r <= 0x2ff,
		0x370 <= r && r <= 0x37d, 0x37f <= r && r <= 0x1fff, 0x200c <= r && r <= 0x200d,
		0x2070 <= r && r <= 0x218f, 0x2c00 <= r && r <= 0x2fef, 0x3001 <= r && r <= 0xd7ff,
		0xf900 <= r && r <= 0xfdcf, 0xfdf0 <= r && r <= 0xfffd, 0x10000 <= r && r <= 0xeffff:
		return true
	}
	return !first && (r == 0xb7 || 0x300 <= r && r <= 0x36f || 0x203f <= r && r <= 0x2040)
}

func (s *xmlScanner) malformed(p int, reason string) {
	if p >= len(s.buf) {
		p, reason = len(s.buf), "unexpected end of XML"
	}
	s.res.Verdict, s.res.Offset, s.res.Reason = Malformed, p, reason
}

func (s *xmlScanner) exceeded(v Verdict, p, limit int) {
	s.res.Verdict, s.res.Offset, s.res.Limit = v, p, limit
}

func (s *xmlScanner) at(p int) byte {
	if p >= len(s.buf) {
		return 0
	}
	return s.buf[p]
}

func (s *xmlScanner) hasPrefix(p int, prefix string) bool {
	return len(s.buf)-p >= len(prefix) && string(s.buf[p:p+len(prefix)]) == prefix
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *xmlScanner) skipSpace(p int) int {
	for p < len(s.buf) && isXMLSpace(s.buf[p]) {
		p++
	}
	return p
}

// rune checks the UTF-8 sequence at p is an XML Char (§2.2) and returns its
// length, or 0 after reporting it.
func (s *xmlScanner) rune(p int) int {
	r, size := utf8.DecodeRune(s.buf[p:])
	if r == utf8.RuneError && size == 1 || r == 0xfffe || r == 0xffff {
		s.malformed(p, "invalid UTF-8 or character")
		return 0
	}
	return size
}

// child counts a node of the element at the current depth, starting at p.
func (s *xmlScanner) child(p int) bool {
	if s.depth == 0 {
		return true
	}
	s.children[s.depth]++
	n := int(s.children[s.depth])
	s.res.Children = max(s.res.Children, n)
	if n > s.maxChildren {
		s.exceeded(ChildrenExceeded, p, s.maxChildren)
		return false
	}
	return true
}

func (s *xmlScanner) parse() {
	b := s.buf
	p := 0
	if s.hasPrefix(0, "\xef\xbb\xbf") {
		p = 3
	}
	if s.hasPrefix(p, "<?xml") && isXMLSpace(s.at(p+5)) {
		if p = s.chars(p+5, "?>"); p < 0 {
			return
		}
	}
	for {
		// Text up to the next markup.
		start, blank := p, uint8(xmlBlank)
		for p < len(b) {
			k := xmlClass[b[p]]
			if k <= xmlBlank {
				blank &= k
				p++
				continue
			}
			c := b[p]
			if c == '<' {
				break
			}
			blank = 0
			switch {
			case c == '&':
				if p = s.reference(p); p < 0 {
					return
				}
			case c == '>':
				if p >= 2 && b[p-1] == ']' && b[p-2] == ']' && p-2 >= start {
					s.malformed(p-2, "']]>' in text")
					return
				}
				p++
			case k == xmlControl:
				s.malformed(p, "control character")
				return
			case k == xmlNonASCII:
				n := s.rune(p)
				if n == 0 {
					return
				}
				p += n
			default:
				p++
			}
		}
		if !s.text(start, p, blank != 0) {
			return
		}
		if p >= len(b) {
			break
		}
		switch s.at(p + 1) {
		case '/':
			p = s.endTag(p)
		case '?':
			p = s.pi(p)
		case '!':
			p = s.bang(p)
		default:
			p = s.startTag(p)
		}
		if p < 0 {
			return
		}
	}
	switch {
	case s.depth > 0:
		s.malformed(len(b), "unclosed element")
	case !s.rootDone:
		s.malformed(len(b), "no root element")
	}
}

// text checks the text run b[start:end].
func (s *xmlScanner) text(start, end int, blank bool) bool {
	if end == start {
		return true
	}
	n := end - start
	s.res.StringLength = max(s.res.StringLength, n)
	if n > s.maxText {
		s.exceeded(TextLengthExceeded, start, s.maxText)
		return false
	}
	if blank {
		return true
	}
	if s.depth == 0 {
		s.malformed(start, "text outside the root element")
		return false
	}
	return s.child(start)
}

// reference checks the entity or character reference at p ('&') and
// returns the offset after its ';', or -1.
func (s *xmlScanner) reference(p int) int {
	b := s.buf
	i := p + 1
	if s.at(i) == '#' {
		i++
		base, r, digits := rune(10), rune(0), 0
		if s.at(i) == 'x' {
			base, i = 16, i+1
		}
		for ; i < len(b); i++ {
			c, d := b[i], rune(-1)
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			}
			if d < 0 {
				break
			}
			digits++
			r = min(r*base+d, utf8.MaxRune+1)
		}
		valid := r == 0x9 || r == 0xa || r == 0xd || 0x20 <= r && r <= 0xd7ff ||
			0xe000 <= r && r <= 0xfffd || 0x10000 <= r && r <= utf8.MaxRune
		if digits == 0 || s.at(i) != ';' || !valid {
			s.malformed(p, "invalid character reference")
			return -1
		}
		return i + 1
	}
	for _, name := range [...]string{"lt;", "gt;", "amp;", "apos;", "quot;"} {
		if s.hasPrefix(i, name) {
			return i + len(name)
		}
	}
	s.malformed(p, "undeclared entity reference")
	return -1
}

// name checks the name at p and returns its end, or -1.
func (s *xmlScanner) name(p int) int {
	b := s.buf
	if p >= len(b) || nameChars[b[p]] != 1 {
		s.malformed(p, "expected a name")
		return -1
	}
	i := p
	for i < len(b) && nameChars[b[i]] != 0 {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			s.malformed(i, "invalid UTF-8 or character")
			return -1
		}
		if !nameRune(r, i == p) {
			if i == p {
				s.malformed(p, "expected a name")
				return -1
			}
			break
		}
		i += n
	}
	s.res.NameLength = max(s.res.NameLength, i-p)
	if i-p > s.maxName {
		s.exceeded(NameLengthExceeded, p, s.maxName)
		return -1
	}
	// Namespaces in XML: a name is a local part with at most one prefix,
	// neither empty. Namespace-aware parsers refuse any other use of ':'
	// and others read it each their own way.
	if k := bytes.IndexByte(b[p:i], ':'); k >= 0 {
		colon := p + k
		if second := bytes.IndexByte(b[colon+1:i], ':'); second >= 0 {
			colon += 1 + second
		} else if colon != p && colon != i-1 {
			return i
		}
		s.malformed(colon, "':' in a name other than between a prefix and a local part")
		return -1
	}
	return i
}

// chars checks Chars from p up to the terminator and returns the offset
// after it, or -1.
func (s *xmlScanner) chars(p int, terminator string) int {
	b := s.buf
	for p < len(b) {
		c := b[p]
		if c == terminator[0] && s.hasPrefix(p, terminator) {
			return p + len(terminator)
		}
		switch xmlClass[c] {
		case xmlControl:
			s.malformed(p, "control character")
			return -1
		case xmlNonASCII:
			n := s.rune(p)
			if n == 0 {
				return -1
			}
			p += n
		default:
			p++
		}
	}
	s.malformed(p, "unterminated markup")
	return -1
}

// startTag checks the start tag or empty-element tag at p ('<').
func (s *xmlScanner) startTag(p int) int {
	if s.rootDone && s.depth == 0 {
		s.malformed(p, "content after the root element")
		return -1
	}
	if !s.child(p) {
		return -1
	}
	if s.depth >= s.maxDepth {
		s.exceeded(DepthExceeded, p, s.maxDepthLimit)
		return -1
	}
	end := s.name(p + 1)
	if end < 0 {
		return -1
	}
	s.depth++
	s.res.Depth = max(s.res.Depth, s.depth)
	s.open[s.depth] = struct{ name, n uint32 }{uint32(p + 1), uint32(end - p - 1)}
	s.children[s.depth] = 0
	if next := s.attributes(end, nil); next != retryWithTable {
		return next
	}
	return s.manyAttributes(end)
}

// fewAttributes is how many attributes of one element attributes compares
// with each other directly; an element with more has them looked up in an
// attributeTable instead, so that the work stays linear in their number.
const fewAttributes = 16

// retryWithTable is what attributes returns, without a table, at an
// element's (fewAttributes+1)th attribute.
const retryWithTable = -2

// attributes checks the attributes of a start tag, from i (the end of the
// element's name) to the end of the tag, and returns the offset after the
// tag, or -1. Without a table it compares each name with the ones before
// it; with one it looks each up in it. Running it again from the same i
// with a table repeats the same checks, so the second run refuses exactly
// what the first would have.
func (s *xmlScanner) attributes(i int, table *attributeTable) int {
	var few [fewAttributes]struct{ start, n uint32 }
	b := s.buf
	attributes := 0
	for {
		j := s.skipSpace(i)
		switch s.at(j) {
		case '>':
			return j + 1
		case '/':
			if s.at(j+1) != '>' {
				s.malformed(j+1, "expected '>'")
				return -1
			}
			s.depth--
			s.rootDone = s.depth == 0
			return j + 2
		}
		if j == i {
			s.malformed(j, "expected whitespace, '>' or '/>'")
			return -1
		}
		attributes++
		s.res.Attributes = max(s.res.Attributes, attributes)
		if attributes > s.maxAttributes {
			s.exceeded(AttributesExceeded, j, s.maxAttributesLimit)
			return -1
		}
		if table == nil && attributes > fewAttributes {
			return retryWithTable
		}
		nameStart := j
		if j = s.name(j); j < 0 {
			return -1
		}
		unique := true
		if table != nil {
			unique = table.add(b, nameStart, j)
		} else {
			name := b[nameStart:j]
			for _, o := range few[:attributes-1] {
				if string(b[o.start:o.start+o.n]) == string(name) {
					unique = false
					break
				}
			}
			few[attributes-1].start, few[attributes-1].n = uint32(nameStart), uint32(j-nameStart)
		}
		if !unique {
			s.malformed(nameStart, "attribute given twice in one start tag")
			return -1
		}
		if j = s.skipSpace(j); s.at(j) != '=' {
			s.malformed(j, "expected '='")
			return -1
		}
		j = s.skipSpace(j + 1)
		quote := s.at(j)
		if quote != '"' && quote != '\'' {
			s.malformed(j, "expected a quoted attribute value")
			return -1
		}
		open := j
		for j++; ; {
			if j >= len(b) {
				s.malformed(j, "unterminated attribute value")
				return -1
			}
			c := b[j]
			if c == quote {
				break
			}
			switch k := xmlClass[c]; {
			case c == '<':
				s.malformed(j, "'<' in attribute value")
				return -1
			case c == '&':
				if j = s.reference(j); j < 0 {
					return -1
				}
			case k == xmlControl:
				s.malformed(j, "control character")
				return -1
			case k == xmlNonASCII:
				n := s.rune(j)
				if n == 0 {
					return -1
				}
				j += n
			default:
				j++
			}
		}
		n := j - open - 1
		s.res.AttributeLength = max(s.res.AttributeLength, n)
		if n > s.maxAttribute {
			s.exceeded(AttributeLengthExceeded, open, s.maxAttribute)
			return -1
		}
		i = j + 1
	}
}

// manyAttributes is attributes with a table, in a frame of its own so that
// only elements with more than fewAttributes attributes pay for clearing
// one.
func (s *xmlScanner) manyAttributes(i int) int {
	var table attributeTable
	return s.attributes(i, &table)
}

// attributeTable holds the names of one element's attributes, open
// addressing at most half full: MaxElementAttributes bounds what goes in.
// The hash is seeded at random per process, so a body cannot be built to
// make its names collide; names with equal hashes are still compared byte
// for byte.
type attributeTable struct {
	slots [2 * MaxElementAttributes]struct {
		hash     uint64
		start, n uint32 // n == 0: empty, since no name is
	}
}

var attributeSeed = maphash.MakeSeed()

// add records the name b[start:end] and reports whether it was not there
// yet.
func (t *attributeTable) add(b []byte, start, end int) bool {
	name := b[start:end]
	h := maphash.Bytes(attributeSeed, name)
	for i := h; ; i++ {
		slot := &t.slots[i%uint64(len(t.slots))]
		switch {
		case slot.n == 0:
			slot.hash, slot.start, slot.n = h, uint32(start), uint32(end-start)
			return true
		case slot.hash == h && string(b[slot.start:slot.start+slot.n]) == string(name):
			return false
		}
	}
}

// endTag checks the end tag at p ("</") against the open element.
func (s *xmlScanner) endTag(p int) int {
	if s.depth == 0 {
		s.malformed(p, "end tag without a start tag")
		return -1
	}
	end := s.name(p + 2)
	if end < 0 {
		return -1
	}
	o := s.open[s.depth]
	if string(s.buf[p+2:end]) != string(s.buf[o.name:o.name+o.n]) {
		s.malformed(p+2, "end tag does not match its start tag")
		return -1
	}
	if end = s.skipSpace(end); s.at(end) != '>' {
		s.malformed(end, "expected '>'")
		return -1
	}
	s.depth--
	s.rootDone = s.depth == 0
	return end + 1
}

// pi checks the processing instruction at p ("<?").
func (s *xmlScanner) pi(p int) int {
	end := s.name(p + 2)
	if end < 0 {
		return -1
	}
	if t := s.buf[p+2 : end]; len(t) == 3 && t[0]|0x20 == 'x' && t[1]|0x20 == 'm' && t[2]|0x20 == 'l' {
		s.malformed(p, "XML declaration not at the start")
		return -1
	}
	if !s.child(p) {
		return -1
	}
	if !s.hasPrefix(end, "?>") && !isXMLSpace(s.at(end)) {
		s.malformed(end, "expected whitespace or '?>'")
		return -1
	}
	return s.chars(end, "?>")
}

// bang checks what starts at p with "<!": a comment, a CDATA section, or a
// DOCTYPE, which is refused.
func (s *xmlScanner) bang(p int) int {
	switch {
	case s.hasPrefix(p, "<!--"):
		if !s.child(p) {
			return -1
		}
		j := s.chars(p+4, "--")
		if j < 0 {
			return -1
		}
		if s.at(j) != '>' {
			s.malformed(j-2, "'--' in comment")
			return -1
		}
		return j + 1
	case s.hasPrefix(p, "<![CDATA["):
		if s.depth == 0 {
			s.malformed(p, "CDATA section outside the root element")
			return -1
		}
		if !s.child(p) {
			return -1
		}
		j := s.chars(p+9, "]]>")
		if j < 0 {
			return -1
		}
		n := j - 3 - (p + 9)
		s.res.StringLength = max(s.res.StringLength, n)
		if n > s.maxText {
			s.exceeded(TextLengthExceeded, p, s.maxText)
			return -1
		}
		return j
	case s.hasPrefix(p, "<!DOCTYPE"):
		s.res.Verdict, s.res.Offset, s.res.Reason = DoctypeRefused, p, "DOCTYPE"
		return -1
	}
	s.malformed(p, "unknown markup declaration")
	return -1
}
