//go:build !race

package codec

import (
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/internal/jsonshape"
)

// TestZeroAllocs: sealing and opening an MKE frame and building and parsing
// its envelope allocate nothing in steady state (docs/ARCHITECTURE.md §4.1). Built
// without -race, which makes sync.Pool drop items on purpose. MTE builds an
// AES-GCM per message key with crypto/aes and crypto/cipher, which allocate;
// it is measured, not asserted.
func TestZeroAllocs(t *testing.T) {
	k := testKeys()
	buf := make([]byte, 0, 4096)
	var tag [TagLen]byte
	allocs := testing.AllocsPerRun(1000, func() {
		frame := AppendHeader(buf[:0], reqHeader(ModeMKE, 9))
		frame = testRequestEnv(frame, ModeMKE)
		frame = Seal(frame, k, testClientID, nil)
		copy(tag[:], Tag(frame))
		h, err := ParseHeader(frame)
		if err != nil {
			t.Fatal(err)
		}
		env, err := Open(frame, h, k, testClientID, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRequest(env, ModeMKE)
		if err != nil {
			t.Fatal(err)
		}
		for _, _, ok := r.Headers.Next(); ok; _, _, ok = r.Headers.Next() {
		}
		resp := AppendHeader(buf[:0], respHeader(ModeMKE, 9))
		resp = testResponseEnv(resp, ModeMKE)
		resp = Seal(resp, k, testClientID, tag[:])
		h, _ = ParseHeader(resp)
		if _, err := Open(resp, h, k, testClientID, tag[:]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("an MKE request and response cost %v allocations, want 0", allocs)
	}
	mte := testing.AllocsPerRun(100, func() {
		frame := AppendHeader(buf[:0], reqHeader(ModeMTE, 9))
		Seal(testRequestEnv(frame, ModeMTE), k, testClientID, nil)
	})
	t.Logf("sealing an MTE frame: %v allocations (per-message key)", mte)
}

// TestScanAllocs: accepting a JSON or XML body allocates nothing, with each
// stage-1 kernel, and with an element whose attributes need the table of
// names.
func TestScanAllocs(t *testing.T) {
	body := jsonshape.Build("api", 64<<10)
	xmlBody := []byte(`<?xml version="1.0"?><r a="1">` + strings.Repeat(`<item id="7">text &amp; more<b/></item>`, 500) +
		manyAttributes(MaxElementAttributes, "") + `</r>`)
	jl := JSONLimits{MaxDepth: 10, MaxStringLength: 1000}
	xl := XMLLimits{MaxDepth: 10, MaxChildren: 1000}
	for _, k := range kernels(t) {
		restore := k.off()
		if r := ScanJSON(body, jl); r.Verdict != Accepted {
			t.Fatalf("%s: %+v", k.name, r)
		}
		if n := testing.AllocsPerRun(20, func() { ScanJSON(body, jl) }); n != 0 {
			t.Errorf("%s: ScanJSON allocates %v times", k.name, n)
		}
		restore()
	}
	if r := ScanXML(xmlBody, xl); r.Verdict != Accepted {
		t.Fatalf("%+v", r)
	}
	if n := testing.AllocsPerRun(20, func() { ScanXML(xmlBody, xl) }); n != 0 {
		t.Errorf("ScanXML allocates %v times", n)
	}
}
