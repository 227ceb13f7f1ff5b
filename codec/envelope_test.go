package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

type field struct{ name, value string }

func collect(h Headers) []field {
	var out []field
	for {
		n, v, ok := h.Next()
		if !ok {
			return out
		}
		out = append(out, field{string(n), string(v)})
	}
}

func buildRequest(method, uri string, hs []field, body string, mode uint8) []byte {
	b := BeginRequest(nil, []byte(method), []byte(uri))
	for _, f := range hs {
		if !b.AddHeader([]byte(f.name), []byte(f.value)) {
			panic("AddHeader refused " + f.name)
		}
	}
	return b.Finish([]byte(body), mode)
}

func buildResponse(status int, hs []field, body string, mode uint8) []byte {
	b := BeginResponse(nil, status)
	for _, f := range hs {
		b.AddHeader([]byte(f.name), []byte(f.value))
	}
	return b.Finish([]byte(body), mode)
}

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, uri string
		headers           []field
		body              string
	}{
		{"minimal", "GET", "/", nil, ""},
		{"asterisk", "OPTIONS", "*", nil, ""},
		{"query and headers", "POST", "/v1/items?x=1&y=%20", []field{{"content-type", "application/json"}, {"x-a", ""}, {"X-B", "a\tb c"}}, `{"a":1}`},
		{"repeated header", "PUT", "/p", []field{{"set", "1"}, {"set", "2"}}, "body"},
		{"longest method", strings.Repeat("M", MaxMethodLen), "/", nil, ""},
		{"obs-text value", "GET", "/é", []field{{"x", "caf\xc3\xa9 \x80\xff"}}, ""},
		{"binary body", "POST", "/", nil, "\x00\r\n\xff"},
		{"body at a bucket edge", "POST", "/", nil, strings.Repeat("b", 256-15)},
	}
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				env := buildRequest(tt.method, tt.uri, tt.headers, tt.body, m.mode)
				if m.mode == ModeMTE && len(env) != PaddedLen(len(env)) {
					t.Fatalf("MTE envelope of %d bytes is not on a bucket", len(env))
				}
				r, err := ParseRequest(env, m.mode)
				if err != nil {
					t.Fatalf("ParseRequest: %v", err)
				}
				if string(r.Method) != tt.method || string(r.URI) != tt.uri || string(r.Body) != tt.body {
					t.Errorf("got %q %q body %q", r.Method, r.URI, r.Body)
				}
				if r.Headers.Len() != len(tt.headers) {
					t.Errorf("Headers.Len = %d, want %d", r.Headers.Len(), len(tt.headers))
				}
				if got := collect(r.Headers); fmt.Sprint(got) != fmt.Sprint(tt.headers) {
					t.Errorf("headers %q, want %q", got, tt.headers)
				}
				// Parsed in the other mode, the envelope is refused: MKE
				// carries no padding, MTE must end on a bucket.
				other := ModeMKE + ModeMTE - m.mode
				if _, err := ParseRequest(env, uint8(other)); err != ErrEnvelope && len(env) != PaddedLen(len(env)) {
					t.Errorf("parsed in mode %d: %v, want ErrEnvelope", other, err)
				}
			})
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, status := range []int{100, 200, 204, 302, 404, 502, 999} {
		for _, m := range modes {
			hs := []field{{"content-type", "text/plain"}, {"x-n", fmt.Sprint(status)}}
			env := buildResponse(status, hs, "hello", m.mode)
			r, err := ParseResponse(env, m.mode)
			if err != nil || r.Status != status || string(r.Body) != "hello" || fmt.Sprint(collect(r.Headers)) != fmt.Sprint(hs) {
				t.Errorf("%d/%s: ParseResponse = %+v, %v", status, m.name, r, err)
			}
		}
	}
}

func TestResponseStatusRange(t *testing.T) {
	t.Parallel()
	for _, status := range []int{0, 1, 99, 1000, 65535} {
		if _, err := ParseResponse(buildResponse(status, nil, "", ModeMKE), ModeMKE); err != ErrEnvelope {
			t.Errorf("status %d: %v, want ErrEnvelope", status, err)
		}
	}
}

