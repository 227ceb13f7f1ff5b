package codec

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Envelope layout (docs/PROTOCOL.md §5). A request envelope:
//
//	method length  u8 (1..MaxMethodLen), method
//	uri length     u32, uri (origin-form "/..." or "*")
//	header count   u16
//	  name length  u16, name; value length u32, value   (count times)
//	body length    u32, body
//	padding        zero bytes up to PaddedLen (ModeMTE only)
//
// A response envelope starts with the status (u16, 100..999) instead of the
// method and URI; the rest is the same. Integers are big-endian. Fixed widths
// keep the decoder a handful of bounds checks and the spec one table.

// ErrEnvelope is returned for an envelope that does not decode. Envelopes
// arrive authenticated, so this means a peer bug, not an attacker; it is still
// checked with the same care.
var ErrEnvelope = errors.New("codec: malformed envelope")

// Limits of the envelope format.
const (
	MaxMethodLen = 32
	MaxHeaders   = 1<<16 - 1
	maxNameLen   = 1<<16 - 1
)

// Builder appends an envelope to a byte slice without allocating beyond the
// slice's growth. Use BeginRequest or BeginResponse, AddHeader per header,
// then Finish.
type Builder struct {
	buf     []byte
	start   int // offset of the envelope in buf
	countAt int // offset of the u16 header count
	count   int
}

// BeginRequest starts a request envelope at the end of dst.
func BeginRequest(dst []byte, method, uri []byte) Builder {
	if len(method) == 0 || len(method) > MaxMethodLen {
		panic("codec: method length out of range") // the HTTP parser bounds it
	}
	b := Builder{buf: dst, start: len(dst)}
	b.buf = append(b.buf, byte(len(method)))
	b.buf = append(b.buf, method...)
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(uri)))
	b.buf = append(b.buf, uri...)
	b.countAt = len(b.buf)
	b.buf = append(b.buf, 0, 0)
	return b
}

// BeginResponse starts a response envelope at the end of dst.
func BeginResponse(dst []byte, status int) Builder {
	b := Builder{buf: dst, start: len(dst)}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(status))
	b.countAt = len(b.buf)
	b.buf = append(b.buf, 0, 0)
	return b
}

// AddHeader appends one header field. It reports false, adding nothing, when
// the envelope already holds MaxHeaders fields or the name is too long.
func (b *Builder) AddHeader(name, value []byte) bool {
	if b.count == MaxHeaders || len(name) > maxNameLen {
		return false
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(len(name)))
	b.buf = append(b.buf, name...)
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(value)))
	b.buf = append(b.buf, value...)
	b.count++
	return true
}

// Finish appends the body and, in ModeMTE, the padding, and returns the
// whole slice (dst with the envelope appended).
func (b *Builder) Finish(body []byte, mode uint8) []byte {
	binary.BigEndian.PutUint16(b.buf[b.countAt:], uint16(b.count))
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(body)))
	b.buf = append(b.buf, body...)
	if mode == ModeMTE {
		n := len(b.buf) - b.start
		b.buf = appendZeros(b.buf, PaddedLen(n)-n)
	}
	return b.buf
}

func appendZeros(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		b = append(b[:cap(b)], make([]byte, len(b)+n-cap(b))...)[:len(b)]
	}
	b = b[:len(b)+n]
	clear(b[len(b)-n:])
	return b
}

// MTE size buckets: at least minBucket, then powers of two up to bigBucket,
// then multiples of bigBucket. An observer learns the bucket, not the size;
// the padding costs at most 2x below 1 MiB and under 1 MiB above.
const (
	minBucket = 256
	bigBucket = 1 << 20
)

// PaddedLen is the envelope length an MTE envelope of n bytes is padded to.
func PaddedLen(n int) int {
	switch {
	case n <= minBucket:
		return minBucket
	case n > bigBucket:
		return (n + bigBucket - 1) &^ (bigBucket - 1)
	default:
		return 1 << bits.Len(uint(n-1))
	}
}

