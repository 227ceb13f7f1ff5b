package codec

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
	"github.com/pqrelay/pqrelay/internal/jsonshape"
)

// Fuzz targets for every decoder of the package (docs/ARCHITECTURE.md §4.2). Seed corpora
// live in testdata/fuzz/<Target>/ and hold real frames and envelopes made by
// this package; regenerate them with
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./codec
//
// Each target must run clean for ten seconds (a fuzz-short run):
//
//	go test -run '^$' -fuzz '^FuzzOpen$' -fuzztime 10s ./codec

// genuineFrames are the only frames FuzzOpen may see open: the request and
// response frames of both modes sealed under the test keys.
func genuineFrames() (reqs map[uint8][]byte, resps map[uint8][]byte) {
	k := testKeys()
	reqs, resps = map[uint8][]byte{}, map[uint8][]byte{}
	for _, m := range modes {
		req := sealFrame(k, reqHeader(m.mode, 1), testRequestEnv(nil, m.mode), testClientID, nil)
		reqs[m.mode] = req
		resps[m.mode] = sealFrame(k, respHeader(m.mode, 1), testResponseEnv(nil, m.mode), testClientID, Tag(req))
	}
	return reqs, resps
}

func FuzzParseHeader(f *testing.F) {
	reqs, resps := genuineFrames()
	for _, m := range modes {
		f.Add(reqs[m.mode])
		f.Add(resps[m.mode])
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := ParseHeader(frame)
		if err != nil {
			if err != ErrFrame {
				t.Fatalf("ParseHeader error %v is not ErrFrame", err)
			}
			return
		}
		if len(frame) < Overhead {
			t.Fatalf("ParseHeader accepted a %d-byte frame", len(frame))
		}
		// A parsed header re-encodes to the bytes it came from.
		if got := AppendHeader(nil, h); !bytes.Equal(got, frame[:HeaderLen]) {
			t.Fatalf("AppendHeader(ParseHeader(%x)) = %x", frame[:HeaderLen], got)
		}
	})
}

// FuzzOpen: no frame opens under the test keys unless it is byte for byte
// one the test sealed; nothing panics; a refused frame is cleared.
func FuzzOpen(f *testing.F) {
	reqs, resps := genuineFrames()
	for _, m := range modes {
		f.Add(reqs[m.mode], false)
		f.Add(resps[m.mode], true)
	}
	k := testKeys()
	reqTag := map[uint8][]byte{ModeMKE: Tag(reqs[ModeMKE]), ModeMTE: Tag(reqs[ModeMTE])}
	f.Fuzz(func(t *testing.T, in []byte, bound bool) {
		frame := bytes.Clone(in) // Open decrypts in place; fuzz inputs are read-only
		h, err := ParseHeader(frame)
		if err != nil {
			return
		}
		var bind []byte
		if bound {
			bind = reqTag[h.Mode]
		}
		env, err := Open(frame, h, k, testClientID, bind)
		if err != nil {
			if err != ErrFrame || env != nil {
				t.Fatalf("Open = %v, %v; want nil, ErrFrame", env, err)
			}
			if !allZero(frame[HeaderLen:]) {
				t.Fatal("a refused frame was not cleared")
			}
			return
		}
		want := reqs[h.Mode]
		if h.Kind == KindResponse {
			want = resps[h.Mode]
		}
		if !bytes.Equal(in, want) {
			t.Fatalf("a frame the test never sealed opened: %x", in)
		}
	})
}

// envelopeSeeds are real envelopes of both kinds and modes.
func envelopeSeeds() (reqs, resps [][]byte) {
	hs := []field{{"content-type", "application/json"}, {"x-empty", ""}, {"x-obs", "\x80\xff"}}
	for _, m := range modes {
		reqs = append(reqs,
			testRequestEnv(nil, m.mode),
			buildRequest("POST", "/v1/items?q=1", hs, `{"a":[1,2,3]}`, m.mode),
			buildRequest("OPTIONS", "*", nil, "", m.mode))
		resps = append(resps,
			testResponseEnv(nil, m.mode),
			buildResponse(502, hs, `{"error":"upstream"}`, m.mode),
			buildResponse(204, nil, "", m.mode))
	}
	return reqs, resps
}

// rebuild re-encodes parsed headers into b.
func rebuild(b *Builder, h Headers) {
	for {
		name, value, ok := h.Next()
		if !ok {
			return
		}
		if !b.AddHeader(name, value) {
			panic("AddHeader refused a parsed header")
		}
	}
}

