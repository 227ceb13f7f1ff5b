package loadtest

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"512B", 512, true},
		{"512 b", 512, true},
		{"1KiB", 1024, true},
		{"1kib", 1024, true},
		{"10KiB", 10240, true},
		{"1MiB", 1 << 20, true},
		{" 2 MiB ", 2 << 20, true},
		{"256MiB", 256 << 20, true},
		{"1KB", 1000, true},
		{"1kb", 1000, true},
		{"1MB", 1000000, true},
		{"", 0, false},
		{"KiB", 0, false},
		{"1K", 0, false},     // ambiguous: 1000 or 1024
		{"1M", 0, false},     // ambiguous
		{"1.5KiB", 0, false}, // fractions refused
		{"-1", 0, false},     // no signs
		{"+1", 0, false},     // no signs
		{"1GiB", 0, false},   // above MaxSize
		{"257MiB", 0, false}, // above MaxSize
		{"99999999999999999999", 0, false},
		{"1 KiB B", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) error %v does not wrap ErrBadSize", tt.in, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{10 << 10, "10KiB"},
		{1 << 20, "1MiB"},
		{3 << 30, "3GiB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.n); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Header
		ok   bool
	}{
		{"x-mte-upstream: http://127.0.0.1:8081", Header{"x-mte-upstream", "http://127.0.0.1:8081"}, true},
		{"X-Token:abc", Header{"X-Token", "abc"}, true},
		{"X-Empty:", Header{"X-Empty", ""}, true},
		{"X-Tabs:\t a b \t", Header{"X-Tabs", "a b"}, true},
		{"X-Colon: a:b:c", Header{"X-Colon", "a:b:c"}, true},
		{"no colon", Header{}, false},
		{": value", Header{}, false},
		{"X Space: v", Header{}, false},
		{"X-A : v", Header{}, false}, // RFC 9112 §5.1: no space before the colon
		{"X-A: v\r\nX-B: w", Header{}, false},
		{"X-A: v\n", Header{}, false},
		{"X-A: a\x00b", Header{}, false},
		{"X-A: a\x7fb", Header{}, false},
		{"Bad(Name): v", Header{}, false},
	}
	for _, tt := range tests {
		got, err := ParseHeader(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseHeader(%q) = %+v, %v; want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadHeader) {
			t.Errorf("ParseHeader(%q) error %v does not wrap ErrBadHeader", tt.in, err)
		}
	}
}

func TestChecksum(t *testing.T) {
	t.Parallel()
	// Known answer from RFC 3720 §B.4: CRC-32C of 32 zero bytes.
	if got := Checksum(make([]byte, 32)); got != 0x8a9136aa {
		t.Fatalf("Checksum(32 zero bytes) = %08x, want 8a9136aa", got)
	}
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"8a9136aa", 0x8a9136aa, true},
		{"0x8A9136AA", 0x8a9136aa, true},
		{"1", 1, true},
		{"", 0, false},
		{"0x", 0, false},
		{"123456789", 0, false},
		{"zz", 0, false},
		{"-1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseChecksum(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseChecksum(%q) = %x, %v; want %x, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got := FormatChecksum(0xab); got != "000000ab" {
		t.Errorf("FormatChecksum(0xab) = %q", got)
	}
}

func TestBodyIsDeterministicAndPrintable(t *testing.T) {
	t.Parallel()
	a, b := Body(4096), Body(4096)
	if string(a) != string(b) {
		t.Fatal("Body is not deterministic")
	}
	if string(Body(100)) != string(a[:100]) {
		t.Fatal("Body(100) is not a prefix of Body(4096)")
	}
	for i, c := range a {
		if c < '-' || c > 'z' {
			t.Fatalf("Body byte %d = %q is not from the printable alphabet", i, c)
		}
	}
}
