package session

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/codec"
)

// TestSealSessionRoundTrip: a session sealed for a shared store opens with
// the same fields and keys, and with a fresh replay window.
func TestSealSessionRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, suite := range allSuites() {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			out, in, _, _ := pairAt(t, s, s, suite, katNow)
			in.Accept(1000)
			blob := s.SealSession(in)
			if len(blob) != SealedSessionLen || SealedSessionLen != 214 {
				t.Fatalf("sealed session is %d bytes, SealedSessionLen %d; want 214", len(blob), SealedSessionLen)
			}
			back, err := s.OpenSession(in.ClientID.ID(), blob)
			if err != nil {
				t.Fatalf("OpenSession: %v", err)
			}
			if back.ClientID != in.ClientID || back.Suite != in.Suite || back.keys != in.keys ||
				!back.Created.Equal(in.Created) || !back.Expires.Equal(in.Expires) {
				t.Fatalf("opened session differs: %+v", back)
			}
			if !back.Accept(1000) {
				t.Error("an opened session's window is not fresh (shared stores keep replay state apart)")
			}
			// The opened session talks to the outbound relay's session.
			exchange(t, out, back, codec.ModeMTE)
		})
	}
}

// TestSealSessionHidesKeys is docs/PROTOCOL.md §1.2, property 7: the blob a store holds
// contains none of the session keys, nor the psk-derived keys, and two
// seals of one session share nothing but their length.
func TestSealSessionHidesKeys(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	sess := testSession(t, katID, katNow, katNow.Add(time.Hour))
	a, b := s.SealSession(sess), s.SealSession(sess)
	for _, blob := range [][]byte{a, b} {
		for i, k := range sess.keys {
			for w := 0; w+8 <= len(k); w += 8 {
				if bytes.Contains(blob, k[w:w+8]) {
					t.Fatalf("blob holds 8 bytes of session key %d", i)
				}
			}
		}
		for _, k := range [][32]byte{s.psk, s.clientID, s.atRest} {
			if bytes.Contains(blob, k[:8]) {
				t.Fatal("blob holds a long-term key")
			}
		}
		if bytes.Contains(blob, sess.ClientID[24:]) {
			t.Fatal("blob holds the client id's MAC in clear")
		}
	}
	if bytes.Equal(a[:atRestNonceLen], b[:atRestNonceLen]) || bytes.Equal(a, b) {
		t.Error("two seals of one session repeat their nonce")
	}
}

// TestOpenSessionRefuses: a blob opens only under the same secret, for the
// id it was sealed for, unaltered.
func TestOpenSessionRefuses(t *testing.T) {
	t.Parallel()
	s, o := mustSecrets(t, katSecret), mustSecrets(t, otherSecret)
	sess := testSession(t, katID, katNow, katNow.Add(time.Hour))
	blob := s.SealSession(sess)
	other := katID
	other[15] ^= 1
	tests := []struct {
		name string
		s    *Secrets
		id   ID
		blob []byte
	}{
		{"other secret", o, katID, blob},
		{"other id", s, other, blob},
		{"zero id", s, ID{}, blob},
		{"empty", s, katID, nil},
		{"one byte short", s, katID, blob[:len(blob)-1]},
		{"one byte long", s, katID, append(bytes.Clone(blob), 0)},
	}
	for _, tt := range tests {
		if got, err := tt.s.OpenSession(tt.id, tt.blob); err != ErrSealedSession || got != nil {
			t.Errorf("%s: OpenSession = %v, %v; want ErrSealedSession", tt.name, got, err)
		}
	}
	for off := range blob {
		b := bytes.Clone(blob)
		b[off] ^= 0x01
		if _, err := s.OpenSession(katID, b); err != ErrSealedSession {
			t.Fatalf("blob with byte %d flipped: %v, want ErrSealedSession", off, err)
		}
	}
	if _, err := s.OpenSession(katID, blob); err != nil {
		t.Fatalf("the unaltered blob is refused: %v", err)
	}
}

// sealState seals a hand-written state with the at-rest key, to reach the
// checks behind the AEAD.
func sealState(s *Secrets, id ID, state []byte) []byte {
	out := make([]byte, atRestNonceLen)
	return s.atRestAEAD().Seal(out, out, state, atRestAD(id))
}

func TestOpenSessionChecksState(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	c := s.NewClientID(katID, katNow)
	state := func(version, suite byte, clientID ClientID) []byte {
		b := []byte{version, suite}
		b = append(b, clientID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(katNow.UnixMilli()))
		b = binary.BigEndian.AppendUint64(b, uint64(katNow.Add(time.Hour).UnixMilli()))
		return append(b, make([]byte, numKeys*32)...)
	}
	other := s.NewClientID(ID{9}, katNow)
	tests := []struct {
		name  string
		state []byte
		ok    bool
	}{
		{"valid", state(atRestVersion, byte(SuiteMLKEM768P256), c), true},
		{"version 0", state(0, byte(SuiteMLKEM768P256), c), false},
		{"version 2", state(2, byte(SuiteMLKEM768P256), c), false},
		{"suite 0", state(atRestVersion, 0, c), false},
		{"suite 3", state(atRestVersion, 3, c), false},
		{"client id of another id", state(atRestVersion, byte(SuiteMLKEM768P256), other), false},
	}
	for _, tt := range tests {
		got, err := s.OpenSession(katID, sealState(s, katID, tt.state))
		if (err == nil) != tt.ok {
			t.Errorf("%s: OpenSession = %v, %v; want ok=%v", tt.name, got, err, tt.ok)
		}
	}
}
