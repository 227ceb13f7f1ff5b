package upsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Label is the RFC 9421 signature label the relay signs under: the key of
// its entries in Signature-Input and Signature.
const Label = "pqrelay"

type scheme uint8

const (
	cavage scheme = iota + 1
	rfc9421
)

// Signer signs upstream requests under one configuration. It is safe for
// concurrent use.
type Signer struct {
	scheme scheme
	alg    algorithm
	maxAge time.Duration
	// macs holds hmac states keyed with the secret: Reset returns one to
	// its keyed state without hashing the key again.
	macs sync.Pool
	key  crypto.Signer
	bufs sync.Pool // *buffers

	// cavage
	cavage      []cavageItem
	header      string // Authorization or Signature
	prefix      []byte // [Signature ]keyId="…",algorithm="…",headers="
	queryEscape bool

	// rfc9421
	components []component
	params     []byte // ;keyid="…";alg="…"
}

// buffers are one request's scratch space.
type buffers struct {
	base    []byte // signing string (cavage) or signature base (rfc9421)
	list    []byte // covered items: the headers parameter or the inner list
	sig     []byte
	text    []byte
	out     []byte
	scratch []byte
}

// untrusted are the headers a request may carry that only the signer may
// set: whatever the app sent under these names is removed before signing,
// so the upstream never mistakes an app's value for the relay's.
var untrusted = []string{"Signature", "Signature-Input", "Digest", "Content-Digest"}

// Sign signs req, the request about to be sent to the upstream with nothing
// left to change, at time now. It removes the untrusted headers (and
// Authorization when that carries the cavage signature), adds Date if
// absent, a body digest if there is a body, and the signature headers. The
// error, from an asymmetric key only, means req must not be sent.
func (s *Signer) Sign(req *fasthttp.Request, now time.Time) error {
	h := &req.Header
	for _, name := range untrusted {
		h.Del(name)
	}
	if s.header == "Authorization" {
		h.Del("Authorization")
	}
	b := s.bufs.Get().(*buffers)
	defer s.bufs.Put(b)

	if len(h.Peek(fasthttp.HeaderDate)) == 0 {
		b.text = fasthttp.AppendHTTPDate(b.text[:0], now)
		h.SetBytesV(fasthttp.HeaderDate, b.text)
	}
	m := newMessage(req)
	if len(m.body) > 0 {
		sum := sha256.Sum256(m.body)
		if s.scheme == cavage {
			b.text = base64.StdEncoding.AppendEncode(append(b.text[:0], "SHA-256="...), sum[:])
			h.SetBytesV("Digest", b.text)
		} else {
			b.text = base64.StdEncoding.AppendEncode(append(b.text[:0], "sha-256=:"...), sum[:])
			b.text = append(b.text, ':')
			h.SetBytesV("Content-Digest", b.text)
		}
	}
	if s.scheme == cavage {
		s.cavageString(b, &m)
		if err := s.sign(b); err != nil {
			return err
		}
		h.SetBytesV(s.header, s.cavageValue(b))
		return nil
	}
	s.signatureBase(b, &m, now)
	if err := s.sign(b); err != nil {
		return err
	}
	b.out = append(append(append(b.out[:0], Label...), '='), b.text...)
	h.SetBytesV("Signature-Input", b.out)
	b.out = append(append(b.out[:0], Label...), "=:"...)
	b.out = append(base64.StdEncoding.AppendEncode(b.out, b.sig), ':')
	h.SetBytesV("Signature", b.out)
	return nil
}

// message is what fasthttp will send, read the way Request.Write reads it:
// the request target from the parsed URI, and the host from the URI unless
// the request keeps its own Host (UseHostHeader, or special-header handling
// off, where the Host field in the list is the one written).
type message struct {
	req        *fasthttp.Request
	method     []byte
	scheme     []byte
	host       []byte
	requestURI []byte
	body       []byte
}

func newMessage(req *fasthttp.Request) message {
	uri := req.URI()
	host := req.Header.Host()
	if len(host) == 0 || !req.UseHostHeader {
		req.Header.SetHostBytes(uri.Host())
		host = req.Header.Host()
	}
	return message{
		req: req, method: req.Header.Method(), scheme: uri.Scheme(), host: host,
		requestURI: uri.RequestURI(), body: req.Body(),
	}
}

