package session

import (
	"bytes"
	"testing"
	"time"
)

func TestUnknownSessionProof(t *testing.T) {
	t.Parallel()
	s, _ := NewSecrets("0123456789abcdef0123456789abcdef")
	other, _ := NewSecrets("0123456789abcdef0123456789abcdeX")
	id := s.NewClientID(ID{1, 2, 3}, time.Unix(1700000000, 0))
	id2 := s.NewClientID(ID{9}, time.Unix(1700000000, 0))
	tag := bytes.Repeat([]byte{0xab}, 16)
	tag2 := bytes.Repeat([]byte{0xac}, 16)
	proof := s.AppendUnknownSessionProof(nil, &id, tag)
	if len(proof) != ProofLen || !s.VerifyUnknownSessionProof(&id, tag, proof) {
		t.Fatal("a genuine proof does not verify")
	}
	for name, ok := range map[string]bool{
		"other request":   s.VerifyUnknownSessionProof(&id, tag2, proof),
		"other client id": s.VerifyUnknownSessionProof(&id2, tag, proof),
		"other secret":    other.VerifyUnknownSessionProof(&id, tag, proof),
		"truncated":       s.VerifyUnknownSessionProof(&id, tag, proof[:31]),
		"empty":           s.VerifyUnknownSessionProof(&id, tag, nil),
	} {
		if ok {
			t.Errorf("%s: proof accepted", name)
		}
	}
	for i := range proof {
		bad := bytes.Clone(proof)
		bad[i] ^= 1
		if s.VerifyUnknownSessionProof(&id, tag, bad) {
			t.Fatalf("proof with byte %d flipped accepted", i)
		}
	}
}
