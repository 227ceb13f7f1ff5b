package upsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"hash"
	"os"
	"strings"
	"time"
)

// Schemes, the values of UPSTREAM_SIGNING.
const (
	SchemeCavage  = "cavage"
	SchemeRFC9421 = "rfc9421"
)

// Signature encodings of the cavage scheme (SIGNING_SIGNATURE_ENCODING).
const (
	// EncodingBase64 sends the signature in standard base64, as the draft
	// (§2.1.6) says. Every verifier written from the draft decodes it, and
	// so does Tyk's rsa-sha256 verifier.
	EncodingBase64 = "base64"
	// EncodingTyk sends what Tyk's gateway sends: for the HMAC algorithms
	// the base64 text URL-query-escaped ("+" as %2B, "/" as %2F, "=" as
	// %3D), for rsa-sha256 plain base64. Tyk's HMAC verifier compares the
	// received text with url.QueryEscape(base64(mac)) as a string, so it
	// accepts nothing else; verifiers written from the draft reject it.
	EncodingTyk = "tyk"
)

// Config is the signing configuration. cmd/pqrelay fills it from the
// environment variables its field comments name.
type Config struct {
	// Scheme is UPSTREAM_SIGNING: SchemeCavage or SchemeRFC9421. Required.
	Scheme string
	// Algorithm is SIGNING_ALGORITHM. cavage: hmac-sha1, hmac-sha256,
	// hmac-sha384, hmac-sha512, rsa-sha256; rfc9421: hmac-sha256, ed25519,
	// ecdsa-p256-sha256, rsa-pss-sha512, rsa-v1_5-sha256. Required.
	Algorithm string
	// KeyID is SIGNING_KEY_ID, the keyId (cavage) or keyid (rfc9421)
	// parameter: printable ASCII without quotes or backslashes. Required.
	KeyID string
	// Secret is SIGNING_SECRET, the HMAC key: at least 16 bytes, 32 or more
	// recommended. Required for HMAC algorithms, refused for the others.
	Secret string
	// KeyFile is SIGNING_KEY_FILE, a PEM private key (PKCS #8, PKCS #1 or
	// SEC 1) of the algorithm's type. Required for the asymmetric
	// algorithms, refused for HMAC.
	KeyFile string
	// Headers is SIGNING_HEADERS, what is covered. cavage: space-separated
	// header names and (request-target), default
	// "(request-target) host date digest". rfc9421: component identifiers,
	// default "@method" "@target-uri" "content-digest" "content-type" "date".
	// A covered header the request does not have is left out of that
	// request's list, so content-type and the digest are covered only when
	// present.
	Headers string
	// Header is SIGNING_HEADER (cavage only): "Authorization" (default,
	// "Signature keyId=…" form) or "Signature".
	Header string
	// Encoding is SIGNING_SIGNATURE_ENCODING (cavage only): EncodingBase64
	// (default) or EncodingTyk.
	Encoding string
	// MaxAge is SIGNING_MAX_AGE (rfc9421 only): when set, signatures carry
	// expires = created + MaxAge. Default none.
	MaxAge time.Duration
}

// MinSecretLen is the shortest SIGNING_SECRET accepted; 32 bytes or more
// are recommended, and some verifiers (yaronf/httpsign) want 64.
const MinSecretLen = 16

type algorithm struct {
	name string
	// newHash keys HMAC; nil for the asymmetric algorithms.
	newHash func() hash.Hash
	// key reports whether a parsed private key suits the algorithm.
	key func(any) bool
}

func isRSA(k any) bool { _, ok := k.(*rsa.PrivateKey); return ok }
func isP256(k any) bool {
	e, ok := k.(*ecdsa.PrivateKey)
	return ok && e.Curve == elliptic.P256()
}
func isEd25519(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }

var cavageAlgorithms = []algorithm{
	{name: "hmac-sha1", newHash: sha1.New},
	{name: "hmac-sha256", newHash: sha256.New},
	{name: "hmac-sha384", newHash: sha512.New384},
	{name: "hmac-sha512", newHash: sha512.New},
	{name: "rsa-sha256", key: isRSA},
}

var rfc9421Algorithms = []algorithm{
	{name: "hmac-sha256", newHash: sha256.New},
	{name: "ed25519", key: isEd25519},
	{name: "ecdsa-p256-sha256", key: isP256},
	{name: "rsa-pss-sha512", key: isRSA},
	{name: "rsa-v1_5-sha256", key: isRSA},
}

func names(algs []algorithm) string {
	var b strings.Builder
	for i, a := range algs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.name)
	}
	return b.String()
}

