// Package sigverify checks signed upstream requests the way an API behind
// the inbound relay would, for tests: RFC 9421 signatures through
// github.com/yaronf/httpsign, an implementation maintained apart from this
// project, and draft-cavage-http-signatures-10 signatures with a small
// verifier written here from the draft. It shares no code with upsign, the
// signer it checks, so that a mistake in one is not repeated in the other.
// Test support only: nothing outside _test files imports it.
package sigverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/yaronf/httpsign"
)

// Key is what the API knows about the relay's signatures.
type Key struct {
	Scheme    string // "cavage" or "rfc9421"
	Algorithm string
	KeyID     string
	Secret    []byte           // HMAC
	Public    crypto.PublicKey // asymmetric
	// Header is where a cavage signature is: "Authorization" (default) or
	// "Signature".
	Header string
	// Tyk makes the cavage HMAC check Tyk's: the received text must equal
	// url.QueryEscape(base64(mac)).
	Tyk bool
	// Covered lists what a signature must cover (header names or component
	// names without quotes). Default: the relay's default list, with the
	// digest and content-type only when the request has them.
	Covered []string
	// MaxSkew bounds how far Date (and RFC 9421's created) may be from now.
	// Default 30 s.
	MaxSkew time.Duration
}

// Verify checks the signature of r, whose body the caller has read into
// body, and the body's digest. nil means an API would accept r.
func Verify(r *http.Request, body []byte, k Key) error {
	if k.MaxSkew == 0 {
		k.MaxSkew = 30 * time.Second
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return errors.New("no valid Date")
	}
	if d := time.Since(date); d > k.MaxSkew+time.Second || d < -k.MaxSkew {
		return fmt.Errorf("Date %v is %v away", date, d)
	}
	if k.Scheme == "rfc9421" {
		return verifyRFC9421(r, body, k)
	}
	return verifyCavage(r, body, k)
}

func verifyRFC9421(r *http.Request, body []byte, k Key) error {
	covered := k.Covered
	if covered == nil {
		covered = []string{"@method", "@target-uri", "date"}
		if len(body) > 0 {
			covered = append(covered, "content-digest")
		}
		if r.Header.Get("Content-Type") != "" {
			covered = append(covered, "content-type")
		}
	}
	if len(body) > 0 {
		rc := io.NopCloser(bytes.NewReader(body))
		if err := httpsign.ValidateContentDigestHeader(r.Header.Values("Content-Digest"), &rc, []string{"sha-256"}); err != nil {
			return fmt.Errorf("Content-Digest: %w", err)
		}
	} else if r.Header.Get("Content-Digest") != "" {
		return errors.New("a Content-Digest without a body")
	}
	cfg := httpsign.NewVerifyConfig().SetKeyID(k.KeyID).SetAllowedAlgs([]string{k.Algorithm}).
		SetNotOlderThan(k.MaxSkew).SetNotNewerThan(k.MaxSkew)
	fields := httpsign.Headers(covered...)
	var v *httpsign.Verifier
	var err error
	switch k.Algorithm {
	case "hmac-sha256":
		v, err = httpsign.NewHMACSHA256Verifier(k.Secret, cfg, fields)
	case "ed25519":
		v, err = httpsign.NewEd25519Verifier(k.Public.(ed25519.PublicKey), cfg, fields)
	case "ecdsa-p256-sha256":
		v, err = httpsign.NewP256Verifier(*k.Public.(*ecdsa.PublicKey), cfg, fields)
	case "rsa-pss-sha512":
		v, err = httpsign.NewRSAPSSVerifier(*k.Public.(*rsa.PublicKey), cfg, fields)
	case "rsa-v1_5-sha256":
		v, err = httpsign.NewRSAVerifier(*k.Public.(*rsa.PublicKey), cfg, fields)
	default:
		return errors.New("unknown algorithm " + k.Algorithm)
	}
	if err != nil {
		return err
	}
	return httpsign.VerifyRequest("pqrelay", *v, r)
}

