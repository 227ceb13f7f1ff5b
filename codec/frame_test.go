package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// seq returns n bytes start, start+1, …: the fixed keys and ids of the tests
// and of the known-answer vectors (kat_test.go).
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

var (
	testMKEKey   = seq(0x00, KeyLen)
	testMTEKey   = seq(0x20, KeyLen)
	testClientID = seq(0x40, ClientIDLen)
	testTime     = int64(1735689600000) // 2025-01-01T00:00:00Z in Unix ms
)

func testKeys() *Keys { return NewKeys(testMKEKey, testMTEKey) }

// testRequestEnv is a small request envelope: GET /v1/ping, one header, no body.
func testRequestEnv(dst []byte, mode uint8) []byte {
	b := BeginRequest(dst, []byte("GET"), []byte("/v1/ping"))
	b.AddHeader([]byte("accept"), []byte("application/json"))
	return b.Finish(nil, mode)
}

// testResponseEnv is a small response envelope: 200, one header, body "pong".
func testResponseEnv(dst []byte, mode uint8) []byte {
	b := BeginResponse(dst, 200)
	b.AddHeader([]byte("content-type"), []byte("text/plain"))
	return b.Finish([]byte("pong"), mode)
}

// sealFrame seals env as a frame of kind in mode under k.
func sealFrame(k *Keys, h Header, env, clientID, bind []byte) []byte {
	frame := AppendHeader(nil, h)
	frame = append(frame, env...)
	return Seal(frame, k, clientID, bind)
}

func reqHeader(mode uint8, counter uint64) Header {
	return Header{Kind: KindRequest, Mode: mode, Counter: counter, Time: testTime}
}

// testResponder is the responder id of the test responses.
const testResponder = 0x5eed1234

func respHeader(mode uint8, counter uint64) Header {
	return Header{Kind: KindResponse, Mode: mode, Counter: counter, Responder: testResponder}
}

// openFrame parses the header and opens, as a receiving relay does.
func openFrame(frame []byte, k *Keys, clientID, bind []byte) ([]byte, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return nil, err
	}
	return Open(frame, h, k, clientID, bind)
}

var modes = []struct {
	name string
	mode uint8
}{{"MKE", ModeMKE}, {"MTE", ModeMTE}}

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, h := range []Header{
		{Kind: KindRequest, Mode: ModeMKE},
		{Kind: KindRequest, Mode: ModeMTE, Flags: FlagHeadersInClear | FlagURLInClear, Counter: 1<<32 - 1, Time: testTime},
		{Kind: KindResponse, Mode: ModeMKE, Counter: 1<<64 - 1, Responder: 1<<32 - 1},
	} {
		b := AppendHeader(nil, h)
		if len(b) != HeaderLen {
			t.Fatalf("AppendHeader(%+v) is %d bytes, want %d", h, len(b), HeaderLen)
		}
		got, err := ParseHeader(append(b, make([]byte, TagLen)...))
		if err != nil || got != h {
			t.Errorf("ParseHeader(AppendHeader(%+v)) = %+v, %v", h, got, err)
		}
	}
}

