package codec

import (
	"encoding/json"
	"strings"
	"testing"
)

// forEachKernel runs f once per stage-1 implementation: the twin, and the
// assembly where the CPU has it.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	for _, k := range kernels(t) {
		t.Run(k.name, func(t *testing.T) {
			defer k.off()()
			f(t)
		})
	}
}

func TestScanJSON(t *testing.T) {
	long := strings.Repeat("a", 100)
	pad := strings.Repeat(" ", 61) // puts the next byte at offset 61, near a block edge
	cases := []struct {
		name    string
		body    string
		lim     JSONLimits
		verdict Verdict
		offset  int
		limit   int
	}{
		{"object", `{"a":[1,2,{"b":null}],"c":"d"}`, JSONLimits{}, Accepted, 0, 0},
		{"scalar", ` -12.5e+3 `, JSONLimits{}, Accepted, 0, 0},
		{"literals", `[true,false,null]`, JSONLimits{}, Accepted, 0, 0},
		{"escapes", `["\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]`, JSONLimits{MaxStringLength: 14}, Accepted, 0, 0},
		{"escapes one too long", `["\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]`, JSONLimits{MaxStringLength: 13}, StringLengthExceeded, 1, 13},
		{"lone surrogate is U+FFFD", `["\ud800x"]`, JSONLimits{MaxStringLength: 4}, Accepted, 0, 0},
		{"utf8", `{"caf\u00e9":"日本"}`, JSONLimits{MaxNameLength: 5, MaxStringLength: 6}, Accepted, 0, 0},
		{"empty", ``, JSONLimits{}, Malformed, 0, 0},
		{"blank", "  \n", JSONLimits{}, Malformed, 3, 0},
		{"two values", `1 2`, JSONLimits{}, Malformed, 2, 0},
		{"trailing comma", `[1,]`, JSONLimits{}, Malformed, 3, 0},
		{"leading zero", `01`, JSONLimits{}, Malformed, 1, 0},
		{"bare minus", `[-]`, JSONLimits{}, Malformed, 2, 0},
		{"dot without digits", `1.`, JSONLimits{}, Malformed, 2, 0},
		{"number then letter", `[12x]`, JSONLimits{}, Malformed, 3, 0},
		{"bad literal", `[tru]`, JSONLimits{}, Malformed, 4, 0},
		{"unterminated string", `"abc`, JSONLimits{}, Malformed, 4, 0},
		{"unclosed", `{"a":1`, JSONLimits{}, Malformed, 6, 0},
		{"mismatched", `[1}`, JSONLimits{}, Malformed, 2, 0},
		{"name not string", `{1:2}`, JSONLimits{}, Malformed, 1, 0},
		{"missing colon", `{"a" 1}`, JSONLimits{}, Malformed, 5, 0},
		{"control in string", "[\"a\tb\"]", JSONLimits{}, Malformed, 3, 0},
		{"bad escape", `["\x"]`, JSONLimits{}, Malformed, 3, 0},
		{"short unicode escape", `["\u12"]`, JSONLimits{}, Malformed, 6, 0},
		{"overlong utf8", "[\"\xc0\xaf\"]", JSONLimits{}, Malformed, 2, 0},
		{"utf8 surrogate", "[\"\xed\xa0\x80\"]", JSONLimits{}, Malformed, 2, 0},
		{"truncated utf8", "[\"a\xe6\x97\"]", JSONLimits{}, Malformed, 3, 0},
		{"non-ASCII outside string", "[\xc3\xa9]", JSONLimits{}, Malformed, 1, 0},
		{"depth ok", `[[[]]]`, JSONLimits{MaxDepth: 3}, Accepted, 0, 0},
		{"depth", `[[[[]]]]`, JSONLimits{MaxDepth: 3}, DepthExceeded, 3, 3},
		{"hard cap", strings.Repeat("[", MaxNesting+1), JSONLimits{MaxArrayElements: 10}, DepthExceeded, MaxNesting, MaxNesting},
		{"elements", `[[1,2],[1,2,3]]`, JSONLimits{MaxArrayElements: 2}, ArrayElementsExceeded, 12, 2},
		{"entries", `{"a":{"b":1,"c":2,"d":3}}`, JSONLimits{MaxObjectEntries: 2}, ObjectEntriesExceeded, 18, 2},
		{"name length", `{"` + long + `":1}`, JSONLimits{MaxNameLength: 99}, NameLengthExceeded, 1, 99},
		{"escaped name fits", `{"\u0041` + long[:95] + `":1}`, JSONLimits{MaxNameLength: 96}, Accepted, 0, 0},
		{"string length", `{"a":"` + long + `"}`, JSONLimits{MaxStringLength: 99}, StringLengthExceeded, 5, 99},
		{"escape across a block edge", `[` + pad + `"\"` + long + `"]`, JSONLimits{MaxStringLength: 101}, Accepted, 0, 0},
		{"backslashes across a block edge", `[` + pad + `"\\\\` + long + `"]`, JSONLimits{MaxStringLength: 102}, Accepted, 0, 0},
		{"number across a block edge", `[` + pad + `12345.678e9]`, JSONLimits{}, Accepted, 0, 0},
		{"bad number across a block edge", `[` + pad + `123-45]`, JSONLimits{}, Malformed, 65, 0},
	}
	forEachKernel(t, func(t *testing.T) {
		for _, c := range cases {
			got := ScanJSON([]byte(c.body), c.lim)
			if got.Verdict != c.verdict || got.Verdict != Accepted && (got.Offset != c.offset || got.Limit != c.limit) {
				t.Errorf("%s: ScanJSON(%.80q) = %v at %d (limit %d, %q); want %v at %d (limit %d)",
					c.name, c.body, got.Verdict, got.Offset, got.Limit, got.Reason, c.verdict, c.offset, c.limit)
			}
			if c.verdict == Accepted && !json.Valid([]byte(c.body)) || c.verdict == Malformed && json.Valid([]byte(c.body)) && !strings.ContainsAny(c.body, "\x80\xc0\xed\xe6") {
				t.Errorf("%s: the case disagrees with encoding/json.Valid", c.name)
			}
		}
	})
}