func sameHeaders(a, b Headers) bool { return fmt.Sprint(collect(a)) == fmt.Sprint(collect(b)) }

// FuzzParseRequest: no panic, and a request that parses re-encodes with
// Builder to the very same bytes (the format is canonical), which parse to
// the same fields.
func FuzzParseRequest(f *testing.F) {
	reqs, _ := envelopeSeeds()
	for _, env := range reqs {
		f.Add(env, uint8(ModeMKE))
		f.Add(env, uint8(ModeMTE))
	}
	f.Fuzz(func(t *testing.T, env []byte, mode uint8) {
		r, err := ParseRequest(env, mode)
		if err != nil {
			if err != ErrEnvelope {
				t.Fatalf("ParseRequest error %v is not ErrEnvelope", err)
			}
			return
		}
		if !ValidHeaderName(r.Method) || !validURI(r.URI) {
			t.Fatalf("accepted method %q or URI %q", r.Method, r.URI)
		}
		b := BeginRequest(nil, r.Method, r.URI)
		rebuild(&b, r.Headers)
		again := b.Finish(r.Body, mode)
		if !bytes.Equal(again, env) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", env, again)
		}
		r2, err := ParseRequest(again, mode)
		if err != nil || !bytes.Equal(r2.Method, r.Method) || !bytes.Equal(r2.URI, r.URI) ||
			!bytes.Equal(r2.Body, r.Body) || !sameHeaders(r2.Headers, r.Headers) {
			t.Fatalf("re-encoded request parses to %+v, %v; want %+v", r2, err, r)
		}
		for h := r.Headers; ; {
			name, value, ok := h.Next()
			if !ok {
				break
			}
			if !refHeaderName(name) || !refHeaderValue(value) {
				t.Fatalf("accepted header %q: %q", name, value)
			}
		}
	})
}

// FuzzParseResponse is FuzzParseRequest for responses.
func FuzzParseResponse(f *testing.F) {
	_, resps := envelopeSeeds()
	for _, env := range resps {
		f.Add(env, uint8(ModeMKE))
		f.Add(env, uint8(ModeMTE))
	}
	f.Fuzz(func(t *testing.T, env []byte, mode uint8) {
		r, err := ParseResponse(env, mode)
		if err != nil {
			if err != ErrEnvelope {
				t.Fatalf("ParseResponse error %v is not ErrEnvelope", err)
			}
			return
		}
		if r.Status < 100 || r.Status > 999 {
			t.Fatalf("accepted status %d", r.Status)
		}
		b := BeginResponse(nil, r.Status)
		rebuild(&b, r.Headers)
		again := b.Finish(r.Body, mode)
		if !bytes.Equal(again, env) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", env, again)
		}
		r2, err := ParseResponse(again, mode)
		if err != nil || r2.Status != r.Status || !bytes.Equal(r2.Body, r.Body) || !sameHeaders(r2.Headers, r.Headers) {
			t.Fatalf("re-encoded response parses to %+v, %v; want %+v", r2, err, r)
		}
	})
}