// verifyCavage follows draft-cavage-http-signatures-10: §2.1 for the
// parameters, §2.3 for the signing string, §2.5 for verification, and RFC
// 3230 for Digest.
func verifyCavage(r *http.Request, body []byte, k Key) error {
	header := k.Header
	if header == "" {
		header = "Authorization"
	}
	values := r.Header.Values(header)
	if len(values) != 1 {
		return fmt.Errorf("%d %s headers", len(values), header)
	}
	text := values[0]
	if header == "Authorization" {
		var ok bool
		if text, ok = strings.CutPrefix(text, "Signature "); !ok {
			return errors.New("Authorization is not of the Signature scheme")
		}
	}
	params, err := parseParams(text)
	if err != nil {
		return err
	}
	if params["keyId"] != k.KeyID || params["algorithm"] != k.Algorithm {
		return fmt.Errorf("keyId %q algorithm %q", params["keyId"], params["algorithm"])
	}
	headers := []string{"date"} // §2.1.3: absent means Date only
	if h, ok := params["headers"]; ok {
		headers = strings.Split(h, " ")
	}
	covered := k.Covered
	if covered == nil {
		covered = []string{"(request-target)", "host", "date"}
		if len(body) > 0 {
			covered = append(covered, "digest")
		}
	}
	for _, c := range covered {
		if !slices.Contains(headers, c) {
			return fmt.Errorf("%s is not covered (headers=%q)", c, params["headers"])
		}
	}
	if d := r.Header.Get("Digest"); len(body) > 0 || d != "" {
		sum := sha256.Sum256(body)
		if d != "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]) {
			return fmt.Errorf("Digest %q does not match the body", d)
		}
	}
	var lines []string
	for _, h := range headers {
		switch h {
		case "(request-target)":
			lines = append(lines, h+": "+strings.ToLower(r.Method)+" "+r.RequestURI)
		case "host":
			lines = append(lines, "host: "+r.Host)
		default:
			vals := r.Header.Values(h)
			if len(vals) == 0 {
				return fmt.Errorf("covered header %s is missing", h)
			}
			for i := range vals {
				vals[i] = strings.TrimSpace(vals[i])
			}
			lines = append(lines, h+": "+strings.Join(vals, ", "))
		}
	}
	signingString := []byte(strings.Join(lines, "\n"))
	sigText := params["signature"]
	if newHash := hmacHash(k.Algorithm); newHash != nil {
		mac := hmac.New(newHash, k.Secret)
		mac.Write(signingString)
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if k.Tyk {
			// gateway/mw_hmac.go: a string comparison with the escaped text.
			want = url.QueryEscape(want)
		}
		if !hmac.Equal([]byte(sigText), []byte(want)) {
			return errors.New("HMAC signature does not verify")
		}
		return nil
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	pub, ok := k.Public.(*rsa.PublicKey)
	if k.Algorithm != "rsa-sha256" || !ok {
		return errors.New("unknown algorithm " + k.Algorithm)
	}
	d := sha256.Sum256(signingString)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
}

func hmacHash(alg string) func() hash.Hash {
	switch alg {
	case "hmac-sha1":
		return sha1.New
	case "hmac-sha256":
		return sha256.New
	case "hmac-sha384":
		return sha512.New384
	case "hmac-sha512":
		return sha512.New
	}
	return nil
}

// parseParams reads §2.1's comma-separated name="value" pairs; each name
// at most once.
func parseParams(text string) (map[string]string, error) {
	params := map[string]string{}
	for text != "" {
		eq := strings.IndexByte(text, '=')
		if eq <= 0 || len(text) < eq+2 || text[eq+1] != '"' {
			return nil, fmt.Errorf("malformed parameter at %q", text)
		}
		name := text[:eq]
		end := strings.IndexByte(text[eq+2:], '"')
		if end < 0 {
			return nil, fmt.Errorf("unterminated %s", name)
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("%s twice", name)
		}
		params[name] = text[eq+2 : eq+2+end]
		text = text[eq+2+end+1:]
		if text != "" {
			if text[0] != ',' {
				return nil, fmt.Errorf("expected a comma at %q", text)
			}
			text = text[1:]
		}
	}
	return params, nil
}
