package loadtest

import "strings"

// Header is one request header field added to every request of a run.
type Header struct {
	Name  string
	Value string
}

// ParseHeader decodes "Name: value" as written on a command line (curl and
// wrk use the same form). The name must be an RFC 9110 §5.6.2 token; the
// value loses its surrounding whitespace (RFC 9112 §5.1 optional whitespace)
// and may be empty. Control characters other than HTAB are refused (RFC
// 9110 §5.5 field-vchar): the header is written verbatim into every request,
// so a CR or LF would let a command line smuggle a second header or request.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return Header{}, headerError(s, `want "Name: value"`)
	}
	if name == "" {
		return Header{}, headerError(s, "empty name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return Header{}, headerError(s, "name is not an HTTP token (no spaces or separators before the colon)")
		}
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return Header{}, headerError(s, "value holds a control character (CR, LF, NUL, ...)")
		}
	}
	return Header{Name: name, Value: value}, nil
}

// String writes h back in the form ParseHeader reads.
func (h Header) String() string { return h.Name + ": " + h.Value }

// isTokenChar reports whether c is a tchar of RFC 9110 §5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func headerError(in, why string) error {
	return &inputError{kind: ErrBadHeader, input: in, why: why}
}