func (m *message) path() []byte {
	if i := bytes.IndexByte(m.requestURI, '?'); i >= 0 {
		return m.requestURI[:i]
	}
	return m.requestURI
}

// query returns the query without its "?", and whether there is one.
func (m *message) query() ([]byte, bool) {
	if i := bytes.IndexByte(m.requestURI, '?'); i >= 0 {
		return m.requestURI[i+1:], true
	}
	return nil, false
}

// appendField appends the value of the header named name (lower case) as
// it will be sent: repeated fields joined by ", ", each trimmed of
// surrounding whitespace (draft-cavage-10 §2.3, RFC 9421 §2.1). It reports
// false when the request has no such header. It reads through PeekAll,
// not All: on a request with special-header handling off, All would move
// the Cookie fields out of the list that is written, and they would be
// lost.
func (m *message) appendField(dst []byte, name string) ([]byte, bool) {
	switch name {
	case "host":
		return append(dst, m.host...), true
	case "content-length":
		// fasthttp and the inbound relay send a length whenever there is a
		// body or the method is neither GET nor HEAD.
		if len(m.body) == 0 && (m.req.Header.IsGet() || m.req.Header.IsHead()) {
			return dst, false
		}
		return strconv.AppendInt(dst, int64(len(m.body)), 10), true
	}
	values := m.req.Header.PeekAll(name)
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, bytes.Trim(v, " \t")...)
	}
	return dst, len(values) > 0
}

// cavageString builds the signing string of draft-cavage-10 §2.3 into
// b.base and the headers parameter into b.list.
func (s *Signer) cavageString(b *buffers, m *message) {
	base, list := b.base[:0], b.list[:0]
	for _, it := range s.cavage {
		mark := len(base)
		if len(list) > 0 {
			base = append(base, '\n')
		}
		if it.requestTarget {
			base = append(base, "(request-target): "...)
			for _, c := range m.method {
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				base = append(base, c)
			}
			base = append(append(base, ' '), m.requestURI...)
		} else {
			base = append(append(base, it.field...), ": "...)
			var ok bool
			if base, ok = m.appendField(base, it.field); !ok {
				base = base[:mark]
				continue
			}
		}
		if len(list) > 0 {
			list = append(list, ' ')
		}
		if it.requestTarget {
			list = append(list, "(request-target)"...)
		} else {
			list = append(list, it.field...)
		}
	}
	b.base, b.list = base, list
}

// cavageValue returns the signature header's value in Tyk's order:
// [Signature ]keyId="…",algorithm="…",headers="…",signature="…".
func (s *Signer) cavageValue(b *buffers) []byte {
	out := append(append(b.out[:0], s.prefix...), b.list...)
	out = append(out, `",signature="`...)
	if s.queryEscape {
		b.scratch = base64.StdEncoding.AppendEncode(b.scratch[:0], b.sig)
		out = appendQueryEscaped(out, b.scratch)
	} else {
		out = base64.StdEncoding.AppendEncode(out, b.sig)
	}
	b.out = append(out, '"')
	return b.out
}