// TestPaddedLen pins the MTE buckets of docs/PROTOCOL.md §5.3.
func TestPaddedLen(t *testing.T) {
	t.Parallel()
	const MiB = 1 << 20
	tests := []struct{ n, want int }{
		{0, 256}, {1, 256}, {255, 256}, {256, 256},
		{257, 512}, {512, 512}, {513, 1024},
		{1000, 1024}, {1024, 1024}, {1025, 2048},
		{10 * 1024, 16 * 1024},
		{MiB/2 + 1, MiB}, {MiB - 1, MiB}, {MiB, MiB},
		{MiB + 1, 2 * MiB}, {2 * MiB, 2 * MiB}, {2*MiB + 1, 3 * MiB},
		{10*MiB - 1, 10 * MiB}, {10 * MiB, 10 * MiB},
	}
	for _, tt := range tests {
		if got := PaddedLen(tt.n); got != tt.want {
			t.Errorf("PaddedLen(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
	// Never shorter, never more than twice (or one MiB) longer, idempotent.
	for n := 0; n < 3*MiB; n += 997 {
		p := PaddedLen(n)
		if p < n || p > max(2*n, minBucket) && p-n >= MiB || PaddedLen(p) != p {
			t.Fatalf("PaddedLen(%d) = %d", n, p)
		}
	}
}

func TestMTEPaddingRefused(t *testing.T) {
	t.Parallel()
	env := buildRequest("GET", "/", []field{{"a", "b"}}, "body", ModeMTE)
	unpadded := len(buildRequest("GET", "/", []field{{"a", "b"}}, "body", ModeMKE))
	if _, err := ParseRequest(env, ModeMTE); err != nil {
		t.Fatal(err)
	}
	// Any non-zero padding byte is refused.
	for off := unpadded; off < len(env); off++ {
		e := bytes.Clone(env)
		e[off] = 1
		if _, err := ParseRequest(e, ModeMTE); err != ErrEnvelope {
			t.Fatalf("non-zero padding at %d: %v, want ErrEnvelope", off, err)
		}
	}
	// Padding to the wrong length is refused, longer or shorter.
	for _, n := range []int{unpadded, unpadded + 1, len(env) - 1, len(env) + 1, 2 * len(env)} {
		e := append(bytes.Clone(env[:unpadded]), make([]byte, n-unpadded)...)
		if _, err := ParseRequest(e, ModeMTE); err != ErrEnvelope {
			t.Errorf("MTE envelope of %d bytes (bucket %d): %v, want ErrEnvelope", n, len(env), err)
		}
	}
	// MKE allows no trailing byte at all.
	mke := buildRequest("GET", "/", nil, "", ModeMKE)
	if _, err := ParseRequest(append(mke, 0), ModeMKE); err != ErrEnvelope {
		t.Errorf("MKE envelope with a trailing zero: %v, want ErrEnvelope", err)
	}
	if _, err := ParseRequest(mke, 0); err != ErrEnvelope {
		t.Errorf("mode 0: %v, want ErrEnvelope", err)
	}
	if _, err := ParseResponse(buildResponse(200, nil, "", ModeMKE), 3); err != ErrEnvelope {
		t.Errorf("mode 3: %v, want ErrEnvelope", err)
	}
}

// TestFinishReusesDirtyCapacity: padding is written as zeros even when the
// buffer's spare capacity holds old bytes (pooled buffers do).
func TestFinishReusesDirtyCapacity(t *testing.T) {
	t.Parallel()
	for _, spare := range []int{0, 10, 300, 4096} {
		buf := bytes.Repeat([]byte{0xee}, spare)[:0]
		b := BeginRequest(buf, []byte("GET"), []byte("/"))
		env := b.Finish([]byte("x"), ModeMTE)
		if _, err := ParseRequest(env, ModeMTE); err != nil {
			t.Errorf("spare %d: %v", spare, err)
		}
	}
	// After a prefix (a frame header), padding counts from the envelope start.
	prefix := AppendHeader(nil, reqHeader(ModeMTE, 1))
	b := BeginRequest(prefix, []byte("GET"), []byte("/"))
	out := b.Finish(nil, ModeMTE)
	if len(out)-HeaderLen != minBucket {
		t.Errorf("envelope after a header is %d bytes, want %d", len(out)-HeaderLen, minBucket)
	}
}

// rawRequest writes a request envelope field by field, so that the tests can
// write what Builder never would.
func rawRequest(method, uri string, hs []field, body string) []byte {
	b := []byte{byte(len(method))}
	b = append(b, method...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(uri)))
	b = append(b, uri...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(hs)))
	for _, f := range hs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.name)))
		b = append(b, f.name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.value)))
		b = append(b, f.value...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// TestRequestRefused: everything that could split or smuggle the rebuilt
// request is refused by the decoder (docs/ARCHITECTURE.md §4.5).
func TestRequestRefused(t *testing.T) {
	t.Parallel()
	ok := []field{{"a", "b"}}
	tests := []struct {
		name string
		env  []byte
	}{
		{"empty", nil},
		{"method length 0", rawRequest("", "/", nil, "")},
		{"method length 33", rawRequest(strings.Repeat("G", 33), "/", nil, "")},
		{"method with space", rawRequest("GE T", "/", nil, "")},
		{"method with CR", rawRequest("GET\r", "/", nil, "")},
		{"method with NUL", rawRequest("GET\x00", "/", nil, "")},
		{"empty URI", rawRequest("GET", "", nil, "")},
		{"absolute URI", rawRequest("GET", "http://x/", nil, "")},
		{"URI not starting with slash", rawRequest("GET", "a/b", nil, "")},
		{"URI with space", rawRequest("GET", "/a b", nil, "")},
		{"URI with CR LF", rawRequest("GET", "/a\r\nHost: evil", nil, "")},
		{"URI with NUL", rawRequest("GET", "/a\x00", nil, "")},
		{"URI with DEL", rawRequest("GET", "/a\x7f", nil, "")},
		{"URI with tab", rawRequest("GET", "/a\tb", nil, "")},
		{"asterisk with more", rawRequest("OPTIONS", "*x", nil, "")},
		{"empty header name", rawRequest("GET", "/", []field{{"", "v"}}, "")},
		{"header name with colon", rawRequest("GET", "/", []field{{"a:b", "v"}}, "")},
		{"header name with space", rawRequest("GET", "/", []field{{"a b", "v"}}, "")},
		{"header name with CR", rawRequest("GET", "/", []field{{"a\r", "v"}}, "")},
		{"header name with LF", rawRequest("GET", "/", []field{{"a\n", "v"}}, "")},
		{"header name with NUL", rawRequest("GET", "/", []field{{"a\x00", "v"}}, "")},
		{"header value with CR", rawRequest("GET", "/", []field{{"a", "v\r"}}, "")},
		{"header value with LF", rawRequest("GET", "/", []field{{"a", "v\nX-Injected: 1"}}, "")},
		{"header value with CRLF", rawRequest("GET", "/", []field{{"a", "v\r\n\r\nGET / HTTP/1.1"}}, "")},
		{"header value with NUL", rawRequest("GET", "/", []field{{"a", "\x00"}}, "")},
		{"header value with DEL", rawRequest("GET", "/", []field{{"a", "\x7f"}}, "")},
		{"header value with VT", rawRequest("GET", "/", []field{{"a", "\x0b"}}, "")},
		{"second header bad", rawRequest("GET", "/", []field{{"a", "b"}, {"c", "\n"}}, "")},
		{"trailing byte", append(rawRequest("GET", "/", ok, "x"), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r, err := ParseRequest(tt.env, ModeMKE); err != ErrEnvelope {
				t.Errorf("ParseRequest = %+v, %v; want ErrEnvelope", r, err)
			}
		})
	}
	if _, err := ParseRequest(rawRequest("GET", "/", ok, "x"), ModeMKE); err != nil {
		t.Fatalf("the reference envelope is refused: %v", err)
	}
}

// TestTruncatedEverywhere: every proper prefix of a valid envelope is refused,
// and so is every envelope whose length fields claim more than is there.
func TestTruncatedEverywhere(t *testing.T) {
	t.Parallel()
	hs := []field{{"content-type", "application/json"}, {"x-empty", ""}}
	for _, m := range modes {
		req := buildRequest("POST", "/v1/x?y=z", hs, `{"k":"v"}`, m.mode)
		resp := buildResponse(201, hs, `{"k":"v"}`, m.mode)
		for n := range len(req) {
			if _, err := ParseRequest(req[:n], m.mode); err != ErrEnvelope {
				t.Fatalf("%s: request truncated to %d of %d bytes: %v", m.name, n, len(req), err)
			}
		}
		for n := range len(resp) {
			if _, err := ParseResponse(resp[:n], m.mode); err != ErrEnvelope {
				t.Fatalf("%s: response truncated to %d of %d bytes: %v", m.name, n, len(resp), err)
			}
		}
	}
	// Length fields at their maximum, with little behind them.
	huge := []byte{3, 'G', 'E', 'T', 0xff, 0xff, 0xff, 0xff, '/'}
	if _, err := ParseRequest(huge, ModeMKE); err != ErrEnvelope {
		t.Errorf("URI length 2^32-1: %v", err)
	}
	manyHeaders := rawRequest("GET", "/", nil, "")
	manyHeaders[len(manyHeaders)-6], manyHeaders[len(manyHeaders)-5] = 0xff, 0xff
	if _, err := ParseRequest(manyHeaders, ModeMKE); err != ErrEnvelope {
		t.Errorf("65,535 headers claimed, none present: %v", err)
	}
	bigBody := rawRequest("GET", "/", nil, "")
	binary.BigEndian.PutUint32(bigBody[len(bigBody)-4:], 1<<32-1)
	if _, err := ParseRequest(bigBody, ModeMKE); err != ErrEnvelope {
		t.Errorf("body length 2^32-1: %v", err)
	}
}

func TestAddHeaderLimits(t *testing.T) {
	t.Parallel()
	b := BeginResponse(nil, 200)
	if b.AddHeader(make([]byte, 1<<16), nil) {
		t.Error("AddHeader took a 65,536-byte name")
	}
	name := bytes.Repeat([]byte("n"), 1<<16-1)
	if !b.AddHeader(name, nil) {
		t.Error("AddHeader refused a 65,535-byte name")
	}
	for range MaxHeaders - 1 {
		if !b.AddHeader([]byte("h"), nil) {
			t.Fatal("AddHeader refused a field below MaxHeaders")
		}
	}
	if b.AddHeader([]byte("h"), nil) {
		t.Error("AddHeader took field number MaxHeaders+1")
	}
	r, err := ParseResponse(b.Finish(nil, ModeMKE), ModeMKE)
	if err != nil || r.Headers.Len() != MaxHeaders {
		t.Errorf("ParseResponse = %d headers, %v; want %d", r.Headers.Len(), err, MaxHeaders)
	}
}

// TestParsedSlicesAreCapped: the method, URI and body slices a caller gets
// cannot be appended to over the bytes that follow them in the envelope.
func TestParsedSlicesAreCapped(t *testing.T) {
	t.Parallel()
	env := buildRequest("GET", "/u", []field{{"a", "b"}}, "body", ModeMKE)
	r, err := ParseRequest(env, ModeMKE)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]byte{r.Method, r.URI, r.Body} {
		if cap(s) != len(s) {
			t.Errorf("slice %q has spare capacity %d over the envelope", s, cap(s)-len(s))
		}
	}
}
