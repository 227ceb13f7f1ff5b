package loadtest

import (
	"hash/crc32"
	"strconv"
)

// bodyAlphabet is printable so the body survives any relay, logger or JSON
// wrapper that mangles control bytes, and 64 long so one PRNG byte maps to
// one character without bias.
const bodyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// castagnoli is the CRC-32C table; Go computes it with the SSE4.2 CRC32
// instruction on amd64, so verifying a 1 MiB body costs microseconds.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Body returns the deterministic payload of size bytes that the bundled
// upstream answers with and that the loader sends. Every call returns the
// same bytes for the same size, so a loader can check a response it never
// saw being produced. The bytes come from a fixed-seed xorshift generator
// rather than a repeated phrase, so a relay that drops or reorders a block
// changes the checksum.
func Body(size int) []byte {
	b := make([]byte, size)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = bodyAlphabet[x&63]
	}
	return b
}

// Checksum is the CRC-32C (Castagnoli) of b, the checksum Config.Verify
// compares and the upstream command prints. It is an integrity check against
// truncation and corruption, not a MAC.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// FormatChecksum writes c as the 8 lower-case hex digits ParseChecksum reads.
func FormatChecksum(c uint32) string {
	s := strconv.FormatUint(uint64(c), 16)
	for len(s) < 8 {
		s = "0" + s
	}
	return s
}

// ParseChecksum reads a CRC-32C written as 1 to 8 hex digits, with an
// optional "0x" prefix.
func ParseChecksum(s string) (uint32, error) {
	t := s
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	if t == "" || len(t) > 8 {
		return 0, &inputError{kind: ErrBadChecksum, input: s, why: "want 8 hex digits of a CRC-32C"}
	}
	v, err := strconv.ParseUint(t, 16, 32)
	if err != nil {
		return 0, &inputError{kind: ErrBadChecksum, input: s, why: "want 8 hex digits of a CRC-32C"}
	}
	return uint32(v), nil
}