// appendQueryEscaped escapes base64 text as url.QueryEscape does; "+", "/"
// and "=" are the only base64 characters it changes.
func appendQueryEscaped(dst, b64 []byte) []byte {
	for _, c := range b64 {
		switch c {
		case '+':
			dst = append(dst, "%2B"...)
		case '/':
			dst = append(dst, "%2F"...)
		case '=':
			dst = append(dst, "%3D"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// signatureBase builds the signature base of RFC 9421 §2.5 into b.base and
// the signature parameters (the value of Signature-Input after the label)
// into b.text.
func (s *Signer) signatureBase(b *buffers, m *message, now time.Time) {
	base, list := b.base[:0], b.list[:0]
	for i := range s.components {
		c := &s.components[i]
		var ok bool
		if base, ok = appendComponent(base, m, c); !ok {
			continue
		}
		if len(list) > 0 {
			list = append(list, ' ')
		}
		list = append(list, c.id...)
	}
	params := append(append(append(b.text[:0], '('), list...), ")"...)
	params = strconv.AppendInt(append(params, ";created="...), now.Unix(), 10)
	params = append(params, s.params...)
	if s.maxAge > 0 {
		params = strconv.AppendInt(append(params, ";expires="...), now.Add(s.maxAge).Unix(), 10)
	}
	base = append(append(base, `"@signature-params": `...), params...)
	b.base, b.list, b.text = base, list, params
}

// appendComponent appends the lines of c (RFC 9421 §2.5: identifier, ": ",
// value, LF), or reports false when the request lacks it.
func appendComponent(base []byte, m *message, c *component) ([]byte, bool) {
	mark := len(base)
	line := func() { base = append(append(base, c.id...), ": "...) }
	switch c.kind {
	case kindField:
		line()
		var ok bool
		if base, ok = m.appendField(base, c.name); !ok {
			return base[:mark], false
		}
	case kindMethod:
		line()
		base = append(base, m.method...)
	case kindTargetURI:
		line()
		base = append(append(append(append(base, m.scheme...), "://"...), m.host...), m.requestURI...)
	case kindAuthority:
		line()
		base = append(base, m.host...)
	case kindScheme:
		line()
		base = append(base, m.scheme...)
	case kindRequestTarget:
		line()
		base = append(base, m.requestURI...)
	case kindPath:
		line()
		if p := m.path(); len(p) > 0 {
			base = append(base, p...)
		} else {
			base = append(base, '/')
		}
	case kindQuery:
		line()
		q, _ := m.query()
		base = append(append(base, '?'), q...)
	case kindQueryParam:
		// One line per occurrence, in order (RFC 9421 §2.2.8).
		q, _ := m.query()
		found := false
		for len(q) > 0 {
			var pair []byte
			if i := bytes.IndexByte(q, '&'); i >= 0 {
				pair, q = q[:i], q[i+1:]
			} else {
				pair, q = q, nil
			}
			name, value := pair, []byte(nil)
			if i := bytes.IndexByte(pair, '='); i >= 0 {
				name, value = pair[:i], pair[i+1:]
			}
			if !formEqual(name, c.param) {
				continue
			}
			if found {
				base = append(base, '\n')
			}
			line()
			base = appendFormReencoded(base, value)
			found = true
		}
		if !found {
			return base[:mark], false
		}
	}
	return append(base, '\n'), true
}

// appendFormReencoded appends the form-encoded value s decoded and encoded
// again in the form of RFC 9421 §2.2.8, in one pass without scratch space.
func appendFormReencoded(dst, s []byte) []byte {
	var one [1]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		one[0] = c
		dst = appendFormEncoded(dst, one[:])
	}
	return dst
}

// formEqual reports whether the form-encoded name decodes to want, without
// allocating.
func formEqual(name, want []byte) bool {
	j := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]):
			c = unhex(name[i+1])<<4 | unhex(name[i+2])
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// sign signs b.base into b.sig.
func (s *Signer) sign(b *buffers) error {
	if s.alg.newHash != nil {
		mac := s.macs.Get().(hash.Hash)
		mac.Reset()
		mac.Write(b.base)
		b.sig = mac.Sum(b.sig[:0])
		s.macs.Put(mac)
		return nil
	}
	sig, err := signAsymmetric(s.alg.name, s.key, b.base)
	b.sig = append(b.sig[:0], sig...)
	return err
}

// signAsymmetric signs msg as RFC 9421 §3.3 (and draft-cavage-10 for
// rsa-sha256) specify each algorithm.
func signAsymmetric(alg string, key crypto.Signer, msg []byte) ([]byte, error) {
	switch alg {
	case "ed25519":
		return ed25519.Sign(key.(ed25519.PrivateKey), msg), nil
	case "ecdsa-p256-sha256":
		// §3.3.4: r and s as two 32-byte big-endian integers, not ASN.1.
		d := sha256.Sum256(msg)
		r, sv, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		sv.FillBytes(sig[32:])
		return sig, nil
	case "rsa-pss-sha512":
		// §3.3.1: MGF1 with SHA-512 and a 64-byte salt.
		d := sha512.Sum512(msg)
		return rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA512, d[:], &rsa.PSSOptions{SaltLength: 64})
	default: // rsa-v1_5-sha256 and cavage's rsa-sha256
		d := sha256.Sum256(msg)
		return rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, d[:])
	}
}
