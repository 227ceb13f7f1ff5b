package upsign

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The test request of RFC 9421 §B.2 (and RFC 9530's example body).
const rfc9421Request = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n" +
	"Content-Length: 18\r\n" +
	"\r\n" +
	`{"hello": "world"}`

// The RFC 9421 §B.1.5 shared secret.
const rfc9421SharedSecret = "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="

func readRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return req
}

func readPEM(t testing.TB, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(text)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return block.Bytes
}

func publicKey(t testing.TB, path string) any {
	t.Helper()
	k, err := x509.ParsePKIXPublicKey(readPEM(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func privateKey(t testing.TB, path string) crypto.Signer {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parsePrivateKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC9421Vectors: the signature bases of RFC 9421 §B.2.1–B.2.3, B.2.5
// and B.2.6 built from the test request byte for byte; the signatures of
// the deterministic algorithms (hmac-sha256 B.2.5, ed25519 B.2.6) made
// byte for byte; the RFC's rsa-pss-sha512 signatures verified over the
// bases built here. (B.2.4 signs a response: see TestRFC9421ResponseVector.)
func TestRFC9421Vectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		components string // as SIGNING_HEADERS
		params     string // the RFC's @signature-params value
		base       string // the RFC's signature base, without the last line
		alg        string
		signature  string
	}{
		{
			name:      "B.2.1 minimal, rsa-pss-sha512",
			params:    `();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"`,
			alg:       "rsa-pss-sha512",
			signature: "d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==",
		},
		{
			name:       "B.2.2 selective, rsa-pss-sha512",
			components: `"@authority" "content-digest" "@query-param";name="Pet"`,
			params:     `("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"`,
			base: `"@authority": example.com` + "\n" +
				`"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:` + "\n" +
				`"@query-param";name="Pet": dog` + "\n",
			alg:       "rsa-pss-sha512",
			signature: "LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==",
		},
		{
			name:       "B.2.3 full coverage, rsa-pss-sha512",
			components: `"date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length"`,
			params:     `("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"`,
			base: `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
				`"@method": POST` + "\n" +
				`"@path": /foo` + "\n" +
				`"@query": ?param=Value&Pet=dog` + "\n" +
				`"@authority": example.com` + "\n" +
				`"content-type": application/json` + "\n" +
				`"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:` + "\n" +
				`"content-length": 18` + "\n",
			alg:       "rsa-pss-sha512",
			signature: "bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==",
		},
		{
			name:       "B.2.5 hmac-sha256",
			components: `"date" "@authority" "content-type"`,
			params:     `("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			base: `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
				`"@authority": example.com` + "\n" +
				`"content-type": application/json` + "\n",
			alg:       "hmac-sha256",
			signature: "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=",
		},
		{
			name:       "B.2.6 ed25519",
			components: `"date" "@method" "@path" "@authority" "content-type" "content-length"`,
			params:     `("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
			base: `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
				`"@method": POST` + "\n" +
				`"@path": /foo` + "\n" +
				`"@authority": example.com` + "\n" +
				`"content-type": application/json` + "\n" +
				`"content-length": 18` + "\n",
			alg:       "ed25519",
			signature: "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var comps []component
			if tt.components != "" {
				var err error
				if comps, err = parseComponents(tt.components); err != nil {
					t.Fatal(err)
				}
			}
			req := readRequest(t, rfc9421Request)
			m := newMessage(req)
			var base, list []byte
			for i := range comps {
				var ok bool
				if base, ok = appendComponent(base, &m, &comps[i]); !ok {
					t.Fatalf("%s: missing from the test request", comps[i].id)
				}
				if len(list) > 0 {
					list = append(list, ' ')
				}
				list = append(list, comps[i].id...)
			}
			if !strings.HasPrefix(tt.params, "("+string(list)+")") {
				t.Errorf("inner list (%s), want the one of %s", list, tt.params)
			}
			if string(base) != tt.base {
				t.Errorf("signature base\n%s\nwant\n%s", base, tt.base)
			}
			full := append(base, `"@signature-params": `+tt.params...)
			want := b64(t, tt.signature)

			switch tt.alg {
			case "rsa-pss-sha512":
				d := sha512.Sum512(full)
				pub := publicKey(t, "testdata/rfc9421-test-key-rsa-pss.pub.pem").(*rsa.PublicKey)
				if err := rsa.VerifyPSS(pub, crypto.SHA512, d[:], want, nil); err != nil {
					t.Errorf("the RFC's signature does not verify over this base: %v", err)
				}
			case "hmac-sha256":
				s, err := New(Config{Scheme: SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "test-shared-secret",
					Secret: string(b64(t, rfc9421SharedSecret))})
				if err != nil {
					t.Fatal(err)
				}
				b := &buffers{base: full}
				if err := s.sign(b); err != nil || string(b.sig) != string(want) {
					t.Errorf("signature %s, %v; want %s", base64.StdEncoding.EncodeToString(b.sig), err, tt.signature)
				}
			case "ed25519":
				sig, err := signAsymmetric("ed25519", privateKey(t, "testdata/rfc9421-test-key-ed25519.pem"), full)
				if err != nil || string(sig) != string(want) {
					t.Errorf("signature %s, %v; want %s", base64.StdEncoding.EncodeToString(sig), err, tt.signature)
				}
			}
		})
	}
}

// TestRFC9421ResponseVector: B.2.4 signs a response, which a relay never
// does; its ecdsa-p256-sha256 signature still pins the r‖s encoding of
// §3.3.4 that the signer must produce: the RFC's signature verifies as r‖s
// over the RFC's base, and so does one made by this package.
func TestRFC9421ResponseVector(t *testing.T) {
	t.Parallel()
	base := []byte(`"@status": 200` + "\n" +
		`"content-type": application/json` + "\n" +
		`"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:` + "\n" +
		`"content-length": 23` + "\n" +
		`"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`)
	key := privateKey(t, "testdata/rfc9421-test-key-ecc-p256.pem").(*ecdsa.PrivateKey)
	verify := func(sig []byte) bool {
		d := sha256.Sum256(base)
		return len(sig) == 64 && ecdsa.Verify(&key.PublicKey, d[:],
			new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	if !verify(b64(t, "wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==")) {
		t.Error("the RFC's B.2.4 signature does not verify as r‖s")
	}
	sig, err := signAsymmetric("ecdsa-p256-sha256", key, base)
	if err != nil || !verify(sig) {
		t.Errorf("our ecdsa-p256-sha256 signature (%d bytes, %v) does not verify as r‖s", len(sig), err)
	}
}

// TestRFC9530ContentDigest: RFC 9530 §2's example, {"hello": "world"}, gets
// Content-Digest sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,
// and an app's own Content-Digest (here the RFC's sha-512 one) is replaced.
func TestRFC9530ContentDigest(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Scheme: SchemeRFC9421, Algorithm: "hmac-sha256", KeyID: "k", Secret: strings.Repeat("s", 32)})
	if err != nil {
		t.Fatal(err)
	}
	req := readRequest(t, rfc9421Request)
	if err := s.Sign(req, time.Unix(1618884473, 0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := allValues(req, "Content-Digest"); got != "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" {
		t.Errorf("Content-Digest %q", got)
	}
}

// The test request of draft-cavage-http-signatures-10 Appendix C.
const cavageRequest = "POST /foo?param=value&pet=dog HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Date: Sun, 05 Jan 2014 21:31:40 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\r\n" +
	"Content-Length: 18\r\n" +
	"\r\n" +
	`{"hello": "world"}`

// TestCavageVectors: draft-cavage-10 Appendix C's signing strings and
// rsa-sha256 signatures with its test key, byte for byte, in both header
// forms; the Digest the signer computes is the draft's.
func TestCavageVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, headers, signingString, signature string
	}{
		{"C.1 default", "date",
			"date: Sun, 05 Jan 2014 21:31:40 GMT",
			"SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM="},
		{"C.2 basic", "(request-target) host date",
			"(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT",
			"qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0="},
		{"C.3 all headers", "(request-target) host date content-type digest content-length",
			"(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT\n" +
				"content-type: application/json\ndigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18",
			"vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="},
	}
	for _, tt := range tests {
		for _, header := range []string{"Authorization", "Signature"} {
			t.Run(tt.name+"/"+header, func(t *testing.T) {
				t.Parallel()
				s, err := New(Config{Scheme: SchemeCavage, Algorithm: "rsa-sha256", KeyID: "Test",
					KeyFile: "testdata/cavage-test-key.pem", Headers: tt.headers, Header: header})
				if err != nil {
					t.Fatal(err)
				}
				req := readRequest(t, cavageRequest)
				if err := s.Sign(req, time.Now()); err != nil {
					t.Fatal(err)
				}
				b := new(buffers)
				m := newMessage(req)
				s.cavageString(b, &m)
				if string(b.base) != tt.signingString {
					t.Errorf("signing string\n%s\nwant\n%s", b.base, tt.signingString)
				}
				want := `keyId="Test",algorithm="rsa-sha256",headers="` + tt.headers + `",signature="` + tt.signature + `"`
				if header == "Authorization" {
					want = "Signature " + want
				}
				if got, n := allValues(req, header); got != want || n != 1 {
					t.Errorf("%d %s headers: %s\nwant\n%s", n, header, got, want)
				}
				if got, _ := allValues(req, "Digest"); got != "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=" {
					t.Errorf("Digest %q", got)
				}
			})
		}
	}
}

// allValues returns the values of the named header joined by " | ", and
// how many there are.
func allValues(req *fasthttp.Request, name string) (string, int) {
	var vals []string
	for k, v := range req.Header.All() {
		if strings.EqualFold(string(k), name) {
			vals = append(vals, string(v))
		}
	}
	return strings.Join(vals, " | "), len(vals)
}
