package upsign

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
)

// Fuzz targets for the parsers of the package: SIGNING_HEADERS in both
// schemes, and the query-string decoding @query-param applies to what the
// app sent. Seed corpora live in testdata/fuzz/<Target>/; regenerate them
// with
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./upsign

var componentSeeds = []string{
	defaultComponents,
	`("@method" "@target-uri")`,
	`"@query-param";name="Pet" "@authority"`,
	`"@query-param";name="fa%C3%A7ade%22%3A%20"`,
	`"@query-param";name="a+b" "x-custom"`,
	`"date";sf "@status"`,
	`"@method""date"`,
	`"Date"`,
	`"@query-param";name=Pet`,
	``,
}

var cavageSeeds = []string{
	defaultCavageHeaders,
	"(request-target) host date content-type digest content-length",
	"DATE X-Custom",
	"(created) date",
	"date date",
	"host",
	"",
}

var querySeeds = []string{
	"dog", "a+b", "a%20b", "%zz%4", "fa%C3%A7ade%22%3A%20", "this%20is%20a%20big%0Avalue", "%",
}

func FuzzParseComponents(f *testing.F) {
	for _, s := range componentSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		comps, err := parseComponents(string(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "SIGNING_HEADERS: ") {
				t.Fatalf("error %q does not name SIGNING_HEADERS", err)
			}
			return
		}
		// An accepted list prints as identifiers that parse to themselves,
		// in printable ASCII, as Signature-Input needs them.
		var ids []string
		for _, c := range comps {
			for _, b := range c.id {
				if b < 0x20 || b > 0x7e {
					t.Fatalf("identifier %q is not printable ASCII", c.id)
				}
			}
			ids = append(ids, string(c.id))
		}
		again, err := parseComponents(strings.Join(ids, " "))
		if err != nil || len(again) != len(comps) {
			t.Fatalf("%q → %q → %v", text, ids, err)
		}
		for i := range again {
			if !bytes.Equal(again[i].id, comps[i].id) || again[i].kind != comps[i].kind {
				t.Fatalf("%q → %q → %q", text, comps[i].id, again[i].id)
			}
		}
	})
}

func FuzzParseCavageHeaders(f *testing.F) {
	for _, s := range cavageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		items, err := parseCavageHeaders(string(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "SIGNING_HEADERS: ") {
				t.Fatalf("error %q does not name SIGNING_HEADERS", err)
			}
			return
		}
		var names []string
		for _, it := range items {
			name := "(request-target)"
			if !it.requestTarget {
				name = it.field
			}
			if name != strings.ToLower(name) || strings.ContainsAny(name, " \"\r\n") {
				t.Fatalf("item %q would break the headers parameter", name)
			}
			names = append(names, name)
		}
		again, err := parseCavageHeaders(strings.Join(names, " "))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(items) {
			t.Fatalf("%q → %q → %v", text, names, err)
		}
	})
}

// FuzzFormReencode: whatever query text the app sends, @query-param values
// come out in the unreserved characters and %XX only, encoding them again
// changes nothing, and the allocation-free name match agrees with decoding.
func FuzzFormReencode(f *testing.F) {
	for _, s := range querySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		out := appendFormReencoded(nil, s)
		for i := 0; i < len(out); i++ {
			switch c := out[i]; {
			case c == '%':
				if i+2 >= len(out) || !isHex(out[i+1]) || !isHex(out[i+2]) {
					t.Fatalf("%q → %q: bare %%", s, out)
				}
				i += 2
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '*', c == '-', c == '.', c == '_':
			default:
				t.Fatalf("%q → %q: unencoded %q", s, out, c)
			}
		}
		if again := appendFormReencoded(nil, out); !bytes.Equal(again, out) {
			t.Fatalf("%q → %q → %q", s, out, again)
		}
		if decoded := appendFormDecoded(nil, s); !formEqual(s, decoded) || !bytes.Equal(appendFormEncoded(nil, decoded), out) {
			t.Fatalf("%q: decoding and matching disagree", s)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora from the inputs the targets
// add with f.Add. Guarded by an env var: it writes into the source tree.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	for target, seeds := range map[string][]string{
		"FuzzParseComponents": componentSeeds, "FuzzParseCavageHeaders": cavageSeeds, "FuzzFormReencode": querySeeds,
	} {
		for i, s := range seeds {
			fuzzseed.Write(t, filepath.Join("testdata", "fuzz", target, fmt.Sprintf("seed-%d", i)), []byte(s))
		}
	}
}
