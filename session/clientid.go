package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Client id layout (docs/PROTOCOL.md §3.3): a random id, the issue time and
// an HMAC over both under a key derived from CLIENT_ID_SECRET, sent as
// unpadded base64url in x-mte-client-id.
//
//	0..15  id        random
//	16..23 issuedAt  big-endian Unix seconds
//	24..39 mac       HMAC-SHA256(clientIDKey, label || id || issuedAt)[:16]
const (
	IDLen         = 16
	ClientIDLen   = 40
	ClientIDChars = 54 // base64url without padding
)

// ID is the random part of a client id: the key stores index sessions by.
type ID [IDLen]byte

// ClientID is a whole signed client id.
type ClientID [ClientIDLen]byte

// ErrClientID is returned for a client id that is malformed or not signed by
// a relay holding the same CLIENT_ID_SECRET.
var ErrClientID = errors.New("session: invalid client id")

// ID returns the random part, the session's key in a Store.
func (c *ClientID) ID() ID { return ID(c[:IDLen]) }

// IssuedAt returns when the inbound relay issued the id.
func (c *ClientID) IssuedAt() time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(c[IDLen:24])), 0)
}

// clientIDEncoding is unpadded base64url in strict mode: the 4 unused low
// bits of the last character must be zero, so each client id has exactly one
// header form and nothing downstream (logs, caches, load-balancer stickiness
// on the header) sees 16 spellings of one id.
var clientIDEncoding = base64.RawURLEncoding.Strict()

// AppendText appends the header form of c.
func (c *ClientID) AppendText(dst []byte) []byte {
	return clientIDEncoding.AppendEncode(dst, c[:])
}

// Equal compares two client ids in constant time.
func (c *ClientID) Equal(o *ClientID) bool { return subtle.ConstantTimeCompare(c[:], o[:]) == 1 }

// ParseClientID decodes the header form without checking the signature: on
// the hot path the inbound relay compares it in constant time with the id
// stored in the session, which is cheaper than an HMAC. Use VerifyClientID
// before any lookup that costs more than a map access.
func ParseClientID(text []byte) (ClientID, error) {
	var c ClientID
	if len(text) != ClientIDChars {
		return c, ErrClientID
	}
	if n, err := clientIDEncoding.Decode(c[:], text); err != nil || n != ClientIDLen {
		return ClientID{}, ErrClientID
	}
	return c, nil
}

func (s *Secrets) clientIDMAC(c *ClientID) []byte {
	m := hmac.New(sha256.New, s.clientID[:])
	m.Write([]byte(clientIDLabel))
	m.Write(c[:24])
	return m.Sum(nil)[:16]
}

const clientIDLabel = "pqrelay v1 client id"

// NewClientID issues a signed client id with a fresh random id.
func (s *Secrets) NewClientID(id ID, now time.Time) ClientID {
	var c ClientID
	copy(c[:], id[:])
	binary.BigEndian.PutUint64(c[IDLen:], uint64(now.Unix()))
	copy(c[24:], s.clientIDMAC(&c))
	return c
}

// VerifyClientID checks c's signature in constant time.
func (s *Secrets) VerifyClientID(c *ClientID) error {
	if subtle.ConstantTimeCompare(s.clientIDMAC(c), c[24:]) != 1 {
		return ErrClientID
	}
	return nil
}