func TestParseHeaderRefuses(t *testing.T) {
	t.Parallel()
	valid := AppendHeader(nil, Header{Kind: KindRequest, Mode: ModeMKE, Counter: 1})
	valid = append(valid, make([]byte, TagLen)...)
	tests := []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"header only", func(b []byte) []byte { return b[:HeaderLen] }},
		{"one byte short of a tag", func(b []byte) []byte { return b[:Overhead-1] }},
		{"version 0", func(b []byte) []byte { b[0] = 0; return b }},
		{"version 2", func(b []byte) []byte { b[0] = 2; return b }},
		{"kind 0", func(b []byte) []byte { b[1] = 0; return b }},
		{"kind 3", func(b []byte) []byte { b[1] = 3; return b }},
		{"mode 0", func(b []byte) []byte { b[2] = 0; return b }},
		{"mode 3", func(b []byte) []byte { b[2] = 3; return b }},
		{"unknown flag", func(b []byte) []byte { b[3] = 1 << 2; return b }},
		{"response with flags", func(b []byte) []byte { b[1] = KindResponse; b[3] = FlagURLInClear; return b }},
		{"response with reserved bytes set", func(b []byte) []byte { b[1] = KindResponse; b[19] = 1; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.edit(bytes.Clone(valid))
			if _, err := ParseHeader(b); err != ErrFrame {
				t.Errorf("ParseHeader = %v, want ErrFrame", err)
			}
		})
	}
	if _, err := ParseHeader(valid); err != nil {
		t.Fatalf("the unedited header does not parse: %v", err)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			env := testRequestEnv(nil, m.mode)
			h := reqHeader(m.mode, 7)
			h.Flags = FlagHeadersInClear
			frame := sealFrame(k, h, env, testClientID, nil)
			if len(frame) != HeaderLen+len(env)+TagLen {
				t.Fatalf("frame is %d bytes, want %d", len(frame), HeaderLen+len(env)+TagLen)
			}
			if bytes.Contains(frame, []byte("/v1/ping")) || bytes.Contains(frame, []byte("application/json")) {
				t.Fatal("sealed frame holds plaintext")
			}
			tag := bytes.Clone(Tag(frame))
			got, err := openFrame(frame, k, testClientID, nil)
			if err != nil || !bytes.Equal(got, env) {
				t.Fatalf("Open = %q, %v; want the envelope", got, err)
			}
			req, err := ParseRequest(got, m.mode)
			if err != nil || string(req.Method) != "GET" || string(req.URI) != "/v1/ping" {
				t.Fatalf("ParseRequest = %+v, %v", req, err)
			}

			renv := testResponseEnv(nil, m.mode)
			resp := sealFrame(k, respHeader(m.mode, 7), renv, testClientID, tag)
			got, err = openFrame(resp, k, testClientID, tag)
			if err != nil || !bytes.Equal(got, renv) {
				t.Fatalf("Open(response) = %q, %v; want the envelope", got, err)
			}
		})
	}
}

// TestSealInPlace checks that Seal uses the frame's own storage when it has
// room for the tag, and that Open decrypts in place (the hot path allocates
// neither).
func TestSealInPlace(t *testing.T) {
	t.Parallel()
	k := testKeys()
	buf := make([]byte, 0, 512)
	buf = AppendHeader(buf, reqHeader(ModeMKE, 1))
	buf = testRequestEnv(buf, ModeMKE)
	frame := Seal(buf, k, testClientID, nil)
	if &frame[0] != &buf[0] {
		t.Fatal("Seal reallocated a frame that had room for the tag")
	}
	env, err := openFrame(frame, k, testClientID, nil)
	if err != nil || &env[0] != &frame[HeaderLen] {
		t.Fatalf("Open did not decrypt in place (err %v)", err)
	}
	// A frame without spare capacity still seals.
	tight := AppendHeader(nil, reqHeader(ModeMKE, 2))
	tight = testRequestEnv(tight, ModeMKE)
	tight = tight[:len(tight):len(tight)]
	if _, err := openFrame(Seal(tight, k, testClientID, nil), k, testClientID, nil); err != nil {
		t.Fatalf("frame sealed without spare capacity does not open: %v", err)
	}
}

