package codec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
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
}
