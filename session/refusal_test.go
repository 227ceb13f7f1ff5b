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
	proof := s.AppendUnknownSessionProof(nil, &id, tag, 90*time.Second)
	if kept, ok := s.OpenUnknownSessionProof(&id, tag, proof); len(proof) != ProofLen || !ok || kept != 90*time.Second {
		t.Fatalf("a genuine proof: kept %v, ok %v", kept, ok)
	}
	open := func(s *Secrets, id *ClientID, tag, proof []byte) bool {
		_, ok := s.OpenUnknownSessionProof(id, tag, proof)
		return ok
	}
	for name, ok := range map[string]bool{
		"other request":   open(s, &id, tag2, proof),
		"other client id": open(s, &id2, tag, proof),
		"other secret":    open(other, &id, tag, proof),
		"truncated":       open(s, &id, tag, proof[:ProofLen-1]),
		"empty":           open(s, &id, tag, nil),
	} {
		if ok {
			t.Errorf("%s: proof accepted", name)
		}
	}
	// Every byte is covered, the kept duration included: an attacker cannot
	// make a relay that lost a session a moment ago vouch for a long past.
	for i := range proof {
		bad := bytes.Clone(proof)
		bad[i] ^= 1
		if open(s, &id, tag, bad) {
			t.Fatalf("proof with byte %d flipped accepted", i)
		}
	}
	if kept, ok := s.OpenUnknownSessionProof(&id, tag, s.AppendUnknownSessionProof(nil, &id, tag, -time.Second)); !ok || kept != 0 {
		t.Errorf("a negative duration is sent as 0, got %v %v", kept, ok)
	}
}