// TestFlipEveryByte is docs/PROTOCOL.md §1.2, properties 1 and 8: changing any one bit of a
// sealed frame, header included, makes it fail with ErrFrame, and what was
// decrypted is cleared so that no unauthenticated plaintext escapes.
func TestFlipEveryByte(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, m := range modes {
		for _, kind := range []uint8{KindRequest, KindResponse} {
			t.Run(fmt.Sprintf("%s/kind%d", m.name, kind), func(t *testing.T) {
				t.Parallel()
				var frame, bind []byte
				if kind == KindRequest {
					frame = sealFrame(k, reqHeader(m.mode, 3), testRequestEnv(nil, m.mode), testClientID, nil)
				} else {
					bind = seq(0x90, BindLen)
					frame = sealFrame(k, respHeader(m.mode, 3), testResponseEnv(nil, m.mode), testClientID, bind)
				}
				for off := range frame {
					for _, bit := range []byte{0x01, 0x80} {
						f := bytes.Clone(frame)
						f[off] ^= bit
						h, err := ParseHeader(f)
						if err != nil {
							continue // refused before decryption: also fine
						}
						env, err := Open(f, h, k, testClientID, bind)
						if err != ErrFrame || env != nil {
							t.Fatalf("flip of bit %#x at offset %d: Open = %v, %v; want nil, ErrFrame", bit, off, env, err)
						}
						if !allZero(f[HeaderLen:]) {
							t.Fatalf("flip at offset %d: Open left bytes after the header uncleared", off)
						}
					}
				}
			})
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	k := testKeys()
	other := NewKeys(seq(0x01, KeyLen), testMTEKey)
	otherMTE := NewKeys(testMKEKey, seq(0x21, KeyLen))
	otherID := seq(0x41, ClientIDLen)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			req := sealFrame(k, reqHeader(m.mode, 5), testRequestEnv(nil, m.mode), testClientID, nil)
			tag := bytes.Clone(Tag(req))
			resp := sealFrame(k, respHeader(m.mode, 5), testResponseEnv(nil, m.mode), testClientID, tag)
			wrongKeys := other
			if m.mode == ModeMTE {
				wrongKeys = otherMTE
			}
			otherTag := seq(0xa0, BindLen)
			tests := []struct {
				name     string
				frame    []byte
				k        *Keys
				clientID []byte
				bind     []byte
			}{
				{"request under other keys", req, wrongKeys, testClientID, nil},
				{"request for another client id", req, k, otherID, nil},
				{"request opened as bound", req, k, testClientID, tag},
				{"response under other keys", resp, wrongKeys, testClientID, tag},
				{"response for another client id", resp, k, otherID, tag},
				{"response bound to another request", resp, k, testClientID, otherTag},
				{"response without binding", resp, k, testClientID, nil},
				{"truncated to the tag", req[:Overhead], k, testClientID, nil},
			}
			for _, tt := range tests {
				f := bytes.Clone(tt.frame)
				if env, err := openFrame(f, tt.k, tt.clientID, tt.bind); err != ErrFrame || env != nil {
					t.Errorf("%s: Open = %q, %v; want ErrFrame", tt.name, env, err)
				}
			}
		})
	}
}

// TestOpenShortFrame: Open itself checks the length, whatever header it is
// handed.
func TestOpenShortFrame(t *testing.T) {
	t.Parallel()
	for n := range Overhead {
		if _, err := Open(make([]byte, n), reqHeader(ModeMKE, 1), testKeys(), testClientID, nil); err != ErrFrame {
			t.Errorf("Open of %d bytes = %v, want ErrFrame", n, err)
		}
	}
}

// TestResponseBinding is docs/PROTOCOL.md §1.2, property 5: a response opens only for the
// request it answers — the same counter and that request's tag.
func TestResponseBinding(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			req1 := sealFrame(k, reqHeader(m.mode, 10), testRequestEnv(nil, m.mode), testClientID, nil)
			req2 := sealFrame(k, reqHeader(m.mode, 11), testRequestEnv(nil, m.mode), testClientID, nil)
			tag1, tag2 := bytes.Clone(Tag(req1)), bytes.Clone(Tag(req2))
			resp1 := sealFrame(k, respHeader(m.mode, 10), testResponseEnv(nil, m.mode), testClientID, tag1)

			if _, err := openFrame(bytes.Clone(resp1), k, testClientID, tag1); err != nil {
				t.Fatalf("response does not open for its own request: %v", err)
			}
			if _, err := openFrame(bytes.Clone(resp1), k, testClientID, tag2); err != ErrFrame {
				t.Errorf("response opened with another request's tag: %v", err)
			}
			// The same response relabelled with the other request's counter.
			f := bytes.Clone(resp1)
			binary.BigEndian.PutUint64(f[4:12], 11)
			if _, err := openFrame(f, k, testClientID, tag1); err != ErrFrame {
				t.Errorf("response opened under another counter: %v", err)
			}
			// Opened with the right frame bytes but another counter's nonce
			// and key (a receiver that mismatched header and frame).
			h, _ := ParseHeader(resp1)
			h.Counter = 11
			if _, err := Open(bytes.Clone(resp1), h, k, testClientID, tag1); err != ErrFrame {
				t.Errorf("response opened with another counter's nonce: %v", err)
			}
			// A request frame is never taken for a response, even with the
			// kind byte changed, since each direction has its own keys.
			f = bytes.Clone(req1)
			f[1] = KindResponse
			if _, err := openFrame(f, k, testClientID, tag1); err != ErrFrame {
				t.Errorf("request opened as a response: %v", err)
			}
		})
	}
}