// Request is a decoded request envelope. Its slices alias the envelope.
type Request struct {
	Method  []byte
	URI     []byte
	Headers Headers
	Body    []byte
}

// Response is a decoded response envelope. Its slices alias the envelope.
type Response struct {
	Status  int
	Headers Headers
	Body    []byte
}

// Headers is a validated header block; iterate it with Next.
type Headers struct {
	rest  []byte
	count int
}

// Len is the number of header fields.
func (h Headers) Len() int { return h.count }

// Next returns the next field and advances. ok is false after the last one.
// The block was validated when the envelope was parsed, so Next cannot fail.
func (h *Headers) Next() (name, value []byte, ok bool) {
	if h.count == 0 {
		return nil, nil, false
	}
	nl := int(binary.BigEndian.Uint16(h.rest))
	name = h.rest[2 : 2+nl]
	vl := int(binary.BigEndian.Uint32(h.rest[2+nl:]))
	value = h.rest[6+nl : 6+nl+vl]
	h.rest = h.rest[6+nl+vl:]
	h.count--
	return name, value, true
}

// ParseRequest decodes and validates a request envelope sealed in mode.
func ParseRequest(env []byte, mode uint8) (Request, error) {
	var r Request
	d := decoder{b: env}
	ml := int(d.u8())
	r.Method = d.bytes(ml)
	r.URI = d.bytes(int(d.u32()))
	if d.bad || ml == 0 || ml > MaxMethodLen || !validToken(r.Method) || !validURI(r.URI) {
		return Request{}, ErrEnvelope
	}
	var err error
	if r.Headers, r.Body, err = d.headersAndBody(env, mode); err != nil {
		return Request{}, err
	}
	return r, nil
}

// ParseResponse decodes and validates a response envelope sealed in mode.
func ParseResponse(env []byte, mode uint8) (Response, error) {
	var r Response
	d := decoder{b: env}
	r.Status = int(d.u16())
	if d.bad || r.Status < 100 || r.Status > 999 {
		return Response{}, ErrEnvelope
	}
	var err error
	if r.Headers, r.Body, err = d.headersAndBody(env, mode); err != nil {
		return Response{}, err
	}
	return r, nil
}

// decoder reads big-endian fields; once a read runs past the end it sets bad
// and returns zeros, so callers check bad once per group of reads.
type decoder struct {
	b   []byte
	off int
	bad bool
}

func (d *decoder) need(n int) bool {
	if d.bad || n < 0 || n > len(d.b)-d.off {
		d.bad = true
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	d.off += 2
	return binary.BigEndian.Uint16(d.b[d.off-2:])
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	d.off += 4
	return binary.BigEndian.Uint32(d.b[d.off-4:])
}

func (d *decoder) bytes(n int) []byte {
	if !d.need(n) {
		return nil
	}
	d.off += n
	return d.b[d.off-n : d.off : d.off]
}

func (d *decoder) headersAndBody(env []byte, mode uint8) (Headers, []byte, error) {
	count := int(d.u16())
	start := d.off
	for range count {
		name := d.bytes(int(d.u16()))
		value := d.bytes(int(d.u32()))
		if d.bad || !validToken(name) || !ValidHeaderValue(value) {
			return Headers{}, nil, ErrEnvelope
		}
	}
	h := Headers{rest: env[start:d.off], count: count}
	body := d.bytes(int(d.u32()))
	if d.bad {
		return Headers{}, nil, ErrEnvelope
	}
	padding := env[d.off:]
	switch mode {
	case ModeMKE:
		if len(padding) != 0 {
			return Headers{}, nil, ErrEnvelope
		}
	case ModeMTE:
		if len(env) != PaddedLen(d.off) || !allZero(padding) {
			return Headers{}, nil, ErrEnvelope
		}
	default:
		return Headers{}, nil, ErrEnvelope
	}
	return h, body, nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
