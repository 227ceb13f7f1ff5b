package link

import (
	"encoding/binary"
	"errors"
)

// Link frame layout (docs/PROTOCOL.md §10.2):
//
//	0      type      (TypeRequest … TypeGoAway)
//	1      flags     (FlagMore on request and response fragments only)
//	2..3   reserved, zero
//	4..7   length    big-endian uint32, the payload's length
//	8..15  id        big-endian uint64, the message this frame belongs to
//	16..   payload
//
// The link adds no cryptography: what it carries is sealed frames, each
// authenticated on its own (docs/PROTOCOL.md §4), so the worst a forged or
// altered link frame can do is end the connection or be refused like any
// frame that does not open.

// ErrProtocol is the one error for bytes that break the link format: the
// connection ends and nothing it carried is trusted.
var ErrProtocol = errors.New("link: protocol violation")

// Header is a link frame's header.
type Header struct {
	Type   uint8
	Flags  uint8
	Length uint32
	ID     uint64
}

// Receiving sides: which frame types each side accepts.
const (
	fromClient = 1<<TypeRequest | 1<<TypePing | 1<<TypePong
	fromServer = 1<<TypeResponse | 1<<TypeRefusal | 1<<TypePing | 1<<TypePong | 1<<TypeGoAway
)

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, h.Type, h.Flags, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, h.Length)
	return binary.BigEndian.AppendUint64(dst, h.ID)
}

// ParseHeader decodes and checks the header at the start of b
// (len(b) >= HeaderLen) as received by a side that accepts the types in
// the bit set accept. It checks everything the header alone decides:
// the type, the flags it allows, zero reserved bytes, and the payload
// length the type requires.
func ParseHeader(b []byte, accept uint) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrProtocol
	}
	h := Header{
		Type:   b[0],
		Flags:  b[1],
		Length: binary.BigEndian.Uint32(b[4:8]),
		ID:     binary.BigEndian.Uint64(b[8:16]),
	}
	if h.Type > TypeGoAway || accept&(1<<h.Type) == 0 || b[2] != 0 || b[3] != 0 {
		return Header{}, ErrProtocol
	}
	switch h.Type {
	case TypeRequest, TypeResponse:
		// Canonical fragmentation: every fragment but the last is full,
		// and no message is empty.
		ok := h.Flags == 0 && h.Length >= 1 && h.Length <= MaxFragment ||
			h.Flags == FlagMore && h.Length == MaxFragment
		if !ok {
			return Header{}, ErrProtocol
		}
	case TypeRefusal:
		if h.Flags != 0 || h.Length < 2 || h.Length > 1+MaxCodeLen+ProofLen {
			return Header{}, ErrProtocol
		}
	case TypeGoAway:
		if h.Flags != 0 || h.Length != 0 || h.ID != 0 {
			return Header{}, ErrProtocol
		}
	default: // ping, pong
		if h.Flags != 0 || h.Length != 0 {
			return Header{}, ErrProtocol
		}
	}
	return h, nil
}

// AppendRefusal appends a refusal's payload: the relay error code and, for
// an unknown session, the proof. code must be 1 to MaxCodeLen characters
// of A–Z, 0–9 and _, and proof empty or ProofLen bytes: anything else is a
// programmer's mistake and panics.
func AppendRefusal(dst []byte, code string, proof []byte) []byte {
	if !validCode(code) || len(proof) != 0 && len(proof) != ProofLen {
		panic("link: malformed refusal")
	}
	dst = append(dst, byte(len(code)))
	dst = append(dst, code...)
	return append(dst, proof...)
}

// ParseRefusal decodes a refusal's payload. code and proof alias payload.
func ParseRefusal(payload []byte) (code, proof []byte, err error) {
	if len(payload) < 2 {
		return nil, nil, ErrProtocol
	}
	n := int(payload[0])
	if n < 1 || n > MaxCodeLen || len(payload) != 1+n && len(payload) != 1+n+ProofLen {
		return nil, nil, ErrProtocol
	}
	code, proof = payload[1:1+n], payload[1+n:]
	if !validCode(string(code)) {
		return nil, nil, ErrProtocol
	}
	return code, proof, nil
}

func validCode(code string) bool {
	if len(code) < 1 || len(code) > MaxCodeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// fragments is how many link frames carry a message of n bytes (n >= 1).
func fragments(n int) int { return (n + MaxFragment - 1) / MaxFragment }
