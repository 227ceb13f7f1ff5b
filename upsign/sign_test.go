package upsign

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/sigverify"
	"github.com/valyala/fasthttp"
)

// testSecret is 64 bytes: httpsign refuses shorter HMAC keys.
const testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// testKeyFiles are the key files of the asymmetric algorithms: RFC 9421's
// test keys (§B.1), and for RSA a 2048-bit key made with openssl genrsa for
// these tests, shaped like production keys (the RFC's RSA test key has
// primes of unequal size).
var testKeyFiles = map[string]string{
	"ed25519":           "testdata/rfc9421-test-key-ed25519.pem",
	"ecdsa-p256-sha256": "testdata/rfc9421-test-key-ecc-p256.pem",
	"rsa-pss-sha512":    "testdata/test-key-rsa-2048.pem",
	"rsa-v1_5-sha256":   "testdata/test-key-rsa-2048.pem",
	"rsa-sha256":        "testdata/test-key-rsa-2048.pem",
}

// testConfig is a working configuration for scheme and algorithm, and the
// key an API would verify it with.
func testConfig(t testing.TB, scheme, alg string) (Config, sigverify.Key) {
	c := Config{Scheme: scheme, Algorithm: alg, KeyID: "relay-b-2026"}
	k := sigverify.Key{Scheme: scheme, Algorithm: alg, KeyID: c.KeyID}
	if file, ok := testKeyFiles[alg]; ok {
		c.KeyFile = file
		k.Public = privateKey(t, file).Public()
	} else {
		c.Secret = testSecret
		k.Secret = []byte(testSecret)
	}
	return c, k
}

// upstreamRequest is a request as the inbound relay builds it for the
// upstream: an absolute URI, no Host header of its own.
func upstreamRequest(method, uri, body string) *fasthttp.Request {
	req := new(fasthttp.Request)
	req.SetRequestURI(uri)
	req.Header.SetMethod(method)
	req.Header.SetNoDefaultContentType(true)
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	req.Header.Add("Accept", "application/json")
	req.Header.Add("X-Trace", " a ")
	req.Header.Add("X-Trace", "b")
	return req
}

