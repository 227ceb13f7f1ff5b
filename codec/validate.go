package codec

// Character classes of RFC 9110 §5.1 and §5.5. The inbound relay rebuilds an
// HTTP request from these fields, so anything that could split or smuggle a
// request (CR, LF, NUL, other controls) is refused here, in the decoder,
// before any byte reaches an upstream.

// tokenChars marks tchar: the characters allowed in methods and field names.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// valueChars marks field-vchar, SP and HTAB: every byte except controls and DEL.
var valueChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 0x20 && c != 0x7f || c == '\t'
	}
	return t
}()

func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// ValidHeaderValue reports whether b may be sent as a header field value.
func ValidHeaderValue(b []byte) bool {
	for _, c := range b {
		if !valueChars[c] {
			return false
		}
	}
	return true
}

// ValidHeaderName reports whether b is a valid header field name.
func ValidHeaderName(b []byte) bool { return validToken(b) }

// ValidMethod reports whether b is a method a request envelope can carry: a
// token of at most MaxMethodLen bytes. The outbound relay checks it before
// sealing, so that an app gets a clear error for what BeginRequest refuses.
func ValidMethod(b []byte) bool { return len(b) <= MaxMethodLen && validToken(b) }

// ValidTarget reports whether b is a request target an envelope can carry:
// origin-form, or the asterisk-form of OPTIONS.
func ValidTarget(b []byte) bool { return validURI(b) }

// validURI accepts origin-form ("/" then no controls, spaces or DEL) and the
// asterisk-form of OPTIONS.
func validURI(b []byte) bool {
	if len(b) == 1 && b[0] == '*' {
		return true
	}
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
