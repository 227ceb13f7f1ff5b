package session

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// MinSecretLen is the shortest CLIENT_ID_SECRET accepted (docs/ARCHITECTURE.md §6).
const MinSecretLen = 32

// ErrShortSecret is returned for a CLIENT_ID_SECRET under MinSecretLen bytes.
var ErrShortSecret = errors.New("session: CLIENT_ID_SECRET must be at least 32 characters")

// Secrets are the long-term keys both relays of a pair derive from the same
// CLIENT_ID_SECRET (docs/PROTOCOL.md §3.1). Each key has one job.
type Secrets struct {
	psk      [32]byte // pairing MACs and the session key schedule's salt
	clientID [32]byte // HMAC of issued client ids
	atRest   [32]byte // seals sessions kept in a Store
}

// NewSecrets derives the relay's keys from CLIENT_ID_SECRET with HKDF-SHA256.
func NewSecrets(clientIDSecret string) (*Secrets, error) {
	if len(clientIDSecret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	prk, err := hkdf.Extract(sha256.New, []byte(clientIDSecret), []byte(secretSalt))
	if err != nil {
		return nil, err
	}
	s := new(Secrets)
	for _, k := range []struct {
		dst   *[32]byte
		label string
	}{
		{&s.psk, "pqrelay v1 psk"},
		{&s.clientID, "pqrelay v1 client id"},
		{&s.atRest, "pqrelay v1 at rest"},
	} {
		b, err := hkdf.Expand(sha256.New, prk, k.label, 32)
		if err != nil {
			return nil, err
		}
		copy(k.dst[:], b)
	}
	return s, nil
}

const secretSalt = "pqrelay v1 client id secret"

// String keeps secrets out of logs even if a Secrets is printed by mistake.
func (*Secrets) String() string { return "session.Secrets{redacted}" }

// GoString is String for %#v.
func (s *Secrets) GoString() string { return s.String() }