// FuzzValidHeaderValue compares the table-driven validators with the
// reference classifiers of validate_test.go.
func FuzzValidHeaderValue(f *testing.F) {
	for _, s := range []string{"", "application/json", "a\tb", "v\r\n", "\x00", "\x7f", "caf\xc3\xa9", "x-name"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := ValidHeaderValue(b), refHeaderValue(b); got != want {
			t.Fatalf("ValidHeaderValue(%q) = %v, reference says %v", b, got, want)
		}
		if got, want := ValidHeaderName(b), refHeaderName(b); got != want {
			t.Fatalf("ValidHeaderName(%q) = %v, reference says %v", b, got, want)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora under testdata/fuzz from the
// same inputs the targets add with f.Add, so that `go test -fuzz` starts from
// real messages even when run from a clean cache. Guarded by an env var: it
// writes into the source tree.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	reqs, resps := genuineFrames()
	envReqs, envResps := envelopeSeeds()
	write := func(target, name string, args ...any) {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", target, name), args...)
	}
	for _, m := range modes {
		write("FuzzParseHeader", "request-"+m.name, reqs[m.mode])
		write("FuzzParseHeader", "response-"+m.name, resps[m.mode])
		write("FuzzOpen", "request-"+m.name, reqs[m.mode], false)
		write("FuzzOpen", "response-"+m.name, resps[m.mode], true)
	}
	for i, env := range envReqs {
		write("FuzzParseRequest", fmt.Sprintf("request-%d", i), env, uint8(ModeMKE))
		write("FuzzParseRequest", fmt.Sprintf("request-%d-as-mte", i), env, uint8(ModeMTE))
	}
	for i, env := range envResps {
		write("FuzzParseResponse", fmt.Sprintf("response-%d", i), env, uint8(ModeMKE))
		write("FuzzParseResponse", fmt.Sprintf("response-%d-as-mte", i), env, uint8(ModeMTE))
	}
	for i, s := range []string{"application/json", "a\tb", "v\r\n", "caf\xc3\xa9", "x-name"} {
		write("FuzzValidHeaderValue", fmt.Sprintf("value-%d", i), []byte(s))
	}
	for i, s := range jsonSeeds() {
		write("FuzzScanJSON", fmt.Sprintf("json-%d", i), s, uint8(0), uint8(0), uint8(0))
		write("FuzzScanJSON", fmt.Sprintf("json-%d-limited", i), s, uint8(3), uint8(2), uint8(4))
		write("FuzzFindPositions", fmt.Sprintf("json-%d", i), s)
	}
	for i, s := range xmlSeeds() {
		write("FuzzScanXML", fmt.Sprintf("xml-%d", i), s, uint8(0), uint8(0), uint8(0))
		write("FuzzScanXML", fmt.Sprintf("xml-%d-limited", i), s, uint8(2), uint8(2), uint8(3))
	}
}

// jsonSeeds are the tricky inputs FuzzScanJSON starts from: escapes and
// numbers at 32- and 64-byte block edges, surrogates, overlong and
// truncated UTF-8, deep nesting.
func jsonSeeds() [][]byte {
	var seeds [][]byte
	add := func(s string) { seeds = append(seeds, []byte(s)) }
	for _, edge := range []int{29, 30, 31, 32, 61, 62, 63, 64, 65} {
		pad := strings.Repeat(" ", edge)
		add(`[` + pad + `"\"\\"]`)
		add(`[` + pad + `"\\\\\\\"x"]`)
		add(`["` + strings.Repeat("a", edge) + `\u00e9\ud83d\ude00"]`)
		add(`[` + pad + `-12.5e+10, 0.0001]`)
		add(`{"` + strings.Repeat("k", edge) + `":"v"}`)
	}
	add(`{"a":[1,2,{"b":null,"c":true,"d":false}],"e":"caf\u00e9 \ud800 日本"}`)
	add("[\"\xc0\xaf\"]")
	add("[\"\xed\xa0\x80\"]")
	add("[\"\xf4\x90\x80\x80\"]")
	add("[\"\xe6\x97\"]")
	add(strings.Repeat("[", 40) + strings.Repeat("]", 40))
	add(strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20))
	add(string(jsonshape.Build("api", 300)))
	return seeds
}

// FuzzScanJSON: the AVX2 kernel and its twin reach the same result (verdict,
// offset, limit, reason and counts); with no limits the verdict is
// encoding/json.Valid's, except that invalid UTF-8 inside strings, which
// encoding/json lets through, is refused; an accepted body is within its
// limits.
func FuzzScanJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add(s, uint8(0), uint8(0), uint8(0))
		f.Add(s, uint8(3), uint8(2), uint8(4))
	}
	f.Fuzz(func(t *testing.T, body []byte, depth, members, length uint8) {
		lim := JSONLimits{MaxDepth: int(depth), MaxArrayElements: int(members), MaxObjectEntries: int(members),
			MaxNameLength: int(length), MaxStringLength: int(length) * 2}
		for _, l := range []JSONLimits{{}, lim} {
			got := ScanJSON(body, l)
			if useAVX2 {
				restore := disableAVX2()
				twin := ScanJSON(body, l)
				restore()
				if got != twin {
					t.Fatalf("ScanJSON(%q, %+v): avx2 %+v, generic %+v", body, l, got, twin)
				}
			}
			if got.Verdict == Accepted {
				if l.MaxDepth > 0 && got.Depth > l.MaxDepth || l.MaxArrayElements > 0 && got.ArrayElements > l.MaxArrayElements ||
					l.MaxNameLength > 0 && got.NameLength > l.MaxNameLength || l.MaxStringLength > 0 && got.StringLength > l.MaxStringLength {
					t.Fatalf("ScanJSON(%q, %+v) accepted with counts %+v", body, l, got)
				}
			}
		}
		got := ScanJSON(body, JSONLimits{})
		if got.Verdict == DepthExceeded {
			return // MaxNesting; encoding/json goes deeper
		}
		if want := json.Valid(body) && utf8.Valid(body); (got.Verdict == Accepted) != want {
			t.Fatalf("ScanJSON(%q) = %+v; encoding/json.Valid and utf8.Valid say %v", body, got, want)
		}
	})
}

