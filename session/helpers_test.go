package session

import (
	"context"
	"crypto/fips140"
	"encoding/binary"
	"testing"
	"time"
)

// Fixed inputs shared by the tests, the fuzz targets and the known-answer
// vectors (kat_test.go, docs/PROTOCOL.md §9.1).
const (
	katSecret   = "pqrelay known-answer CLIENT_ID_SECRET 0123456789"
	otherSecret = "another relay pair's CLIENT_ID_SECRET 0123456789"
)

// katNow is 2025-01-01T00:00:00Z, the clock of every fixed-time test.
var katNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func mustSecrets(t testing.TB, secret string) *Secrets {
	t.Helper()
	s, err := NewSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allSuites are the suites this process can pair with: both, or only the
// P-256 hybrid in FIPS mode.
// mustPut stores s in st and ends the test if the store refuses it.
func mustPut(t testing.TB, st Store, s *Session) {
	t.Helper()
	if err := st.Put(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func allSuites() []Suite {
	if fips140.Enabled() {
		return []Suite{SuiteMLKEM768P256}
	}
	return []Suite{SuiteMLKEM768X25519, SuiteMLKEM768P256}
}

// pairAt runs a whole pairing between a (outbound) and b (inbound) with both
// clocks at now and returns the two sessions and both messages.
func pairAt(t testing.TB, a, b *Secrets, suite Suite, now time.Time) (out, in *Session, req, resp []byte) {
	t.Helper()
	i, err := a.CreatePairRequest(suite, now)
	if err != nil {
		t.Fatalf("CreatePairRequest(%v): %v", suite, err)
	}
	resp, in, err = b.ConsumePairRequest(i.Request(), now, DefaultLifetime)
	if err != nil {
		t.Fatalf("ConsumePairRequest(%v): %v", suite, err)
	}
	out, err = i.ConsumePairResponse(resp, now)
	if err != nil {
		t.Fatalf("ConsumePairResponse(%v): %v", suite, err)
	}
	return out, in, i.Request(), resp
}

// fixedInitiator is CreatePairRequest with the KEM key derived from ikm
// instead of drawn at random, so that fuzz seeds and benchmarks can hold
// responses that verify. The request is written from docs/PROTOCOL.md §3.2,
// not by calling the code under test; TestFixedInitiatorMatchesSpec checks
// that both agree.
func fixedInitiator(t testing.TB, s *Secrets, suite Suite, now time.Time, ikm []byte) *Initiator {
	t.Helper()
	kem, _, _, ok := suite.params()
	if !ok {
		t.Fatalf("suite %v unavailable", suite)
	}
	key, err := kem.DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte{1, byte(suite), 0, 0}
	msg = binary.BigEndian.AppendUint64(msg, uint64(now.UnixMilli()))
	msg = append(msg, key.PublicKey().Bytes()...)
	msg = s.appendMAC(msg, "pqrelay v1 pair request", msg)
	return &Initiator{secrets: s, suite: suite, key: key, request: msg}
}

// remac replaces the trailing MAC of a pairing message with a valid one
// under s, so that tests reach the checks behind the MAC. prefix is the
// request for a response, nil for a request.
func remac(s *Secrets, msg []byte, label string, prefix []byte) []byte {
	body := msg[:len(msg)-macLen]
	return s.appendMAC(append([]byte(nil), body...), label, prefix, body)
}
