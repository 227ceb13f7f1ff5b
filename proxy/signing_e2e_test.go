package proxy_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pqrelay/pqrelay/internal/sigverify"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/upsign"
)

// appCookie must reach the upstream byte for byte with signing on, as it
// does without: quotes kept, a pair without a name kept.
const appCookie = `Cookie_1=value; quoted="a b"; lone`

// signingSecret is 64 bytes: httpsign refuses shorter HMAC keys.
const signingSecret = "e2e-signing-secret-0123456789abcdef-0123456789abcdef-0123456789ab"

var signingKeyFiles = map[string]string{
	"ed25519":           "../upsign/testdata/rfc9421-test-key-ed25519.pem",
	"ecdsa-p256-sha256": "../upsign/testdata/rfc9421-test-key-ecc-p256.pem",
	"rsa-pss-sha512":    "../upsign/testdata/test-key-rsa-2048.pem",
	"rsa-v1_5-sha256":   "../upsign/testdata/test-key-rsa-2048.pem",
	"rsa-sha256":        "../upsign/testdata/test-key-rsa-2048.pem",
}

func signingPublicKey(t testing.TB, file string) crypto.PublicKey {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(text)
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key.(crypto.Signer).Public()
}

// TestUpstreamSigning: through a real pair, relay B signs every request it
// sends to the upstream, and the upstream verifies every request it
// receives (httpsign for rfc9421, a verifier written from draft-10 for
// cavage, Tyk's comparison for the tyk encoding); a request that does not
// verify fails the test and is answered 401. The app's own Signature,
// Signature-Input, Digest, Content-Digest and (for the Authorization form)
// Authorization never reach the upstream; HEADERS set on B are signed.
func TestUpstreamSigning(t *testing.T) {
	t.Parallel()
	type scheme struct {
		signing upsign.Config
		tyk     bool
	}
	var schemes []scheme
	for _, alg := range []string{"hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512", "rsa-sha256"} {
		schemes = append(schemes, scheme{signing: upsign.Config{Scheme: upsign.SchemeCavage, Algorithm: alg}})
	}
	schemes = append(schemes,
		scheme{signing: upsign.Config{Scheme: upsign.SchemeCavage, Algorithm: "hmac-sha256", Header: "Signature",
			Headers: "(request-target) host date digest x-env content-type cookie content-length"}},
		scheme{signing: upsign.Config{Scheme: upsign.SchemeCavage, Algorithm: "hmac-sha512", Encoding: upsign.EncodingTyk}, tyk: true})
	for _, alg := range []string{"hmac-sha256", "ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512", "rsa-v1_5-sha256"} {
		schemes = append(schemes, scheme{signing: upsign.Config{Scheme: upsign.SchemeRFC9421, Algorithm: alg, MaxAge: 60e9}})
	}
	schemes = append(schemes, scheme{signing: upsign.Config{Scheme: upsign.SchemeRFC9421, Algorithm: "ed25519",
		Headers: `"@method" "@target-uri" "@query-param";name="id" "content-digest" "content-type" "date" "x-env" "cookie"`}})

	for _, sc := range schemes {
		name := sc.signing.Scheme + "/" + sc.signing.Algorithm + "/" + sc.signing.Header + sc.signing.Encoding + sc.signing.Headers
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := sc.signing
			cfg.KeyID = "relay-b-e2e"
			key := sigverify.Key{Scheme: cfg.Scheme, Algorithm: cfg.Algorithm, KeyID: cfg.KeyID, Header: cfg.Header, Tyk: sc.tyk}
			if file, ok := signingKeyFiles[cfg.Algorithm]; ok {
				cfg.KeyFile = file
				key.Public = signingPublicKey(t, file)
			} else {
				cfg.Secret = signingSecret
				key.Secret = []byte(signingSecret)
			}
			if strings.Contains(cfg.Headers, "x-env") {
				key.Covered = []string{"x-env", "date", "cookie"}
			}
			p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
				c.Signing = cfg
				c.Headers = []proxy.Header{{Name: "X-Env", Value: "prod"}}
			}})
			var verified atomic.Int64
			p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := sigverify.Verify(r, body, key); err != nil {
					t.Errorf("upstream: %s %s does not verify: %v\n%v", r.Method, r.RequestURI, err, r.Header)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				for _, h := range []string{"Signature", "Signature-Input", "Digest", "Content-Digest", "Authorization"} {
					for _, v := range r.Header.Values(h) {
						if strings.Contains(v, "from-the-app") && (h != "Authorization" || cfg.Scheme == upsign.SchemeCavage && cfg.Header == "") {
							t.Errorf("upstream: the app's %s reached it: %q", h, v)
						}
					}
				}
				if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != appCookie {
					t.Errorf("upstream: Cookie %q, want the app's %q", got, appCookie)
				}
				verified.Add(1)
				w.Write(body)
			})

			requests := []struct {
				method, path, body string
				appHeaders         bool
			}{
				{"POST", "/api/items?id=42&q=a+b%2Fc", `{"email":"jim.halpert@example.com"}`, false},
				{"GET", "/api/items?id=7", "", false},
				{"PUT", "/api/a%20b//c%2Fd", "x", true},
				{"DELETE", "/api/items/42", "", true},
			}
			for _, rq := range requests {
				var body io.Reader
				if rq.body != "" {
					body = strings.NewReader(rq.body)
				}
				req := p.Request(t, rq.method, rq.path, body)
				if rq.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Cookie", appCookie)
				if rq.appHeaders {
					for _, h := range []string{"Signature", "Signature-Input", "Digest", "Content-Digest", "Authorization"} {
						req.Header.Set(h, "from-the-app")
					}
				}
				res := do(t, req)
				if res.status != http.StatusOK || string(res.body) != rq.body {
					t.Errorf("%s %s: %d %q", rq.method, rq.path, res.status, res.body)
				}
			}
			if n := verified.Load(); n != int64(len(requests)) {
				t.Errorf("the upstream verified %d requests, want %d", n, len(requests))
			}
		})
	}
}