// TestEscapes: stage 1 tells escaping backslashes and unescaped quotes as a
// byte-at-a-time reading does, for runs of backslashes of every length at
// every alignment, across block edges, with each kernel.
func TestEscapes(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		for run := 1; run <= 70; run++ {
			for shift := range 66 {
				b := []byte(`"` + strings.Repeat("x", shift) + strings.Repeat(`\`, run) + `"` + strings.Repeat("y", 64) + `"`)
				// The reference, a byte at a time: quotes that are not
				// escaped, escaping backslashes inside strings, and the
				// first byte of each run of other bytes outside strings.
				want := make([]bool, len(b))
				in, scalar := false, false
				for i := 0; i < len(b); i++ {
					switch c := b[i]; {
					case in && c == '\\':
						want[i] = true
						i++
					case c == '"':
						want[i], in, scalar = true, !in, false
					case in:
					case c == '\\': // outside a string: a scalar byte that escapes the next
						want[i] = !scalar
						scalar = true
						i++
					default:
						want[i] = !scalar
						scalar = true
					}
				}
				padded := append([]byte(nil), b...)
				for len(padded)%blockLen != 0 {
					padded = append(padded, ' ')
				}
				got := make([]uint64, len(padded)/blockLen)
				var c stage1Carry
				findPositions(got, padded, &c)
				for i := range b {
					if have := got[i/blockLen]>>(i%blockLen)&1 != 0; have != want[i] {
						t.Fatalf("run %d shift %d: byte %d (%q) position=%v, want %v", run, shift, i, b[i], have, want[i])
					}
				}
			}
		}
	})
}
