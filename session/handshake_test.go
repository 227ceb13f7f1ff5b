package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/codec"
)

// Message sizes of docs/PROTOCOL.md §3.2: header 12, public key or
// encapsulation, MAC 32 (and a 40-byte client id in the response).
func TestMessageSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		suite                      Suite
		name                       string
		pk, enc, request, response int
	}{
		{SuiteMLKEM768X25519, "MLKEM768-X25519", 1216, 1120, 1260, 1204},
		{SuiteMLKEM768P256, "MLKEM768-P256", 1249, 1153, 1293, 1237},
	}
	for _, tt := range tests {
		if got := tt.suite.String(); got != tt.name {
			t.Errorf("Suite(%d).String() = %q, want %q", tt.suite, got, tt.name)
		}
		if !suiteAvailable(tt.suite) {
			continue
		}
		_, pk, enc, _ := tt.suite.params()
		if pk != tt.pk || enc != tt.enc || PairRequestLen(tt.suite) != tt.request || PairResponseLen(tt.suite) != tt.response {
			t.Errorf("%v: pk %d enc %d request %d response %d; want %d %d %d %d", tt.suite,
				pk, enc, PairRequestLen(tt.suite), PairResponseLen(tt.suite), tt.pk, tt.enc, tt.request, tt.response)
		}
		kem, _, _, _ := tt.suite.params()
		key, err := kem.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(key.PublicKey().Bytes()); n != tt.pk {
			t.Errorf("%v: the KEM's public key is %d bytes, want %d", tt.suite, n, tt.pk)
		}
	}
	if Suite(0).String() != "unknown" || Suite(3).String() != "unknown" {
		t.Error("unknown suites must print as unknown")
	}
}

func suiteAvailable(s Suite) bool {
	for _, a := range allSuites() {
		if a == s {
			return true
		}
	}
	return false
}

// TestPairRoundTrip is docs/PROTOCOL.md §1.2, properties 2 and 3: two relays with the same
// CLIENT_ID_SECRET pair over either hybrid KEM and end with the same keys,
// and a request and its response cross in both modes.
func TestPairRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range allSuites() {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			out, in, req, resp := pairAt(t, s, s, suite, now)
			if len(req) != PairRequestLen(suite) || len(resp) != PairResponseLen(suite) {
				t.Fatalf("message sizes %d, %d; want %d, %d", len(req), len(resp), PairRequestLen(suite), PairResponseLen(suite))
			}
			if out.keys != in.keys {
				t.Fatal("the two relays derived different keys")
			}
			seen := map[[32]byte]bool{}
			for _, k := range out.keys {
				if seen[k] || k == ([32]byte{}) {
					t.Fatal("session keys repeat or are zero")
				}
				seen[k] = true
			}
			if out.ClientID != in.ClientID || out.Suite != suite || in.Suite != suite {
				t.Errorf("client ids or suites differ: %v %v", out, in)
			}
			if err := s.VerifyClientID(&in.ClientID); err != nil {
				t.Errorf("issued client id does not verify: %v", err)
			}
			if got := in.ClientID.IssuedAt(); !got.Equal(now.Truncate(time.Second)) {
				t.Errorf("IssuedAt = %v, want %v", got, now.Truncate(time.Second))
			}
			wantExp := now.Add(DefaultLifetime)
			if !in.Expires.Equal(wantExp) || out.Expires.UnixMilli() != wantExp.UnixMilli() {
				t.Errorf("expiry: inbound %v outbound %v, want %v", in.Expires, out.Expires, wantExp)
			}
			if !out.Created.Equal(now) || !in.Created.Equal(now) {
				t.Errorf("created: %v %v, want %v", out.Created, in.Created, now)
			}
			for _, mode := range []uint8{codec.ModeMKE, codec.ModeMTE} {
				exchange(t, out, in, mode)
			}
		})
	}
}

