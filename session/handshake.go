package session

import (
	"crypto/fips140"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Pairing (docs/PROTOCOL.md §3.2). The outbound relay A sends a PairRequest
// holding a fresh hybrid KEM public key; the inbound relay B encapsulates to
// it, issues a client id and answers with a PairResponse. Both messages carry
// an HMAC under the PSK, so only relays sharing CLIENT_ID_SECRET can pair;
// the PSK is also the salt of the key schedule, so a session's keys need the
// KEM secret and the PSK. A's key is used once and B's encapsulation is
// randomized: both sides are ephemeral, so later leaks of CLIENT_ID_SECRET
// do not open recorded sessions.
//
// PairRequest:  version u8 | suite u8 | 0 u16 | time u64 ms | public key | mac [32]
// PairResponse: version u8 | suite u8 | 0 u16 | expires u64 ms | client id [40] | enc | mac [32]

// Suite names the hybrid KEM of a session.
type Suite uint8

const (
	// SuiteMLKEM768X25519 is X-Wing: safe while either ML-KEM-768 or X25519 holds.
	SuiteMLKEM768X25519 Suite = 1
	// SuiteMLKEM768P256 replaces X25519 by P-256 for FIPS 140-3 mode, where
	// X25519 is not an approved algorithm.
	SuiteMLKEM768P256 Suite = 2
)

// DefaultSuite is the suite this process offers: X-Wing, or the P-256 hybrid
// when Go's FIPS 140-3 mode is on.
func DefaultSuite() Suite {
	if fips140.Enabled() {
		return SuiteMLKEM768P256
	}
	return SuiteMLKEM768X25519
}

func (s Suite) String() string {
	switch s {
	case SuiteMLKEM768X25519:
		return "MLKEM768-X25519"
	case SuiteMLKEM768P256:
		return "MLKEM768-P256"
	}
	return "unknown"
}

// params returns the KEM and the sizes of its public key and encapsulation;
// ok is false for an unknown suite or one this process must refuse.
func (s Suite) params() (kem hpke.KEM, pkLen, encLen int, ok bool) {
	switch {
	case s == SuiteMLKEM768X25519 && !fips140.Enabled():
		return hpke.MLKEM768X25519(), 1216, 1120, true
	case s == SuiteMLKEM768P256:
		return hpke.MLKEM768P256(), 1249, 1153, true
	}
	return nil, 0, 0, false
}

const (
	pairVersion   = 1
	pairHeaderLen = 12 // version, suite, reserved, time or expiry
	macLen        = 32
)

// PairRequestLen and PairResponseLen are the exact message sizes of a suite.
func PairRequestLen(s Suite) int {
	_, pk, _, _ := s.params()
	return pairHeaderLen + pk + macLen
}

// PairResponseLen is the exact size of a PairResponse of suite s.
func PairResponseLen(s Suite) int {
	_, _, enc, _ := s.params()
	return pairHeaderLen + ClientIDLen + enc + macLen
}

// ErrPair is the one error for a pairing message that does not verify: wrong
// size, unknown suite, bad MAC (different CLIENT_ID_SECRET), stale time.
var ErrPair = errors.New("session: pairing refused")

// Why ConsumePairRequest refused, for the inbound relay's own log. Each
// wraps ErrPair (errors.Is); the peer is only ever told ErrPair.
var (
	ErrPairMalformed = fmt.Errorf("%w: malformed or unsupported (version, suite, length or key)", ErrPair)
	ErrPairSecret    = fmt.Errorf("%w: the MAC does not verify (the relays' CLIENT_ID_SECRET differ)", ErrPair)
	ErrPairClock     = fmt.Errorf("%w: the request's time is more than 60 s from this relay's clock", ErrPair)
)

// Initiator is the outbound relay's side of one pairing attempt.
type Initiator struct {
	secrets *Secrets
	suite   Suite
	key     hpke.PrivateKey
	request []byte
}

// CreatePairRequest starts a pairing with a fresh ephemeral key.
func (s *Secrets) CreatePairRequest(suite Suite, now time.Time) (*Initiator, error) {
	kem, _, _, ok := suite.params()
	if !ok {
		return nil, ErrPair
	}
	key, err := kem.GenerateKey()
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, PairRequestLen(suite))
	msg = append(msg, pairVersion, byte(suite), 0, 0)
	msg = binary.BigEndian.AppendUint64(msg, uint64(now.UnixMilli()))
	msg = append(msg, key.PublicKey().Bytes()...)
	msg = s.appendMAC(msg, labelPairRequest, nil, msg)
	return &Initiator{secrets: s, suite: suite, key: key, request: msg}, nil
}

// Request is the PairRequest to send.
func (i *Initiator) Request() []byte { return i.request }

const (
	labelPairRequest  = "pqrelay v1 pair request"
	labelPairResponse = "pqrelay v1 pair response"
	labelHPKEInfo     = "pqrelay v1 pair"
	labelExport       = "pqrelay v1 session"
)

func (s *Secrets) appendMAC(dst []byte, label string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.psk[:])
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(dst)
}

func (s *Secrets) checkMAC(msg []byte, label string, prefix []byte) bool {
	body, mac := msg[:len(msg)-macLen], msg[len(msg)-macLen:]
	return hmac.Equal(s.appendMAC(nil, label, prefix, body), mac)
}

