package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Unknown-session proofs (docs/PROTOCOL.md §2.3). When the inbound relay does
// not know a session it answers MTE_SESSION_UNKNOWN, and the outbound relay
// may pair anew and resend the request. Unauthenticated, that answer would
// let an on-path attacker drop the genuine response to a request the
// upstream already ran and make the outbound relay run it again. The inbound
// relay has lost the session but still holds the PSK, so it MACs the answer
// over the client id, the refused frame's tag and how long its store has
// kept every session it was given (kept, in microseconds):
//
//	proof = kept (8, big-endian) || HMAC-SHA256(psk, "pqrelay v1 unknown session" || client id || tag || kept)
//
// The tag is unique to one request, so a proof answers that request only.
// kept lets the outbound relay tell a session lost before its request was
// sealed (the request cannot have run) from one lost after it (it may have).

// ProofLen is the length of an unknown-session proof.
const ProofLen = 8 + sha256.Size

const labelUnknownSession = "pqrelay v1 unknown session"

// AppendUnknownSessionProof appends the proof that the relay refused the
// frame with tag, sent under clientID, because it does not know the session,
// and that its store has kept every session it was given for kept.
func (s *Secrets) AppendUnknownSessionProof(dst []byte, clientID *ClientID, tag []byte, kept time.Duration) []byte {
	var us [8]byte
	binary.BigEndian.PutUint64(us[:], uint64(max(kept.Microseconds(), 0)))
	dst = append(dst, us[:]...)
	return s.unknownSessionMAC(dst, clientID, tag, us[:])
}

func (s *Secrets) unknownSessionMAC(dst []byte, clientID *ClientID, tag, kept []byte) []byte {
	m := hmac.New(sha256.New, s.psk[:])
	m.Write([]byte(labelUnknownSession))
	m.Write(clientID[:])
	m.Write(tag)
	m.Write(kept)
	return m.Sum(dst)
}

// OpenUnknownSessionProof checks a proof in constant time and returns the
// duration it vouches for.
func (s *Secrets) OpenUnknownSessionProof(clientID *ClientID, tag, proof []byte) (kept time.Duration, ok bool) {
	if len(proof) != ProofLen {
		return 0, false
	}
	want := s.unknownSessionMAC(nil, clientID, tag, proof[:8])
	if !hmac.Equal(want, proof[8:]) {
		return 0, false
	}
	us := binary.BigEndian.Uint64(proof[:8])
	if us > uint64(maxKept.Microseconds()) {
		return maxKept, true
	}
	return time.Duration(us) * time.Microsecond, true
}

// maxKept caps what a proof can claim, far beyond any relay's uptime, so the
// conversion to a Duration cannot overflow.
const maxKept = 100 * 365 * 24 * time.Hour