// exchange seals a request at out, opens it at in, answers, and opens the
// answer at out, as the two relays do.
func exchange(t testing.TB, out, in *Session, mode uint8) {
	t.Helper()
	counter, ok := out.NextCounter()
	if !ok {
		t.Fatal("NextCounter refused")
	}
	frame := codec.AppendHeader(nil, codec.Header{Kind: codec.KindRequest, Mode: mode, Counter: counter, Time: 1})
	b := codec.BeginRequest(frame, []byte("GET"), []byte("/x"))
	frame = codec.Seal(b.Finish([]byte("ping"), mode), out.Request, out.ClientID[:], nil)
	tag := bytes.Clone(codec.Tag(frame))

	h, err := codec.ParseHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	env, err := codec.Open(frame, h, in.Request, in.ClientID[:], nil)
	if err != nil {
		t.Fatalf("mode %d: inbound cannot open the request: %v", mode, err)
	}
	if !in.Accept(h.Counter) {
		t.Fatalf("counter %d refused", h.Counter)
	}
	if r, err := codec.ParseRequest(env, mode); err != nil || string(r.Body) != "ping" {
		t.Fatalf("request: %+v, %v", r, err)
	}
	rf := codec.AppendHeader(nil, codec.Header{Kind: codec.KindResponse, Mode: mode, Counter: h.Counter, Responder: 2})
	rb := codec.BeginResponse(rf, 200)
	rf = codec.Seal(rb.Finish([]byte("pong"), mode), in.Response, in.ClientID[:], codec.Tag(frame))
	rh, err := codec.ParseHeader(rf)
	if err != nil {
		t.Fatal(err)
	}
	env, err = codec.Open(rf, rh, out.Response, out.ClientID[:], tag)
	if err != nil {
		t.Fatalf("mode %d: outbound cannot open the response: %v", mode, err)
	}
	if r, err := codec.ParseResponse(env, mode); err != nil || string(r.Body) != "pong" {
		t.Fatalf("response: %+v, %v", r, err)
	}
}

// TestPairingsDiffer: two pairings between the same relays share nothing
// (fresh KEM keys and client ids on both sides).
func TestPairingsDiffer(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	suite := allSuites()[0]
	a, _, _, _ := pairAt(t, s, s, suite, katNow)
	b, _, _, _ := pairAt(t, s, s, suite, katNow)
	if a.ClientID == b.ClientID {
		t.Error("two pairings issued the same client id")
	}
	for i := range a.keys {
		for j := range b.keys {
			if a.keys[i] == b.keys[j] {
				t.Fatal("two pairings share a key")
			}
		}
	}
}

// TestWrongSecret is docs/PROTOCOL.md §1.2, property 3: relays with different
// CLIENT_ID_SECRETs cannot pair, in either direction.
func TestWrongSecret(t *testing.T) {
	t.Parallel()
	a, b := mustSecrets(t, katSecret), mustSecrets(t, otherSecret)
	for _, suite := range allSuites() {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			i, err := a.CreatePairRequest(suite, katNow)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.ConsumePairRequest(i.Request(), katNow, DefaultLifetime); err != ErrPairSecret {
				t.Errorf("B accepted a request MACed under another secret, or gave another reason: %v", err)
			}
			// A B holding another secret answers (its MAC check is bypassed
			// by re-MACing the request under its own PSK); A must refuse.
			resp, _, err := b.ConsumePairRequest(remac(b, i.Request(), labelPairRequest, nil), katNow, DefaultLifetime)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := i.ConsumePairResponse(resp, katNow); err != ErrPair {
				t.Errorf("A accepted a response from a relay with another secret: %v", err)
			}
		})
	}
}