// received is req as an API's net/http server reads it off the wire, with
// its body.
func received(t testing.TB, req *fasthttp.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	w := bufio.NewWriter(&wire)
	if err := req.Write(w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

var requestShapes = []struct{ name, method, uri, body string }{
	{"POST with body and query", "POST", "http://127.0.0.1:9000/api/items?id=42&q=a+b%2Fc", `{"hello": "world"}`},
	{"GET", "GET", "http://127.0.0.1:9000/api/items", ""},
	{"DELETE with encoded path", "DELETE", "http://127.0.0.1:9000/api/a%20b/c", ""},
}

// TestRFC9421VerifiedByHTTPSign: each rfc9421 algorithm, over requests with
// and without a body, verifies with yaronf/httpsign (and its Content-Digest
// check) on the request as a net/http server reads it; with SIGNING_MAX_AGE
// the expires parameter is there. A changed method, path, body or date
// must then fail, which shows the verifier is really checking.
func TestRFC9421VerifiedByHTTPSign(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"hmac-sha256", "ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512", "rsa-v1_5-sha256"} {
		for _, shape := range requestShapes {
			t.Run(alg+"/"+shape.name, func(t *testing.T) {
				t.Parallel()
				c, key := testConfig(t, SchemeRFC9421, alg)
				c.MaxAge = time.Minute
				s, err := New(c)
				if err != nil {
					t.Fatal(err)
				}
				req := upstreamRequest(shape.method, shape.uri, shape.body)
				now := time.Now()
				if err := s.Sign(req, now); err != nil {
					t.Fatal(err)
				}
				r, body := received(t, req)
				if err := sigverify.Verify(r, body, key); err != nil {
					t.Fatalf("httpsign refuses: %v\nSignature-Input: %s", err, r.Header.Get("Signature-Input"))
				}
				input := r.Header.Get("Signature-Input")
				for _, want := range []string{"created=", `keyid="relay-b-2026"`, `alg="` + alg + `"`, "expires="} {
					if !strings.Contains(input, want) {
						t.Errorf("Signature-Input %s lacks %s", input, want)
					}
				}
				for _, tamper := range tampers {
					r, body := received(t, req)
					tamper.change(r, &body)
					if sigverify.Verify(r, body, key) == nil {
						t.Errorf("still verifies with %s", tamper.name)
					}
				}
			})
		}
	}
}

var tampers = []struct {
	name   string
	change func(r *http.Request, body *[]byte)
}{
	{"another method", func(r *http.Request, _ *[]byte) { r.Method = "PUT" }},
	{"another path", func(r *http.Request, _ *[]byte) { r.URL.Path += "x"; r.RequestURI = r.URL.RequestURI() }},
	{"another body", func(r *http.Request, b *[]byte) { *b = append(*b, ' ') }},
	{"another date", func(r *http.Request, _ *[]byte) {
		d, _ := http.ParseTime(r.Header.Get("Date"))
		r.Header.Set("Date", d.Add(-time.Second).UTC().Format(http.TimeFormat))
	}},
}

// tykFormat is the exact shape of the Authorization header Tyk's request
// signing sends (gateway/mw_request_signing.go).
var tykFormat = regexp.MustCompile(`^Signature keyId="[^"]+",algorithm="[a-z0-9-]+",headers="[^"]+",signature="[^"]+"$`)

// TestCavageVerifiedFromSpec: each cavage algorithm, in both header forms,
// verifies with a verifier written from the draft; the Authorization form
// has Tyk's exact shape; with SIGNING_SIGNATURE_ENCODING=tyk an HMAC
// signature passes Tyk's comparison (and fails the draft's decoding), and
// tampering is caught.
func TestCavageVerifiedFromSpec(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512", "rsa-sha256"} {
		for _, header := range []string{"Authorization", "Signature"} {
			for _, encoding := range []string{EncodingBase64, EncodingTyk} {
				for _, shape := range requestShapes {
					t.Run(alg+"/"+header+"/"+encoding+"/"+shape.name, func(t *testing.T) {
						t.Parallel()
						c, key := testConfig(t, SchemeCavage, alg)
						c.Header, c.Encoding, key.Header = header, encoding, header
						s, err := New(c)
						if err != nil {
							t.Fatal(err)
						}
						req := upstreamRequest(shape.method, shape.uri, shape.body)
						if err := s.Sign(req, time.Now()); err != nil {
							t.Fatal(err)
						}
						r, body := received(t, req)
						value := r.Header.Get(header)
						if header == "Authorization" && !tykFormat.MatchString(value) {
							t.Errorf("Authorization %q is not in Tyk's format", value)
						}
						escaped := encoding == EncodingTyk && alg != "rsa-sha256"
						key.Tyk = escaped
						if err := sigverify.Verify(r, body, key); err != nil {
							t.Fatalf("%v\n%s: %s", err, header, value)
						}
						if escaped {
							key.Tyk = false
							if sigverify.Verify(r, body, key) == nil && strings.Contains(value, "%") {
								t.Error("an escaped signature passed the draft's verifier")
							}
							key.Tyk = true
						}
						for _, tamper := range tampers {
							r, body := received(t, req)
							tamper.change(r, &body)
							if sigverify.Verify(r, body, key) == nil {
								t.Errorf("still verifies with %s", tamper.name)
							}
						}
					})
				}
			}
		}
	}
}