// TestUpstreamRefusesBadSignatures: the verifying upstream of
// TestUpstreamSigning really refuses what it should: requests from a B
// that does not sign, or signs with another key, are answered 401.
func TestUpstreamRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	key := sigverify.Key{Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "relay-b-e2e", Secret: []byte(signingSecret)}
	for name, signing := range map[string]upsign.Config{
		"unsigned":    {},
		"another key": {Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "relay-b-e2e", Secret: signingSecret[1:] + "x"},
		"another id":  {Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "relay-c", Secret: signingSecret},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.Signing = signing }})
			p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if sigverify.Verify(r, body, key) != nil {
					w.WriteHeader(http.StatusUnauthorized)
				}
			})
			for _, method := range []string{"GET", "POST"} {
				if res := do(t, p.Request(t, method, "/api/items", strings.NewReader("{}"))); res.status != http.StatusUnauthorized {
					t.Errorf("%s: %d, want the upstream's 401", method, res.status)
				}
			}
		})
	}
}

// TestPassThroughSigned: a plain request PASS_THROUGH_ROUTES lets through
// is signed like a sealed one, by the same builder: the upstream verifies
// both, and the client's own Signature never reaches it.
func TestPassThroughSigned(t *testing.T) {
	t.Parallel()
	key := sigverify.Key{Scheme: upsign.SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "relay-b-e2e", Secret: []byte(signingSecret)}
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.Signing = upsign.Config{Scheme: key.Scheme, Algorithm: key.Algorithm, KeyID: key.KeyID, Secret: signingSecret}
		c.PassThroughRoutes = "^/public/"
	}})
	var verified atomic.Int64
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := sigverify.Verify(r, body, key); err != nil || strings.Contains(r.Header.Get("Signature"), "from-the-app") {
			t.Errorf("upstream: %s %s: %v %v", r.Method, r.RequestURI, err, r.Header)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		verified.Add(1)
	})
	req, _ := http.NewRequest("POST", p.B.URL+"/public/items?id=42", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Signature", "from-the-app")
	if r := do(t, req); r.status != http.StatusOK {
		t.Errorf("pass-through: %d %s", r.status, r.body)
	}
	if r := do(t, p.Request(t, "GET", "/api/items", nil)); r.status != http.StatusOK {
		t.Errorf("sealed: %d %s", r.status, r.body)
	}
	if n := verified.Load(); n != 2 {
		t.Errorf("the upstream verified %d requests, want 2", n)
	}
}