// New checks c and returns its Signer. Each error is one line naming the
// environment variable to fix.
func New(c Config) (*Signer, error) {
	s := &Signer{maxAge: c.MaxAge}
	s.bufs.New = func() any { return new(buffers) }
	var algs []algorithm
	switch c.Scheme {
	case SchemeCavage:
		s.scheme, algs = cavage, cavageAlgorithms
	case SchemeRFC9421:
		s.scheme, algs = rfc9421, rfc9421Algorithms
	default:
		return nil, errors.New("UPSTREAM_SIGNING: must be cavage or rfc9421 (unset: no signing)")
	}
	for i := range algs {
		if algs[i].name == c.Algorithm {
			s.alg = algs[i]
		}
	}
	if s.alg.name == "" {
		return nil, errors.New("SIGNING_ALGORITHM: for " + c.Scheme + " one of " + names(algs))
	}
	if !validKeyID(c.KeyID) {
		return nil, errors.New("SIGNING_KEY_ID: required, printable ASCII without quotes or backslashes")
	}
	if err := s.setKey(c); err != nil {
		return nil, err
	}
	if c.MaxAge < 0 || (c.MaxAge > 0 && c.MaxAge < time.Second) {
		return nil, errors.New("SIGNING_MAX_AGE: must be at least 1s")
	}
	if s.scheme == cavage {
		return s, s.setCavage(c)
	}
	return s, s.setRFC9421(c)
}

func (s *Signer) setKey(c Config) error {
	if s.alg.newHash != nil {
		switch {
		case c.KeyFile != "":
			return errors.New("SIGNING_KEY_FILE: " + s.alg.name + " is keyed by SIGNING_SECRET, not a key file")
		case len(c.Secret) < MinSecretLen:
			return errors.New("SIGNING_SECRET: " + s.alg.name + " needs a secret of at least 16 bytes (32 or more recommended)")
		}
		secret := []byte(c.Secret)
		s.macs.New = func() any { return hmac.New(s.alg.newHash, secret) }
		return nil
	}
	switch {
	case c.Secret != "":
		return errors.New("SIGNING_SECRET: " + s.alg.name + " signs with SIGNING_KEY_FILE, not a secret")
	case c.KeyFile == "":
		return errors.New("SIGNING_KEY_FILE: " + s.alg.name + " needs a PEM private key file")
	}
	text, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return errors.New("SIGNING_KEY_FILE: cannot read " + c.KeyFile)
	}
	key, err := parsePrivateKey(text)
	if err != nil {
		return err
	}
	if !s.alg.key(key) {
		return errors.New("SIGNING_KEY_FILE: the key does not match SIGNING_ALGORITHM " + s.alg.name)
	}
	s.key = key.(crypto.Signer)
	return nil
}

// parsePrivateKey reads the first PEM block of text as a PKCS #8, PKCS #1
// or SEC 1 private key.
func parsePrivateKey(text []byte) (any, error) {
	block, _ := pem.Decode(text)
	if block == nil {
		return nil, errors.New("SIGNING_KEY_FILE: no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, errors.New("SIGNING_KEY_FILE: a " + block.Type + " block is not a private key")
	}
	if err != nil {
		return nil, errors.New("SIGNING_KEY_FILE: the private key does not parse")
	}
	if _, ok := key.(crypto.Signer); !ok {
		return nil, errors.New("SIGNING_KEY_FILE: unsupported key type")
	}
	return key, nil
}

func (s *Signer) setCavage(c Config) error {
	switch c.Header {
	case "", "Authorization", "authorization":
		s.header = "Authorization"
		s.prefix = []byte("Signature ")
	case "Signature", "signature":
		s.header = "Signature"
	default:
		return errors.New("SIGNING_HEADER: Authorization (default) or Signature")
	}
	switch c.Encoding {
	case "", EncodingBase64:
	case EncodingTyk:
		s.queryEscape = s.alg.newHash != nil
	default:
		return errors.New("SIGNING_SIGNATURE_ENCODING: base64 (default) or tyk")
	}
	if c.MaxAge != 0 {
		return errors.New("SIGNING_MAX_AGE: only rfc9421 signatures carry an expiry")
	}
	headers := c.Headers
	if headers == "" {
		headers = defaultCavageHeaders
	}
	items, err := parseCavageHeaders(headers)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.field == strings.ToLower(s.header) {
			return errors.New("SIGNING_HEADERS: cannot cover " + s.header + ", where the signature goes")
		}
	}
	s.cavage = items
	s.prefix = append(s.prefix, `keyId="`+c.KeyID+`",algorithm="`+s.alg.name+`",headers="`...)
	return nil
}

func (s *Signer) setRFC9421(c Config) error {
	switch {
	case c.Header != "":
		return errors.New("SIGNING_HEADER: only for cavage; rfc9421 always uses Signature-Input and Signature")
	case c.Encoding != "":
		return errors.New("SIGNING_SIGNATURE_ENCODING: only for cavage; rfc9421 signatures are byte sequences")
	}
	headers := c.Headers
	if headers == "" {
		headers = defaultComponents
	}
	comps, err := parseComponents(headers)
	if err != nil {
		return err
	}
	s.components = comps
	s.params = []byte(`;keyid="` + c.KeyID + `";alg="` + s.alg.name + `"`)
	return nil
}

// Replaces reports whether a Signer of c removes the header named name from
// every request before signing (the signer's own headers).
func (c Config) Replaces(name string) bool {
	for _, u := range untrusted {
		if strings.EqualFold(name, u) {
			return true
		}
	}
	return c.Scheme == SchemeCavage && strings.EqualFold(name, "Authorization") &&
		(c.Header == "" || strings.EqualFold(c.Header, "Authorization"))
}

func validKeyID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
