package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"
)

// Sessions at rest (docs/PROTOCOL.md §7). A shared store
// keeps a session as AES-256-GCM(atRestKey, random nonce, state, ad = label ||
// id); a dump of the store alone reveals no key material, and a blob moved
// to another id does not open.
//
//	state: version u8 | suite u8 | client id [40] | created i64 ms | expires i64 ms | keys [4][32]
//	blob:  nonce [12] | ciphertext of state | tag [16]

const (
	atRestVersion  = 1
	stateLen       = 2 + ClientIDLen + 8 + 8 + numKeys*32
	atRestNonceLen = 12
	// SealedSessionLen is the exact size of a sealed session.
	SealedSessionLen = atRestNonceLen + stateLen + 16
	atRestLabel      = "pqrelay v1 session at rest"
)

// ErrSealedSession is returned for a stored session that does not open.
var ErrSealedSession = errors.New("session: stored session does not open")

func (s *Secrets) atRestAEAD() cipher.AEAD {
	block, _ := aes.NewCipher(s.atRest[:])
	aead, _ := cipher.NewGCM(block)
	return aead
}

func atRestAD(id ID) []byte { return append([]byte(atRestLabel), id[:]...) }

// SealSession returns sess sealed for a shared store.
func (s *Secrets) SealSession(sess *Session) []byte {
	state := make([]byte, 0, stateLen)
	state = append(state, atRestVersion, byte(sess.Suite))
	state = append(state, sess.ClientID[:]...)
	state = binary.BigEndian.AppendUint64(state, uint64(sess.Created.UnixMilli()))
	state = binary.BigEndian.AppendUint64(state, uint64(sess.Expires.UnixMilli()))
	for i := range sess.keys {
		state = append(state, sess.keys[i][:]...)
	}
	out := make([]byte, atRestNonceLen, SealedSessionLen)
	rand.Read(out)
	out = s.atRestAEAD().Seal(out, out[:atRestNonceLen], state, atRestAD(sess.ClientID.ID()))
	clear(state)
	return out
}

// OpenSession opens a blob made by SealSession for id. The session comes
// back with an empty replay window: shared stores keep replay state apart.
func (s *Secrets) OpenSession(id ID, blob []byte) (*Session, error) {
	if len(blob) != SealedSessionLen {
		return nil, ErrSealedSession
	}
	state, err := s.atRestAEAD().Open(nil, blob[:atRestNonceLen], blob[atRestNonceLen:], atRestAD(id))
	if err != nil || state[0] != atRestVersion {
		return nil, ErrSealedSession
	}
	defer clear(state)
	suite := Suite(state[1])
	if _, _, _, ok := suite.params(); !ok {
		return nil, ErrSealedSession
	}
	clientID := ClientID(state[2 : 2+ClientIDLen])
	if clientID.ID() != id {
		return nil, ErrSealedSession
	}
	off := 2 + ClientIDLen
	created := time.UnixMilli(int64(binary.BigEndian.Uint64(state[off:])))
	expires := time.UnixMilli(int64(binary.BigEndian.Uint64(state[off+8:])))
	off += 16
	var keys [numKeys][32]byte
	for i := range keys {
		copy(keys[i][:], state[off+i*32:])
	}
	return sessionFromKeys(suite, clientID, keys, created, expires), nil
}
