package loadtest

import (
	"strconv"
	"strings"
)

// MaxSize is the largest body size ParseSize accepts. Bodies are held in
// memory once per connection, so a typo such as "1GiB" for "1MiB" must fail
// instead of exhausting memory at 300 connections.
const MaxSize = 256 << 20

// sizeUnits lists the accepted suffixes, matched case-insensitively. The
// binary units (KiB, MiB, GiB) are 1024-based and the decimal ones (KB, MB,
// GB) 1000-based, as IEC 80000-13 defines them. A bare "K" or "M" is
// rejected: half the world reads it as 1000 and half as 1024, and a load test
// whose payload size is off by 2.4 % compares nothing.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"kib", 1 << 10},
	{"mib", 1 << 20},
	{"gib", 1 << 30},
	{"kb", 1000},
	{"mb", 1000 * 1000},
	{"gb", 1000 * 1000 * 1000},
	{"b", 1},
}

// ParseSize decodes a byte count written as a non-negative integer with an
// optional unit: "512", "512B", "1KiB", "10KiB", "1MiB" (1024-based) or
// "1KB", "1MB" (1000-based). Units are case-insensitive; spaces between the
// number and the unit are allowed. Fractions, signs, bare "K"/"M" and sizes
// above MaxSize are rejected with an error wrapping ErrBadSize.
func ParseSize(s string) (int, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, sizeError(s, "empty")
	}
	lower := strings.ToLower(in)
	mult := int64(1)
	num := lower
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			num = strings.TrimSpace(lower[:len(lower)-len(u.suffix)])
			break
		}
	}
	if num == "" {
		return 0, sizeError(s, "missing number")
	}
	if last := num[len(num)-1]; mult == 1 && (last == 'k' || last == 'm' || last == 'g') {
		return 0, sizeError(s, "ambiguous unit: write KiB/MiB/GiB (1024-based) or KB/MB/GB (1000-based)")
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, sizeError(s, "want an integer with an optional unit B, KiB, MiB, GiB, KB, MB or GB")
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > MaxSize/mult {
		return 0, sizeError(s, "larger than 256MiB")
	}
	return int(n * mult), nil
}

// FormatSize writes n the way ParseSize reads it back, using the largest
// binary unit that divides n exactly ("1KiB", "1536B" stays "1536B" rather
// than a rounded "1.5KiB" that ParseSize would refuse).
func FormatSize(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func sizeError(in, why string) error {
	return &inputError{kind: ErrBadSize, input: in, why: why}
}