// mteKeyRef is the MTE per-message key schedule written from
// docs/PROTOCOL.md §4.1 independently of aeadFor.
func mteKeyRef(t testing.TB, base []byte, kind uint8, counter uint64) []byte {
	info := append([]byte("pqrelay v1 mte"), kind)
	info = binary.BigEndian.AppendUint64(info, counter)
	key, err := hkdf.Expand(sha256.New, base, string(info), KeyLen)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func gcmRef(t testing.TB, key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// TestMTEPerMessageKeys checks MTE (docs/ARCHITECTURE.md §5): each message has its own
// key, so the key of one message opens that message and no other. The frame
// is opened with plain AES-GCM under keys computed from the spec, so the test
// also pins the nonce and additional-data layout of §4.
func TestMTEPerMessageKeys(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, kind := range []uint8{KindRequest, KindResponse} {
		bind := []byte(nil)
		h := reqHeader(ModeMTE, 42)
		env := testRequestEnv(nil, ModeMTE)
		if kind == KindResponse {
			bind = seq(0x90, BindLen)
			h = respHeader(ModeMTE, 42)
			env = testResponseEnv(nil, ModeMTE)
		}
		frame := sealFrame(k, h, env, testClientID, bind)
		var nonce [12]byte // docs/PROTOCOL.md §4.1
		if kind == KindResponse {
			binary.BigEndian.PutUint32(nonce[:4], testResponder)
		} else {
			nonce[0] = kind
		}
		binary.BigEndian.PutUint64(nonce[4:], 42)
		ad := append(bytes.Clone(frame[:HeaderLen]), testClientID...)
		ad = append(ad, make([]byte, BindLen)...)
		copy(ad[HeaderLen+ClientIDLen:], bind)

		own := gcmRef(t, mteKeyRef(t, testMTEKey, kind, 42))
		got, err := own.Open(nil, nonce[:], frame[HeaderLen:], ad)
		if err != nil || !bytes.Equal(got, env) {
			t.Fatalf("kind %d: the spec's key for counter 42 does not open the frame: %v", kind, err)
		}
		for _, c := range []uint64{41, 43, 1 << 32} {
			if _, err := gcmRef(t, mteKeyRef(t, testMTEKey, kind, c)).Open(nil, nonce[:], frame[HeaderLen:], ad); err == nil {
				t.Errorf("kind %d: the key of counter %d opens the message of counter 42", kind, c)
			}
		}
		other := KindRequest + KindResponse - kind
		if _, err := gcmRef(t, mteKeyRef(t, testMTEKey, other, 42)).Open(nil, nonce[:], frame[HeaderLen:], ad); err == nil {
			t.Errorf("kind %d: the other direction's key for counter 42 opens the frame", kind)
		}
		if _, err := gcmRef(t, testMTEKey).Open(nil, nonce[:], frame[HeaderLen:], ad); err == nil {
			t.Errorf("kind %d: the MTE base key itself opens the frame", kind)
		}
	}
	// MKE, by contrast, is the direction key itself (§4.1).
	frame := sealFrame(k, reqHeader(ModeMKE, 42), testRequestEnv(nil, ModeMKE), testClientID, nil)
	var nonce [12]byte
	nonce[0] = KindRequest
	binary.BigEndian.PutUint64(nonce[4:], 42)
	ad := append(bytes.Clone(frame[:HeaderLen]), testClientID...)
	ad = append(ad, make([]byte, BindLen)...)
	if _, err := gcmRef(t, testMKEKey).Open(nil, nonce[:], frame[HeaderLen:], ad); err != nil {
		t.Errorf("the MKE key does not open an MKE frame per the spec: %v", err)
	}
}

// TestScratchReuse: the pooled nonce and additional data carry nothing from
// one frame to the next (a request sealed right after a bound response has a
// zero binding).
func TestScratchReuse(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for range 50 {
		sealFrame(k, respHeader(ModeMKE, 1), testResponseEnv(nil, ModeMKE), testClientID, seq(0xf0, BindLen))
		req := sealFrame(k, reqHeader(ModeMKE, 1), testRequestEnv(nil, ModeMKE), testClientID, nil)
		if want := unhex(t, codecKAT.requestMKE); !bytes.Equal(req, want) {
			t.Fatalf("request sealed after a bound response:\n got %x\nwant %x", req, want)
		}
	}
}

// TestNonceDistinct: frames differing only in counter give different
// ciphertexts (the counter is in the nonce), in both modes.
func TestNonceDistinct(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, m := range modes {
		a := sealFrame(k, reqHeader(m.mode, 1), testRequestEnv(nil, m.mode), testClientID, nil)
		b := sealFrame(k, reqHeader(m.mode, 2), testRequestEnv(nil, m.mode), testClientID, nil)
		if bytes.Equal(a[HeaderLen:], b[HeaderLen:]) {
			t.Errorf("%s: counters 1 and 2 give the same ciphertext", m.name)
		}
	}
}

func TestProgrammerMistakesPanic(t *testing.T) {
	t.Parallel()
	k := testKeys()
	good := AppendHeader(nil, reqHeader(ModeMKE, 1))
	bad := bytes.Clone(good)
	bad[2] = 9
	tests := []struct {
		name string
		f    func()
	}{
		{"NewKeys short mke", func() { NewKeys(make([]byte, 16), testMTEKey) }},
		{"NewKeys long mte", func() { NewKeys(testMKEKey, make([]byte, 33)) }},
		{"Seal without header", func() { Seal(good[:HeaderLen-1], k, testClientID, nil) }},
		{"Seal with invalid header", func() { Seal(bad, k, testClientID, nil) }},
		{"Seal short client id", func() { Seal(bytes.Clone(good), k, testClientID[1:], nil) }},
		{"Seal short binding", func() { Seal(bytes.Clone(good), k, testClientID, make([]byte, BindLen-1)) }},
		{"Open short client id", func() { Open(make([]byte, Overhead), reqHeader(ModeMKE, 1), k, testClientID[1:], nil) }},
		{"BeginRequest empty method", func() { BeginRequest(nil, nil, []byte("/")) }},
		{"BeginRequest long method", func() { BeginRequest(nil, make([]byte, MaxMethodLen+1), []byte("/")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			tt.f()
		})
	}
}

// TestKeysRedacted: printing a Keys (a Session's exported Request and
// Response fields) must not print key material.
func TestKeysRedacted(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		out := fmt.Sprintf(verb, k)
		for _, key := range [][]byte{testMKEKey, testMTEKey} {
			if bytes.Contains([]byte(out), key) || bytes.Contains([]byte(out), []byte(fmt.Sprintf("%x", key))) ||
				bytes.Contains([]byte(out), []byte(fmt.Sprintf("%X", key))) || bytes.Contains([]byte(out), []byte(fmt.Sprint(key))) {
				t.Errorf("fmt %s of Keys shows key material: %s", verb, out)
			}
		}
	}
}

// TestRespondersNeverShareANonce: two relays (replicas behind one balancer)
// that both answer the same replayed request seal under different nonces,
// so the response key's GCM stays safe (docs/PROTOCOL.md §6.3); each
// response still opens for the request it answers.
func TestRespondersNeverShareANonce(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for _, m := range modes {
		req := sealFrame(k, reqHeader(m.mode, 77), testRequestEnv(nil, m.mode), testClientID, nil)
		var frames [][]byte
		for _, responder := range []uint32{1, 2} {
			h := respHeader(m.mode, 77)
			h.Responder = responder
			frames = append(frames, sealFrame(k, h, testResponseEnv(nil, m.mode), testClientID, Tag(req)))
		}
		a, b := frames[0][HeaderLen:], frames[1][HeaderLen:]
		if bytes.Equal(a[:16], b[:16]) {
			t.Fatalf("%s: two responders produced the same keystream", m.name)
		}
		for i, f := range frames {
			if _, err := openFrame(bytes.Clone(f), k, testClientID, Tag(req)); err != nil {
				t.Errorf("%s: response of responder %d does not open: %v", m.name, i+1, err)
			}
		}
	}
}