func checkTime(ms uint64, now time.Time) bool {
	d := now.Sub(time.UnixMilli(int64(ms)))
	return d <= MaxClockSkew && d >= -MaxClockSkew
}

// ConsumePairRequest verifies a PairRequest and answers it: it returns the
// PairResponse and the inbound session, which expires after lifetime.
func (s *Secrets) ConsumePairRequest(req []byte, now time.Time, lifetime time.Duration) ([]byte, *Session, error) {
	if len(req) < pairHeaderLen || req[0] != pairVersion || req[2] != 0 || req[3] != 0 {
		return nil, nil, ErrPairMalformed
	}
	suite := Suite(req[1])
	kem, pkLen, _, ok := suite.params()
	switch {
	case !ok || len(req) != PairRequestLen(suite):
		return nil, nil, ErrPairMalformed
	case !s.checkMAC(req, labelPairRequest, nil):
		return nil, nil, ErrPairSecret
	case !checkTime(binary.BigEndian.Uint64(req[4:12]), now):
		return nil, nil, ErrPairClock
	}
	pk, err := kem.NewPublicKey(req[pairHeaderLen : pairHeaderLen+pkLen])
	if err != nil {
		return nil, nil, ErrPairMalformed
	}
	enc, sender, err := hpke.NewSender(pk, hpke.HKDFSHA256(), hpke.ExportOnly(), hpkeInfo(suite))
	if err != nil {
		return nil, nil, ErrPair
	}
	shared, err := sender.Export(labelExport, 32)
	if err != nil {
		return nil, nil, err
	}
	var id ID
	rand.Read(id[:])
	clientID := s.NewClientID(id, now)
	expires := now.Add(lifetime)

	resp := make([]byte, 0, PairResponseLen(suite))
	resp = append(resp, pairVersion, byte(suite), 0, 0)
	resp = binary.BigEndian.AppendUint64(resp, uint64(expires.UnixMilli()))
	resp = append(resp, clientID[:]...)
	resp = append(resp, enc...)
	sess, err := s.newSession(suite, clientID, shared, req, resp, now, expires)
	if err != nil {
		return nil, nil, err
	}
	resp = s.appendMAC(resp, labelPairResponse, req, resp)
	return resp, sess, nil
}

func hpkeInfo(suite Suite) []byte { return append([]byte(labelHPKEInfo), byte(suite)) }

// ConsumePairResponse verifies B's answer and returns the outbound session.
func (i *Initiator) ConsumePairResponse(resp []byte, now time.Time) (*Session, error) {
	_, _, encLen, _ := i.suite.params()
	if len(resp) != PairResponseLen(i.suite) || resp[0] != pairVersion || Suite(resp[1]) != i.suite ||
		resp[2] != 0 || resp[3] != 0 || !i.secrets.checkMAC(resp, labelPairResponse, i.request) {
		return nil, ErrPair
	}
	expires := time.UnixMilli(int64(binary.BigEndian.Uint64(resp[4:12])))
	if lifetime := expires.Sub(now); lifetime < MinLifetime-MaxClockSkew || lifetime > MaxLifetime+MaxClockSkew {
		return nil, ErrPair
	}
	clientID := ClientID(resp[pairHeaderLen : pairHeaderLen+ClientIDLen])
	enc := resp[pairHeaderLen+ClientIDLen : pairHeaderLen+ClientIDLen+encLen]
	r, err := hpke.NewRecipient(enc, i.key, hpke.HKDFSHA256(), hpke.ExportOnly(), hpkeInfo(i.suite))
	if err != nil {
		return nil, ErrPair
	}
	shared, err := r.Export(labelExport, 32)
	if err != nil {
		return nil, err
	}
	return i.secrets.newSession(i.suite, clientID, shared, i.request, resp[:len(resp)-macLen], now, expires)
}

// Session key labels: one key per direction and encode type.
var keyLabels = [numKeys]string{
	"pqrelay v1 request mke", "pqrelay v1 request mte",
	"pqrelay v1 response mke", "pqrelay v1 response mte",
}

// deriveKeys is the session key schedule (docs/PROTOCOL.md §3.4):
//
//	th   = SHA-256(PairRequest || PairResponse without its MAC)
//	prk  = HKDF-Extract(SHA-256, salt = psk, ikm = shared)
//	k[i] = HKDF-Expand(prk, label[i] || th, 32)
//
// shared is the HPKE exporter secret of the KEM exchange. Binding th makes
// the keys depend on every byte both relays saw, the client id included.
func (s *Secrets) deriveKeys(shared, request, response []byte) ([numKeys][32]byte, error) {
	var keys [numKeys][32]byte
	h := sha256.New()
	h.Write(request)
	h.Write(response)
	th := h.Sum(nil)
	prk, err := hkdf.Extract(sha256.New, shared, s.psk[:])
	if err != nil {
		return keys, err
	}
	for i, label := range keyLabels {
		k, err := hkdf.Expand(sha256.New, prk, label+string(th), 32)
		if err != nil {
			return keys, err
		}
		copy(keys[i][:], k)
	}
	return keys, nil
}