// TestUntrustedHeadersReplaced: whatever the app sent as Signature,
// Signature-Input, Digest or Content-Digest (and Authorization when it
// carries the cavage signature) is gone after signing; only the signer's
// values remain, and an app's Authorization survives when the signature
// goes elsewhere. An app's Date is kept; a missing one is added.
func TestUntrustedHeadersReplaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scheme, header string
		body           string
		want           map[string]int // header → count after signing; the app sends two of each
	}{
		{SchemeCavage, "Authorization", "x", map[string]int{"Authorization": 1, "Signature": 0, "Signature-Input": 0, "Digest": 1, "Content-Digest": 0}},
		{SchemeCavage, "Signature", "x", map[string]int{"Authorization": 2, "Signature": 1, "Signature-Input": 0, "Digest": 1, "Content-Digest": 0}},
		{SchemeCavage, "Authorization", "", map[string]int{"Authorization": 1, "Signature": 0, "Digest": 0, "Content-Digest": 0}},
		{SchemeRFC9421, "", "x", map[string]int{"Authorization": 2, "Signature": 1, "Signature-Input": 1, "Digest": 0, "Content-Digest": 1}},
		{SchemeRFC9421, "", "", map[string]int{"Authorization": 2, "Signature": 1, "Signature-Input": 1, "Digest": 0, "Content-Digest": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.scheme+"/"+tt.header+"/body="+tt.body, func(t *testing.T) {
			t.Parallel()
			c, _ := testConfig(t, tt.scheme, "hmac-sha256")
			c.Header = tt.header
			s, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, withDate := range []bool{true, false} {
				req := upstreamRequest("POST", "http://127.0.0.1:9000/x", tt.body)
				for _, name := range []string{"Signature", "Signature-Input", "Digest", "Content-Digest", "Authorization"} {
					req.Header.Add(name, "from-the-app")
					req.Header.Add(strings.ToLower(name), "from-the-app-again")
				}
				if withDate {
					req.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
				}
				now := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
				if err := s.Sign(req, now); err != nil {
					t.Fatal(err)
				}
				for name, n := range tt.want {
					values, got := allValues(req, name)
					if got != n {
						t.Errorf("%d %s headers (%s), want %d", got, name, values, n)
					}
					appsKept := name == "Authorization" && tt.header != "Authorization"
					if strings.Contains(values, "from-the-app") != appsKept {
						t.Errorf("%s: %s", name, values)
					}
				}
				date, _ := allValues(req, "Date")
				if want := map[bool]string{true: "Tue, 20 Apr 2021 02:07:55 GMT", false: "Thu, 26 Nov 2026 01:02:03 GMT"}[withDate]; date != want {
					t.Errorf("Date %q, want %q", date, want)
				}
			}
		})
	}
}