// TestResponseForAnotherRequest: a response opens only the pairing it
// answers (its MAC covers the request).
func TestResponseForAnotherRequest(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	suite := allSuites()[0]
	i1, _ := s.CreatePairRequest(suite, katNow)
	i2, _ := s.CreatePairRequest(suite, katNow)
	resp, _, err := s.ConsumePairRequest(i1.Request(), katNow, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i2.ConsumePairResponse(resp, katNow); err != ErrPair {
		t.Errorf("a response was accepted by another initiator: %v", err)
	}
	if _, err := i1.ConsumePairResponse(resp, katNow); err != nil {
		t.Errorf("the response's own initiator refused it: %v", err)
	}
}

// TestFlipEveryByte is docs/PROTOCOL.md §1.2, properties 3 and 8: any single-bit change to a
// PairRequest or a PairResponse is refused with ErrPair.
func TestFlipEveryByte(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range allSuites() {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			i, err := s.CreatePairRequest(suite, katNow)
			if err != nil {
				t.Fatal(err)
			}
			req := i.Request()
			resp, _, err := s.ConsumePairRequest(req, katNow, DefaultLifetime)
			if err != nil {
				t.Fatal(err)
			}
			for off := range req {
				for _, bit := range []byte{0x01, 0x80} {
					r := bytes.Clone(req)
					r[off] ^= bit
					if _, _, err := s.ConsumePairRequest(r, katNow, DefaultLifetime); !errors.Is(err, ErrPair) {
						t.Fatalf("request with bit %#x flipped at %d: %v, want ErrPair", bit, off, err)
					}
				}
			}
			for off := range resp {
				for _, bit := range []byte{0x01, 0x80} {
					r := bytes.Clone(resp)
					r[off] ^= bit
					if _, err := i.ConsumePairResponse(r, katNow); err != ErrPair {
						t.Fatalf("response with bit %#x flipped at %d: %v, want ErrPair", bit, off, err)
					}
				}
			}
			if !bytes.Equal(i.Request(), req) {
				t.Fatal("the initiator's request changed")
			}
			if _, err := i.ConsumePairResponse(resp, katNow); err != nil {
				t.Fatalf("the unflipped response is refused: %v", err)
			}
		})
	}
}

// TestMalformedRefused reaches the checks behind the MAC: every message here
// carries a MAC valid under the shared PSK, so only the field checks stand in
// the way.
func TestMalformedRefused(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range allSuites() {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			malformedRefused(t, s, suite)
		})
	}
}

