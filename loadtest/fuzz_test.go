package loadtest

import (
	"strings"
	"testing"
)

// FuzzParseSize: ParseSize decodes user input; whatever it accepts must be
// in range and survive a FormatSize round trip.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "1KiB", "10KiB", "1MiB", "1KB", "1 mb", "1K", "-1", "1.5KiB", "256MiB", "99999999999999999999GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseSize(%q) returned %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 || n > MaxSize {
			t.Fatalf("ParseSize(%q) = %d, outside 0..MaxSize", s, n)
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("FormatSize(%d) = %q parses back as %d, %v", n, FormatSize(n), back, err)
		}
	})
}

// FuzzParseHeader: whatever ParseHeader accepts must be safe to write into
// a request verbatim and must survive a String round trip.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"x-mte-upstream: http://127.0.0.1:8081",
		"x-mte-outbound-token: 0123456789abcdef",
		"X:", "a:b:c", ": v", "X-A: v\r\nX-B: w", "X\t: v", "X: \x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHeader(s)
		if err != nil {
			return
		}
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n:\x00") {
			t.Fatalf("ParseHeader(%q) accepted name %q", s, h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n\x00") || strings.Trim(h.Value, " \t") != h.Value {
			t.Fatalf("ParseHeader(%q) accepted value %q", s, h.Value)
		}
		back, err := ParseHeader(h.String())
		if err != nil || back != h {
			t.Fatalf("ParseHeader(%q) = %+v; String %q parses back as %+v, %v", s, h, h.String(), back, err)
		}
	})
}