// TestCoveredOnlyWhenPresent: a listed header the request lacks is left out
// of that request's list, in both schemes, and the signature still
// verifies over what was covered.
func TestCoveredOnlyWhenPresent(t *testing.T) {
	t.Parallel()
	c, key := testConfig(t, SchemeCavage, "hmac-sha256")
	c.Headers = "(request-target) host date x-tenant digest content-length"
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	req := upstreamRequest("GET", "http://127.0.0.1:9000/a?b=c", "")
	if err := s.Sign(req, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, body := received(t, req)
	if v := r.Header.Get("Authorization"); !strings.Contains(v, `headers="(request-target) host date",`) {
		t.Errorf("Authorization %s", v)
	}
	if err := sigverify.Verify(r, body, key); err != nil {
		t.Error(err)
	}

	c, key = testConfig(t, SchemeRFC9421, "ed25519")
	c.Headers = `"@method" "@authority" "@path" "@query" "@query-param";name="q" "@query-param";name="missing" "x-trace" "content-length" "content-type"`
	if s, err = New(c); err != nil {
		t.Fatal(err)
	}
	req = upstreamRequest("POST", "http://127.0.0.1:9000/a?q=1&q=a%20b+c&z", "{}")
	if err := s.Sign(req, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, body = received(t, req)
	wantList := `("@method" "@authority" "@path" "@query" "@query-param";name="q" "x-trace" "content-length" "content-type")`
	if v := r.Header.Get("Signature-Input"); !strings.HasPrefix(v, "pqrelay="+wantList) {
		t.Errorf("Signature-Input %s, want the list %s", v, wantList)
	}
	key.Covered = []string{"@method", "@authority", "@path", "@query", "x-trace", "content-length", "content-type"}
	if err := sigverify.Verify(r, body, key); err != nil {
		t.Error(err)
	}
}

// TestNewRefuses: each wrong configuration is one error naming the
// variable to fix.
func TestNewRefuses(t *testing.T) {
	t.Parallel()
	hmacCavage := Config{Scheme: SchemeCavage, Algorithm: "hmac-sha256", KeyID: "k", Secret: testSecret}
	ed := Config{Scheme: SchemeRFC9421, Algorithm: "ed25519", KeyID: "k", KeyFile: testKeyFiles["ed25519"]}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	tests := []struct {
		name     string
		c        Config
		variable string
	}{
		{"unknown scheme", with(hmacCavage, func(c *Config) { c.Scheme = "jws" }), "UPSTREAM_SIGNING"},
		{"rfc9421 algorithm with cavage", with(hmacCavage, func(c *Config) { c.Algorithm = "ed25519" }), "SIGNING_ALGORITHM"},
		{"cavage algorithm with rfc9421", with(ed, func(c *Config) { c.Algorithm = "rsa-sha256" }), "SIGNING_ALGORITHM"},
		{"no key id", with(hmacCavage, func(c *Config) { c.KeyID = "" }), "SIGNING_KEY_ID"},
		{"quote in key id", with(hmacCavage, func(c *Config) { c.KeyID = `a"b` }), "SIGNING_KEY_ID"},
		{"short secret", with(hmacCavage, func(c *Config) { c.Secret = "0123456789abcde" }), "SIGNING_SECRET"},
		{"HMAC with a key file", with(hmacCavage, func(c *Config) { c.KeyFile = testKeyFiles["ed25519"] }), "SIGNING_KEY_FILE"},
		{"key file with a secret", with(ed, func(c *Config) { c.Secret = testSecret }), "SIGNING_SECRET"},
		{"no key file", with(ed, func(c *Config) { c.KeyFile = "" }), "SIGNING_KEY_FILE"},
		{"unreadable key file", with(ed, func(c *Config) { c.KeyFile = "testdata/none.pem" }), "SIGNING_KEY_FILE"},
		{"not PEM", with(ed, func(c *Config) { c.KeyFile = "sign.go" }), "SIGNING_KEY_FILE"},
		{"public key file", with(ed, func(c *Config) { c.KeyFile = "testdata/rfc9421-test-key-rsa-pss.pub.pem" }), "SIGNING_KEY_FILE"},
		{"RSA key for ed25519", with(ed, func(c *Config) { c.KeyFile = testKeyFiles["rsa-sha256"] }), "SIGNING_KEY_FILE"},
		{"P-256 key for RSA", with(ed, func(c *Config) { c.Algorithm = "rsa-pss-sha512"; c.KeyFile = testKeyFiles["ecdsa-p256-sha256"] }), "SIGNING_KEY_FILE"},
		{"unknown component", with(ed, func(c *Config) { c.Headers = `"@method" "@status"` }), "SIGNING_HEADERS"},
		{"component parameter", with(ed, func(c *Config) { c.Headers = `"date";sf` }), "SIGNING_HEADERS"},
		{"unquoted component", with(ed, func(c *Config) { c.Headers = `@method` }), "SIGNING_HEADERS"},
		{"upper-case field", with(ed, func(c *Config) { c.Headers = `"Date"` }), "SIGNING_HEADERS"},
		{"covering the signature", with(ed, func(c *Config) { c.Headers = `"signature"` }), "SIGNING_HEADERS"},
		{"cavage pseudo-header", with(hmacCavage, func(c *Config) { c.Headers = "(created) date" }), "SIGNING_HEADERS"},
		{"cavage without date or target", with(hmacCavage, func(c *Config) { c.Headers = "host digest" }), "SIGNING_HEADERS"},
		{"cavage covering its header", with(hmacCavage, func(c *Config) { c.Headers = "date authorization" }), "SIGNING_HEADERS"},
		{"cavage header twice", with(hmacCavage, func(c *Config) { c.Headers = "date Date" }), "SIGNING_HEADERS"},
		{"unknown signature header", with(hmacCavage, func(c *Config) { c.Header = "X-Signature" }), "SIGNING_HEADER"},
		{"signature header with rfc9421", with(ed, func(c *Config) { c.Header = "Signature" }), "SIGNING_HEADER"},
		{"unknown encoding", with(hmacCavage, func(c *Config) { c.Encoding = "hex" }), "SIGNING_SIGNATURE_ENCODING"},
		{"max age with cavage", with(hmacCavage, func(c *Config) { c.MaxAge = time.Minute }), "SIGNING_MAX_AGE"},
		{"sub-second max age", with(ed, func(c *Config) { c.MaxAge = time.Millisecond }), "SIGNING_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.c)
			if err == nil || !strings.HasPrefix(err.Error(), tt.variable+": ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("New: %v, want one line starting %s: ", err, tt.variable)
			}
		})
	}
	for _, ok := range []Config{hmacCavage, ed} {
		if _, err := New(ok); err != nil {
			t.Errorf("New(%+v): %v", ok, err)
		}
	}
}

// TestSignConcurrent: one Signer serves many goroutines at once, as relay
// B's does; its pooled hash states and buffers must not mix requests (run
// with -race), so every signature verifies for its own request.
func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{SchemeCavage, SchemeRFC9421} {
		c, key := testConfig(t, scheme, "hmac-sha256")
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					body := strings.Repeat(strconv.Itoa(g), i)
					req := upstreamRequest("POST", "http://127.0.0.1:9000/g/"+strconv.Itoa(g)+"?i="+strconv.Itoa(i), body)
					if err := s.Sign(req, time.Now()); err != nil {
						t.Error(err)
						return
					}
					r, got := received(t, req)
					if err := sigverify.Verify(r, got, key); err != nil {
						t.Errorf("%s goroutine %d request %d: %v", scheme, g, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// TestSignSpecialHeadersOff: the inbound relay builds its upstream request
// with fasthttp's special-header handling off (Host, Content-Type,
// Content-Length and Cookie as plain fields, written as they are). Signing
// such a request covers those fields as written, once each, and leaves the
// Cookie field byte for byte.
func TestSignSpecialHeadersOff(t *testing.T) {
	t.Parallel()
	const cookie = `a="q r"; lone; b=2`
	c, key := testConfig(t, SchemeRFC9421, "ed25519")
	c.Headers = `"@method" "@target-uri" "@authority" "content-type" "content-length" "cookie" "content-digest" "date"`
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	req := new(fasthttp.Request)
	req.Header.DisableSpecialHeader()
	req.SetRequestURI("http://127.0.0.1:9000/api/items?id=1")
	req.Header.SetMethod("POST")
	req.Header.Add("Host", "127.0.0.1:9000")
	req.Header.Add("Content-Type", "application/json")
	req.Header.Add("Cookie", cookie)
	req.Header.Add("Content-Length", "2")
	req.SetBodyString("{}")
	if err := s.Sign(req, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, body := received(t, req)
	key.Covered = []string{"@authority", "content-type", "content-length", "cookie"}
	if err := sigverify.Verify(r, body, key); err != nil {
		t.Fatalf("%v\n%v", err, r.Header)
	}
	if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != cookie {
		t.Errorf("Cookie %q, want %q", got, cookie)
	}
	if got := r.Header.Values("Content-Type"); len(got) != 1 {
		t.Errorf("Content-Type %q", got)
	}
}