func malformedRefused(t *testing.T, s *Secrets, suite Suite) {
	i, err := s.CreatePairRequest(suite, katNow)
	if err != nil {
		t.Fatal(err)
	}
	req := i.Request()
	edit := func(msg []byte, f func([]byte) []byte) []byte {
		return remac(s, f(bytes.Clone(msg)), labelPairRequest, nil)
	}
	requests := []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"header only", req[:pairHeaderLen]},
		{"one byte short", edit(req, func(b []byte) []byte { return append(b[:len(b)-macLen-1], b[len(b)-macLen:]...) })},
		{"one byte long", edit(req, func(b []byte) []byte { return append(b, 0) })},
		{"version 0", edit(req, func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", edit(req, func(b []byte) []byte { b[0] = 2; return b })},
		{"suite 0", edit(req, func(b []byte) []byte { b[1] = 0; return b })},
		{"suite 3", edit(req, func(b []byte) []byte { b[1] = 3; return b })},
		{"suite 255", edit(req, func(b []byte) []byte { b[1] = 255; return b })},
		{"other suite's byte, this suite's size", edit(req, func(b []byte) []byte { b[1] = 3 - b[1]; return b })},
		{"reserved byte 2", edit(req, func(b []byte) []byte { b[2] = 1; return b })},
		{"reserved byte 3", edit(req, func(b []byte) []byte { b[3] = 0x80; return b })},
		{"ML-KEM key out of range", edit(req, func(b []byte) []byte {
			copy(b[pairHeaderLen:pairHeaderLen+384], bytes.Repeat([]byte{0xff}, 384))
			return b
		})},
		// The all-zero point: an invalid P-256 encoding, and for X25519 a
		// low-order point that fails at encapsulation.
		{"bad elliptic-curve key", edit(req, func(b []byte) []byte {
			_, pk, _, _ := suite.params()
			clear(b[pairHeaderLen+1184 : pairHeaderLen+pk])
			return b
		})},
	}
	for _, tt := range requests {
		if _, _, err := s.ConsumePairRequest(tt.req, katNow, DefaultLifetime); !errors.Is(err, ErrPair) {
			t.Errorf("request %s: %v, want ErrPair", tt.name, err)
		}
	}

	resp, _, err := s.ConsumePairRequest(req, katNow, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	editResp := func(f func([]byte) []byte) []byte {
		return remac(s, f(bytes.Clone(resp)), labelPairResponse, req)
	}
	_, _, encLen, _ := suite.params()
	encAt := pairHeaderLen + ClientIDLen
	responses := []struct {
		name string
		resp []byte
	}{
		{"empty", nil},
		{"MAC only", resp[len(resp)-macLen:]},
		{"one byte short", editResp(func(b []byte) []byte { return append(b[:len(b)-macLen-1], b[len(b)-macLen:]...) })},
		{"one byte long", editResp(func(b []byte) []byte { return append(b, 0) })},
		{"version 2", editResp(func(b []byte) []byte { b[0] = 2; return b })},
		{"other suite", editResp(func(b []byte) []byte { b[1] = 3 - b[1]; return b })},
		{"reserved byte 2", editResp(func(b []byte) []byte { b[2] = 1; return b })},
		{"reserved byte 3", editResp(func(b []byte) []byte { b[3] = 1; return b })},
		{"bad elliptic-curve share", editResp(func(b []byte) []byte {
			clear(b[encAt+1088 : encAt+encLen]) // the all-zero point: X25519 low order, P-256 invalid
			return b
		})},
	}
	for _, tt := range responses {
		if _, err := i.ConsumePairResponse(tt.resp, katNow); err != ErrPair {
			t.Errorf("response %s: %v, want ErrPair", tt.name, err)
		}
	}
	if _, err := i.ConsumePairResponse(resp, katNow); err != nil {
		t.Fatalf("the unedited response is refused: %v", err)
	}
}

func TestUnknownSuite(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range []Suite{0, 3, 255} {
		if _, err := s.CreatePairRequest(suite, katNow); err != ErrPair {
			t.Errorf("CreatePairRequest(%d) = %v, want ErrPair", suite, err)
		}
	}
}

// TestRequestTimestamp is docs/PROTOCOL.md §6.1 for pairing: a PairRequest is
// accepted only within MaxClockSkew of the inbound relay's clock, edges
// included.
func TestRequestTimestamp(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	suite := allSuites()[0]
	i, err := s.CreatePairRequest(suite, katNow)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	tests := []struct {
		bNow time.Time
		ok   bool
	}{
		{katNow, true},
		{katNow.Add(MaxClockSkew), true},        // request 60 s old
		{katNow.Add(MaxClockSkew + ms), false},  // stale
		{katNow.Add(-MaxClockSkew), true},       // request 60 s in the future
		{katNow.Add(-MaxClockSkew - ms), false}, // from the future
		{katNow.Add(24 * time.Hour), false},     // replayed a day later
		{time.Unix(0, 0), false},                // B's clock at zero
		{katNow.Add(-100 * 365 * 24 * time.Hour), false},
	}
	for _, tt := range tests {
		_, _, err := s.ConsumePairRequest(i.Request(), tt.bNow, DefaultLifetime)
		if (err == nil) != tt.ok {
			t.Errorf("B at request time %+v: err %v, want ok=%v", tt.bNow.Sub(katNow), err, tt.ok)
		}
	}
	// Extreme timestamps, MACed correctly, do not overflow into acceptance.
	for _, ts := range []uint64{0, 1 << 63, 1<<63 - 1, 1<<64 - 1} {
		r := bytes.Clone(i.Request())
		binary.BigEndian.PutUint64(r[4:12], ts)
		if _, _, err := s.ConsumePairRequest(remac(s, r, labelPairRequest, nil), katNow, DefaultLifetime); !errors.Is(err, ErrPair) {
			t.Errorf("request time %#x: %v, want ErrPair", ts, err)
		}
	}
}

// TestResponseLifetime: the outbound relay refuses a session whose expiry,
// read on its own clock, is outside [MinLifetime, MaxLifetime] widened by
// MaxClockSkew (docs/PROTOCOL.md §6.2).
func TestResponseLifetime(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	suite := allSuites()[0]
	ms := time.Millisecond
	tests := []struct {
		name     string
		lifetime time.Duration // set by B at katNow
		aNow     time.Time     // A's clock when the answer arrives
		ok       bool
	}{
		{"default", DefaultLifetime, katNow, true},
		{"minimum, A ahead by the skew", MinLifetime, katNow.Add(MaxClockSkew), true},
		{"minimum, A further ahead", MinLifetime, katNow.Add(MaxClockSkew + ms), false},
		{"maximum, A behind by the skew", MaxLifetime, katNow.Add(-MaxClockSkew), true},
		{"maximum, A further behind", MaxLifetime, katNow.Add(-MaxClockSkew - ms), false},
		{"longer than the maximum", MaxLifetime + MaxClockSkew + ms, katNow, false},
		{"already expired", -ms, katNow, false},
	}
	for _, tt := range tests {
		i, err := s.CreatePairRequest(suite, katNow)
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := s.ConsumePairRequest(i.Request(), katNow, tt.lifetime)
		if err != nil {
			t.Fatal(err)
		}
		out, err := i.ConsumePairResponse(resp, tt.aNow)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err == nil && !out.Expires.Equal(katNow.Add(tt.lifetime)) {
			t.Errorf("%s: Expires %v, want %v", tt.name, out.Expires, katNow.Add(tt.lifetime))
		}
	}
}

// TestFixedInitiatorMatchesSpec checks the test helper (and so the spec's
// request layout) against CreatePairRequest: same header, sizes, MAC rule.
func TestFixedInitiatorMatchesSpec(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range allSuites() {
		fixed := fixedInitiator(t, s, suite, katNow, []byte("fixed initiator ikm 0123456789ab"))
		real, err := s.CreatePairRequest(suite, katNow)
		if err != nil {
			t.Fatal(err)
		}
		f, r := fixed.Request(), real.Request()
		if len(f) != len(r) || !bytes.Equal(f[:pairHeaderLen], r[:pairHeaderLen]) {
			t.Fatalf("%v: spec request header %x, code %x", suite, f[:pairHeaderLen], r[:pairHeaderLen])
		}
		pairWith(t, s, fixed)
	}
}

func pairWith(t testing.TB, s *Secrets, i *Initiator) (out, in *Session) {
	t.Helper()
	resp, in, err := s.ConsumePairRequest(i.Request(), katNow, DefaultLifetime)
	if err != nil {
		t.Fatalf("ConsumePairRequest: %v", err)
	}
	out, err = i.ConsumePairResponse(resp, katNow)
	if err != nil {
		t.Fatalf("ConsumePairResponse: %v", err)
	}
	if out.keys != in.keys {
		t.Fatal("keys differ")
	}
	return out, in
}

// TestKeyScheduleBindsTranscript: the session keys change with any byte of
// either message and with the PSK (docs/PROTOCOL.md §3.4).
func TestKeyScheduleBindsTranscript(t *testing.T) {
	t.Parallel()
	s, o := mustSecrets(t, katSecret), mustSecrets(t, otherSecret)
	shared := bytes.Repeat([]byte{7}, 32)
	req, resp := []byte("request"), []byte("response")
	base, err := s.deriveKeys(shared, req, resp)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]func() ([numKeys][32]byte, error){
		"shared":   func() ([numKeys][32]byte, error) { return s.deriveKeys(bytes.Repeat([]byte{8}, 32), req, resp) },
		"request":  func() ([numKeys][32]byte, error) { return s.deriveKeys(shared, []byte("requesT"), resp) },
		"response": func() ([numKeys][32]byte, error) { return s.deriveKeys(shared, req, []byte("responsE")) },
		"psk":      func() ([numKeys][32]byte, error) { return o.deriveKeys(shared, req, resp) },
	}
	for name, f := range variants {
		k, err := f()
		if err != nil {
			t.Fatal(err)
		}
		for i := range k {
			if k[i] == base[i] {
				t.Errorf("changing the %s leaves key %d unchanged", name, i)
			}
		}
	}
}
