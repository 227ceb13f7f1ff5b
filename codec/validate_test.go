package codec

import (
	"strings"
	"testing"
)

// Reference classifiers written from RFC 9110 rather than from the tables
// in validate.go; TestValidatorsEveryByte and the fuzz targets compare them.

// refTchar is RFC 9110 §5.6.2 tchar.
func refTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// refValueByte is RFC 9110 §5.5 field-vchar, obs-text, SP or HTAB: every
// byte but the controls other than HTAB, and DEL.
func refValueByte(c byte) bool {
	return c == '\t' || c == ' ' || 0x21 <= c && c <= 0x7e || c >= 0x80
}

func refHeaderName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !refTchar(c) {
			return false
		}
	}
	return true
}

func refHeaderValue(b []byte) bool {
	for _, c := range b {
		if !refValueByte(c) {
			return false
		}
	}
	return true
}

func TestValidatorsEveryByte(t *testing.T) {
	t.Parallel()
	for i := range 256 {
		c := byte(i)
		one := []byte{c}
		if got, want := ValidHeaderName(one), refTchar(c); got != want {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", c, got, want)
		}
		if got, want := ValidHeaderValue(one), refValueByte(c); got != want {
			t.Errorf("ValidHeaderValue(%q) = %v, want %v", c, got, want)
		}
		wantURI := c > ' ' && c != 0x7f
		if got := validURI([]byte{'/', c}); got != wantURI {
			t.Errorf("validURI(%q) = %v, want %v", "/"+string(c), got, wantURI)
		}
	}
	if ValidHeaderName(nil) {
		t.Error("empty header name accepted")
	}
	if !ValidHeaderValue(nil) {
		t.Error("empty header value refused")
	}
	for _, tt := range []struct {
		uri  string
		want bool
	}{
		{"/", true}, {"*", true}, {"/a?b=c#d", true}, {"//x/y", true},
		{"", false}, {"**", false}, {"a", false}, {"http://h/", false}, {"/ ", false},
	} {
		if got := validURI([]byte(tt.uri)); got != tt.want {
			t.Errorf("validURI(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}
