package session

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Unknown-session proofs (docs/PROTOCOL.md §2.3). When the inbound relay does
// not know a session it answers MTE_SESSION_UNKNOWN, and the outbound relay
// pairs anew and resends the request. Unauthenticated, that answer would let
// an on-path attacker drop the genuine response to a request the upstream
// already ran and make the outbound relay run it again. The inbound relay has
// lost the session but still holds the PSK, so it MACs the answer over the
// client id and the refused frame's tag:
//
//	proof = HMAC-SHA256(psk, "pqrelay v1 unknown session" || client id || tag)
//
// The tag is unique to one request, so a proof answers that request only.

// ProofLen is the length of an unknown-session proof.
const ProofLen = sha256.Size

const labelUnknownSession = "pqrelay v1 unknown session"

// AppendUnknownSessionProof appends the proof that the relay refused the
// frame with tag, sent under clientID, because it does not know the session.
func (s *Secrets) AppendUnknownSessionProof(dst []byte, clientID *ClientID, tag []byte) []byte {
	m := hmac.New(sha256.New, s.psk[:])
	m.Write([]byte(labelUnknownSession))
	m.Write(clientID[:])
	m.Write(tag)
	return m.Sum(dst)
}

// VerifyUnknownSessionProof checks a proof in constant time.
func (s *Secrets) VerifyUnknownSessionProof(clientID *ClientID, tag, proof []byte) bool {
	return hmac.Equal(s.AppendUnknownSessionProof(nil, clientID, tag), proof)
}