// FuzzFindPositions: the AVX2 kernel finds the same positions and carries
// as its twin, and writes nothing past the room it was given.
func FuzzFindPositions(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !useAVX2 {
			t.Skip("no AVX2")
		}
		checkFindPositions(t, b)
	})
}

// duplicateAttribute is the first attribute name given twice in one start
// tag of b, as encoding/xml's tokenizer reads the tags (prefixes as
// written), as far as it reads b.
func duplicateAttribute(b []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	for {
		tok, err := d.RawToken()
		if err != nil {
			return "", false
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		seen := map[xml.Name]bool{}
		for _, a := range start.Attr {
			if seen[a.Name] {
				return a.Name.Space + ":" + a.Name.Local, true
			}
			seen[a.Name] = true
		}
	}
}

// xmlSeeds start FuzzScanXML from every construct the scanner knows.
func xmlSeeds() [][]byte {
	var seeds [][]byte
	for _, s := range []string{
		"<?xml version=\"1.0\"?>\n<!-- c --><a x='1' y=\"&lt;&#x41;\">t&amp;<b/><![CDATA[<&]]><?pi data?>caf\u00e9</a>",
		"<a><b><c/></b><b></b ></a>",
		`<!DOCTYPE lolz [<!ENTITY lol "lol">]><lolz>&lol;</lolz>`,
		"<a>]]></a>",
		"<a><!-- a -- b --></a>",
		"<r>\xc0\xaf</r>",
		"<\u00e9l\u00e9ment attr\u00b7='v'/>",
		`<a x="1" y='2' x="3"><b x="1" p:x="2"/></a>`,
		"<a x y='1' z='<'></a>",
		manyAttributes(fewAttributes+2, "a3"),
		"<p:a q:b='1'><p:c/></p:a>",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzScanXML: no panic; an accepted body is within its limits, names no
// attribute twice in one start tag (as encoding/xml's tokenizer reads it),
// and, when it is ASCII without an XML declaration (whose encoding
// encoding/xml would judge), is read to the end by encoding/xml's strict
// decoder.
func FuzzScanXML(f *testing.F) {
	for _, s := range xmlSeeds() {
		f.Add(s, uint8(0), uint8(0), uint8(0))
		f.Add(s, uint8(2), uint8(2), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, depth, members, length uint8) {
		lim := XMLLimits{MaxDepth: int(depth), MaxChildren: int(members), MaxAttributes: int(members),
			MaxNameLength: int(length), MaxTextLength: int(length), MaxAttributeLength: int(length)}
		for _, l := range []XMLLimits{{}, lim} {
			got := ScanXML(body, l)
			if got.Verdict != Accepted {
				if got.Offset < 0 || got.Offset > len(body) {
					t.Fatalf("ScanXML(%q) = %+v: offset outside the body", body, got)
				}
				continue
			}
			if l.MaxDepth > 0 && got.Depth > l.MaxDepth || l.MaxChildren > 0 && got.Children > l.MaxChildren ||
				l.MaxTextLength > 0 && got.StringLength > l.MaxTextLength || l.MaxNameLength > 0 && got.NameLength > l.MaxNameLength {
				t.Fatalf("ScanXML(%q, %+v) accepted with counts %+v", body, l, got)
			}
			if name, ok := duplicateAttribute(body); ok {
				t.Fatalf("ScanXML(%q) accepted a start tag with attribute %q twice", body, name)
			}
			ascii := true
			for _, c := range body {
				ascii = ascii && c < utf8.RuneSelf
			}
			if ascii && !bytes.Contains(body, []byte("<?xml")) && !xmlWellFormed(body) {
				t.Fatalf("ScanXML accepted %q, which encoding/xml refuses", body)
			}
		}
	})
}
