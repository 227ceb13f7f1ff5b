package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"slices"
	"sync"
)

// Frame layout (docs/PROTOCOL.md §4):
//
//	0      version   (1)
//	1      kind      (KindRequest or KindResponse)
//	2      mode      (ModeMKE or ModeMTE)
//	3      flags     (FlagHeadersInClear | FlagURLInClear; requests only)
//	4..11  counter   big-endian uint64, the message number in its session
//	12..19 requests:  timestamp, big-endian int64, Unix milliseconds at the sender
//	       responses: responder, big-endian uint32, then 4 zero bytes
//	20..   AES-256-GCM ciphertext of the envelope, 16-byte tag last
//
// The whole header is additional data, so none of it can be changed in
// flight without the frame failing to open.
const (
	Version   = 1
	HeaderLen = 20
	TagLen    = 16
	// Overhead is what sealing adds to an envelope.
	Overhead = HeaderLen + TagLen
)

// Frame kinds.
const (
	KindRequest  = 1
	KindResponse = 2
)

// Encode types (docs/ARCHITECTURE.md §5, docs/PROTOCOL.md §5.3).
const (
	// ModeMKE seals every message of a session with the session's
	// direction key.
	ModeMKE = 1
	// ModeMTE derives a fresh key per message from the session and pads the
	// envelope to a size bucket, so one exposed message key exposes one
	// message and lengths leak only their bucket.
	ModeMTE = 2
)

// Request flags: what also travels in clear, outside the frame, so that L7
// load balancers can route on it. The sealed copy is the one the inbound
// relay uses.
const (
	FlagHeadersInClear = 1 << 0
	FlagURLInClear     = 1 << 1
	knownFlags         = FlagHeadersInClear | FlagURLInClear
)

// ErrFrame is the one error for a frame that does not parse or authenticate.
// It deliberately says nothing more: fail closed, tell the peer nothing.
var ErrFrame = errors.New("codec: frame rejected")

// Header is the clear part of a frame.
type Header struct {
	Kind    uint8
	Mode    uint8
	Flags   uint8
	Counter uint64
	// Time is a request's Unix milliseconds; responses carry none.
	Time int64
	// Responder is, in a response, the responding relay's random id, part
	// of the response nonce (docs/PROTOCOL.md §4.1): two replicas that both
	// answer one replayed request still never reuse a nonce.
	Responder uint32
}

// AppendHeader appends the 20-byte encoding of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Version, h.Kind, h.Mode, h.Flags)
	dst = binary.BigEndian.AppendUint64(dst, h.Counter)
	if h.Kind == KindResponse {
		dst = binary.BigEndian.AppendUint32(dst, h.Responder)
		return append(dst, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(h.Time))
}

// ParseHeader decodes the clear header of frame. It checks the version, kind,
// mode and flags, and that a tag can follow; it authenticates nothing.
func ParseHeader(frame []byte) (Header, error) {
	if len(frame) < Overhead {
		return Header{}, ErrFrame
	}
	return parseHeader(frame)
}

// parseHeader decodes frame[:HeaderLen]; len(frame) >= HeaderLen.
func parseHeader(frame []byte) (Header, error) {
	if frame[0] != Version {
		return Header{}, ErrFrame
	}
	h := Header{
		Kind:    frame[1],
		Mode:    frame[2],
		Flags:   frame[3],
		Counter: binary.BigEndian.Uint64(frame[4:12]),
	}
	if h.Kind == KindResponse {
		h.Responder = binary.BigEndian.Uint32(frame[12:16])
	} else {
		h.Time = int64(binary.BigEndian.Uint64(frame[12:20]))
	}
	switch {
	case h.Kind != KindRequest && h.Kind != KindResponse,
		h.Mode != ModeMKE && h.Mode != ModeMTE,
		h.Flags&^knownFlags != 0,
		h.Kind == KindResponse && (h.Flags != 0 || binary.BigEndian.Uint32(frame[16:20]) != 0):
		return Header{}, ErrFrame
	}
	return h, nil
}

// KeyLen is the length of every key the codec takes.
const KeyLen = 32

// Keys seals or opens one direction of a session (requests or responses).
// A Keys is safe for concurrent use: the MKE AEAD is stateless and MTE keys
// are derived per message.
type Keys struct {
	mke    cipher.AEAD
	mteKey [KeyLen]byte // HKDF PRK from which per-message MTE keys expand
	mte    sync.Pool    // of *mteDeriver keyed with mteKey
}

// NewKeys returns the keys of one direction. mke is the AES-256-GCM key used
// in MKE mode; mte is the base from which MTE message keys are derived.
func NewKeys(mke, mte []byte) *Keys {
	if len(mke) != KeyLen || len(mte) != KeyLen {
		panic("codec: key length must be 32")
	}
	k := &Keys{mke: newGCM(mke)}
	copy(k.mteKey[:], mte)
	k.mte.New = func() any { return &mteDeriver{mac: hmac.New(sha256.New, k.mteKey[:])} }
	return k
}

// String keeps key material out of logs: without it, printing a *Keys with
// %v or %x (a Session's exported Request and Response fields) would print
// the MTE base key.
func (*Keys) String() string { return "codec.Keys{redacted}" }

// GoString is String for %#v.
func (k *Keys) GoString() string { return k.String() }

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("codec: " + err.Error()) // only a wrong key length gets here
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("codec: " + err.Error())
	}
	return aead
}

// aeadFor returns the AEAD that seals message counter of kind in mode. MTE
// keys are HKDF-Expand(mteKey, "pqrelay v1 mte" || kind || counter, 32): one
// message key opens one message and nothing else.
func (k *Keys) aeadFor(mode, kind uint8, counter uint64) cipher.AEAD {
	if mode == ModeMKE {
		return k.mke
	}
	d := k.mte.Get().(*mteDeriver)
	defer k.mte.Put(d)
	return newGCM(d.messageKey(kind, counter))
}

// mteDeriver computes MTE message keys with an HMAC keyed once. HKDF-Expand
// of a single 32-byte block is T(1) = HMAC(prk, info || 0x01) (RFC 5869
// §2.3), so this is hkdf.Expand without its per-call allocations; the
// known-answer tests pin the two to the same bytes.
type mteDeriver struct {
	mac hash.Hash
	buf [len(mteLabel) + 9 + 1]byte // info || 0x01
	key [sha256.Size]byte
}

func (d *mteDeriver) messageKey(kind uint8, counter uint64) []byte {
	copy(d.buf[:], mteLabel)
	d.buf[len(mteLabel)] = kind
	binary.BigEndian.PutUint64(d.buf[len(mteLabel)+1:], counter)
	d.buf[len(d.buf)-1] = 1
	d.mac.Reset()
	d.mac.Write(d.buf[:])
	return d.mac.Sum(d.key[:0])
}

const mteLabel = "pqrelay v1 mte"

// Binding lengths.
const (
	ClientIDLen = 40
	// BindLen is the length of the request tag a response is bound to.
	BindLen = TagLen
)

// frameScratch holds the nonce and additional data of one Seal or Open.
// Passed to the AEAD through the cipher.AEAD interface, arrays on the stack
// escape to the heap: two allocations per frame on a hot path that must
// allocate nothing (docs/ARCHITECTURE.md §4.1). They come from a pool instead.
type frameScratch struct {
	nonce [12]byte
	ad    [HeaderLen + ClientIDLen + BindLen]byte
}

var scratchPool = sync.Pool{New: func() any { return new(frameScratch) }}

// getScratch returns a pooled scratch holding, for the frame whose header is
// header[:HeaderLen]:
//
//	request nonce  = kind (1) || 0 0 0 || counter
//	response nonce = responder id (4)   || counter
//	ad             = header || clientID || bind (16 zero bytes when bind is empty)
//
// Request counters never repeat within a session (the sender's atomic
// counter). A response reuses its request's counter, which each relay's
// replay window accepts once; the responder id, random per relay process,
// keeps two replicas that both accepted one replayed request (a shared
// window that failed or was bypassed during a Redis outage) from sealing
// two responses under one nonce (docs/PROTOCOL.md §6.3). The additional data makes a frame open only under the client id it was sealed
// for, and a response only for the request whose tag it names
// (docs/PROTOCOL.md §4.2). Return the scratch with scratchPool.Put.
func getScratch(header []byte, kind uint8, counter uint64, clientID, bind []byte) *frameScratch {
	if len(clientID) != ClientIDLen || (len(bind) != 0 && len(bind) != BindLen) {
		panic("codec: bad client id or binding length")
	}
	s := scratchPool.Get().(*frameScratch)
	if kind == KindResponse {
		copy(s.nonce[:4], header[12:16]) // the responder id
	} else {
		s.nonce = [12]byte{kind}
	}
	binary.BigEndian.PutUint64(s.nonce[4:], counter)
	copy(s.ad[:], header[:HeaderLen])
	copy(s.ad[HeaderLen:], clientID)
	if len(bind) == 0 {
		clear(s.ad[HeaderLen+ClientIDLen:]) // a pooled scratch holds the last binding
	} else {
		copy(s.ad[HeaderLen+ClientIDLen:], bind)
	}
	return s
}

// Seal seals frame in place and returns it with the tag appended. On entry
// frame holds a header written by AppendHeader followed by the plaintext
// envelope. bind is empty for requests and the request's tag for responses.
func Seal(frame []byte, k *Keys, clientID, bind []byte) []byte {
	if len(frame) < HeaderLen {
		panic("codec: Seal given a frame without a header")
	}
	h, err := parseHeader(frame)
	if err != nil {
		panic("codec: Seal given a frame with an invalid header")
	}
	frame = slices.Grow(frame, TagLen) // so that Seal works in place
	s := getScratch(frame, h.Kind, h.Counter, clientID, bind)
	plain := frame[HeaderLen:]
	sealed := k.aeadFor(h.Mode, h.Kind, h.Counter).Seal(plain[:0], s.nonce[:], plain, s.ad[:])
	scratchPool.Put(s)
	return frame[:HeaderLen+len(sealed)]
}

// Open authenticates and decrypts frame in place and returns the envelope,
// which aliases frame. Any failure returns ErrFrame and zeroes what was
// decrypted, so no unauthenticated plaintext escapes.
func Open(frame []byte, h Header, k *Keys, clientID, bind []byte) ([]byte, error) {
	if len(frame) < Overhead {
		return nil, ErrFrame
	}
	s := getScratch(frame, h.Kind, h.Counter, clientID, bind)
	body := frame[HeaderLen:]
	env, err := k.aeadFor(h.Mode, h.Kind, h.Counter).Open(body[:0], s.nonce[:], body, s.ad[:])
	scratchPool.Put(s)
	if err != nil {
		clear(body)
		return nil, ErrFrame
	}
	return env, nil
}

// Tag returns the authentication tag of a sealed frame: the value a response
// binds to.
func Tag(frame []byte) []byte { return frame[len(frame)-TagLen:] }
