package proxy_test

import (
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/certtest"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/relaytest"
)

// pki is one test's certificates on disk: a CA, relay B's server
// certificate, relay A's client certificate, and a stranger CA with a
// client certificate of its own.
type pki struct {
	dir                   string
	ca, other             *certtest.CA
	caFile, otherFile     string
	serverCert, serverKey string
	clientCert, clientKey string
	strangerCert          string
	strangerKey           string
	client                *certtest.Cert
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: certtest.NewCA(t, "pair CA"), other: certtest.NewCA(t, "other CA")}
	p.caFile = p.ca.Write(t, p.dir, "ca")
	p.otherFile = p.other.Write(t, p.dir, "other-ca")
	p.serverCert, p.serverKey = p.ca.Issue(t, certtest.Options{CommonName: "relay-b", DNSNames: []string{"relay-b.internal", "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}).Write(t, p.dir, "b")
	p.client = p.ca.Issue(t, certtest.Options{CommonName: "relay-a", DNSNames: []string{"relay-a.internal"}, Client: true})
	p.clientCert, p.clientKey = p.client.Write(t, p.dir, "a")
	p.strangerCert, p.strangerKey = p.other.Issue(t, certtest.Options{DNSNames: []string{"relay-a.internal"}, Client: true}).Write(t, p.dir, "stranger")
	return p
}

// tlsSet loads the TLS variables kv as cmd/pqrelay would.
func tlsSet(t testing.TB, kv ...string) *tlsconf.Set {
	t.Helper()
	env := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	st, err := tlsconf.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	set, err := tlsconf.Load(st)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// serverB is relay B's listener with mutual TLS for relay-a.internal.
func (p *pki) serverB(t testing.TB) *tlsconf.Set {
	return tlsSet(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey,
		"TLS_CLIENT_CA_FILE", p.caFile, "TLS_CLIENT_NAMES", "relay-a.internal")
}

// clientA is relay A trusting the CA with its client certificate.
func (p *pki) clientA(t testing.TB) *tlsconf.Set {
	return tlsSet(t, "PEER_CA_FILE", p.caFile, "PEER_CERT_FILE", p.clientCert, "PEER_KEY_FILE", p.clientKey)
}

// httpsClient talks to a relay's own endpoints with A's client certificate.
func (p *pki) httpsClient(t *testing.T, keepAlive bool) *http.Client {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: !keepAlive,
		TLSClientConfig:   &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{p.client.TLS(t)}},
	}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestTLSPair: a pair over mutual TLS end to end, with the hop on TLS 1.3
// and the hybrid group, and B's own endpoints answering over TLS. In
// `make test-fips` it runs in FIPS mode, where the group is still allowed.
func TestTLSPair(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	p := relaytest.NewPair(t, relaytest.Options{TLSA: k.clientA(t), TLSB: k.serverB(t)})
	if !strings.HasPrefix(p.PeerURL, "https://") {
		t.Fatalf("B serves %s", p.PeerURL)
	}
	for i := range 3 {
		r := do(t, p.Request(t, "POST", "/api/orders?id=7", strings.NewReader(`{"n":1}`)))
		if r.status != 200 || string(r.body) != `{"n":1}` || r.header.Get("X-Echo-URI") != "/api/orders?id=7" {
			t.Fatalf("request %d: %d %q %v\nA: %s\nB: %s", i, r.status, r.body, r.header, p.A.Logs(), p.B.Logs())
		}
	}

	// The configuration A's pool dials with is the one the relay link gets.
	c, err := tls.Dial("tcp", p.B.Addr, p.A.Server.PeerTLSConfig(p.B.Addr))
	if err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	c.Close()
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("A↔B: version %x group %v, want TLS 1.3 with X25519MLKEM768", cs.Version, cs.CurveID)
	}

	hc := k.httpsClient(t, true)
	resp, err := hc.Head(p.B.URL + "/api/mte-relay")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("x-mte-relay") != "pqrelay/1" {
		t.Errorf("HEAD /api/mte-relay over TLS: %d %v", resp.StatusCode, resp.Header)
	}
	for _, path := range []string{"/api/mte-health", "/api/mte-echo"} {
		resp, err := hc.Get(p.B.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s over TLS: %d", path, resp.StatusCode)
		}
	}
	// Without a client certificate B refuses at the handshake, and says so
	// once in its log however many such clients come.
	bare := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool()}}}
	for range 3 {
		if resp, err := bare.Get(p.B.URL + "/api/mte-echo"); err == nil {
			resp.Body.Close()
			t.Errorf("B answered a client without a certificate: %d", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.B.Logs(), "TLS handshake refused") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(p.B.Logs(), "TLS handshake refused"); n != 1 || !strings.Contains(p.B.Logs(), "certificate") {
		t.Errorf("B logged %d refusals, want one naming the certificate:\n%s", n, p.B.Logs())
	}
}

// TestPeerTLSErrors: each way the A↔B handshake fails gives the app a 502
// MTE_PEER_TLS without the resend loop (at most three connections per
// request: a refusal after the handshake is looked into once), with a
// message naming what to fix, and relay A logs it once.
func TestPeerTLSErrors(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	unnamedCert, unnamedKey := k.ca.Issue(t, certtest.Options{CommonName: "relay-z", Client: true}).Write(t, k.dir, "z")
	cases := []struct {
		name   string
		a, b   func() *tlsconf.Set
		fix    string // in the message
		reason string // in A's log line
	}{
		{"no client certificate", func() *tlsconf.Set { return tlsSet(t, "PEER_CA_FILE", k.caFile) }, k.serverBFunc(t),
			"PEER_CERT_FILE", "refused"},
		{"client certificate from another CA", func() *tlsconf.Set {
			return tlsSet(t, "PEER_CA_FILE", k.caFile, "PEER_CERT_FILE", k.strangerCert, "PEER_KEY_FILE", k.strangerKey)
		}, k.serverBFunc(t), "PEER_CERT_FILE", "refused"},
		{"client name not allowed", func() *tlsconf.Set {
			return tlsSet(t, "PEER_CA_FILE", k.caFile, "PEER_CERT_FILE", unnamedCert, "PEER_KEY_FILE", unnamedKey)
		}, k.serverBFunc(t), "TLS_CLIENT_NAMES", "refused"},
		{"B's certificate not trusted", func() *tlsconf.Set {
			return tlsSet(t, "PEER_CA_FILE", k.otherFile, "PEER_CERT_FILE", k.clientCert, "PEER_KEY_FILE", k.clientKey)
		}, k.serverBFunc(t), "PEER_CA_FILE", "untrusted"},
		{"B's certificate lacks the name", func() *tlsconf.Set {
			return tlsSet(t, "PEER_CA_FILE", k.caFile, "PEER_CERT_FILE", k.clientCert, "PEER_KEY_FILE", k.clientKey,
				"PEER_SERVER_NAME", "relay-q.internal")
		}, k.serverBFunc(t), "PEER_SERVER_NAME", "wrong name"},
		{"B serves plain HTTP", k.clientAFunc(t), func() *tlsconf.Set { return nil }, "TLS_CERT_FILE", "no TLS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{TLSA: c.a(), TLSB: c.b(), Tap: true})
			peer := strings.Replace(p.PeerURL, "http://", "https://", 1)
			for i := range 2 {
				req := p.Request(t, "GET", "/api/x", nil)
				req.Header.Set("x-mte-upstream", peer)
				r := do(t, req)
				if r.status != 502 || relayCode(r) != "MTE_PEER_TLS" {
					t.Fatalf("request %d: %d %s %s", i, r.status, relayCode(r), r.body)
				}
				var body struct{ Error string }
				if err := json.Unmarshal(r.body, &body); err != nil || !strings.Contains(body.Error, c.fix) {
					t.Errorf("message %q does not name %s", body.Error, c.fix)
				}
			}
			if n := p.Tap.Accepted(); n > 2*3 {
				t.Errorf("%d connections to B for 2 requests: a TLS failure was resent", n)
			}
			if p.Upstream.Calls() != 0 {
				t.Errorf("the upstream was called %d times", p.Upstream.Calls())
			}
			logs := p.A.Logs()
			if n := strings.Count(logs, "TLS to the inbound relay failed"); n != 1 || !strings.Contains(logs, "failure=\""+c.reason+"\"") && !strings.Contains(logs, "failure="+c.reason) {
				t.Errorf("A logged the failure %d times (want once, failure=%s):\n%s", n, c.reason, logs)
			}
		})
	}
}

func (p *pki) serverBFunc(t *testing.T) func() *tlsconf.Set {
	return func() *tlsconf.Set { return p.serverB(t) }
}
func (p *pki) clientAFunc(t *testing.T) func() *tlsconf.Set {
	return func() *tlsconf.Set { return p.clientA(t) }
}

// TestUpstreamTLS: relay B reaches an API that requires mutual TLS with
// UPSTREAM_CA_FILE and UPSTREAM_CERT_FILE / UPSTREAM_KEY_FILE; without
// them the app gets MTE_UPSTREAM_TLS, sealed, naming what to fix.
func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	apiCert := k.ca.Issue(t, certtest.Options{DNSNames: []string{"api.internal"}})
	api := &tls.Config{Certificates: []tls.Certificate{apiCert.TLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: k.ca.Pool()}
	cases := []struct {
		name string
		b    []string
		fix  string // "" for success
	}{
		{"mutual TLS", []string{"UPSTREAM_CA_FILE", k.caFile, "UPSTREAM_CERT_FILE", k.clientCert, "UPSTREAM_KEY_FILE", k.clientKey,
			"UPSTREAM_SERVER_NAME", "api.internal"}, ""},
		{"no client certificate", []string{"UPSTREAM_CA_FILE", k.caFile, "UPSTREAM_SERVER_NAME", "api.internal"}, "UPSTREAM_CERT_FILE"},
		{"API not trusted", []string{"UPSTREAM_CERT_FILE", k.clientCert, "UPSTREAM_KEY_FILE", k.clientKey,
			"UPSTREAM_SERVER_NAME", "api.internal"}, "UPSTREAM_CA_FILE"},
		{"API's name differs", []string{"UPSTREAM_CA_FILE", k.caFile, "UPSTREAM_CERT_FILE", k.clientCert, "UPSTREAM_KEY_FILE", k.clientKey}, "UPSTREAM_SERVER_NAME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{UpstreamTLS: api, TLSB: tlsSet(t, c.b...)})
			for i := range 2 {
				r := do(t, p.Request(t, "POST", "/api/pay", strings.NewReader("42")))
				if c.fix == "" {
					if r.status != 200 || string(r.body) != "42" {
						t.Fatalf("request %d: %d %q\nB: %s", i, r.status, r.body, p.B.Logs())
					}
					continue
				}
				var body struct{ Error string }
				_ = json.Unmarshal(r.body, &body)
				if r.status != 502 || relayCode(r) != "MTE_UPSTREAM_TLS" || !strings.Contains(body.Error, c.fix) {
					t.Fatalf("request %d: %d %s %q, want 502 MTE_UPSTREAM_TLS naming %s", i, r.status, relayCode(r), body.Error, c.fix)
				}
			}
			if n := strings.Count(p.B.Logs(), "TLS to UPSTREAM failed"); (c.fix == "") != (n == 0) || n > 1 {
				t.Errorf("B logged %d TLS failures:\n%s", n, p.B.Logs())
			}
		})
	}
}

// TestTLSRotationUnderLoad: B's certificate and key are replaced and
// reloaded while the pair carries requests and new TLS connections keep
// arriving at B; no request fails, and handshakes after the reload get the
// new serial.
func TestTLSRotationUnderLoad(t *testing.T) {
	t.Parallel()
	k := newPKI(t)
	setB := k.serverB(t)
	p := relaytest.NewPair(t, relaytest.Options{TLSA: k.clientA(t), TLSB: setB})
	fresh := k.httpsClient(t, false) // a new handshake per request
	next := k.ca.Issue(t, certtest.Options{CommonName: "relay-b", DNSNames: []string{"relay-b.internal", "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	wantSerial := next.Cert.SerialNumber.Text(16)

	const workers, perWorker = 8, 150
	var failed, sawNew atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < perWorker && time.Now().Before(deadline); i++ {
				if w%2 == 0 {
					r, err := fresh.Get(p.B.URL + "/api/mte-echo")
					if err != nil {
						failed.Add(1)
						failures.Store(err.Error(), true)
						continue
					}
					r.Body.Close()
					if r.TLS.PeerCertificates[0].SerialNumber.Text(16) == wantSerial {
						sawNew.Add(1)
					}
					continue
				}
				req := p.Request(t, "POST", "/api/load", strings.NewReader("x"))
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					failures.Store(resp.Status+" "+resp.Header.Get("x-mte-relay-error"), true)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	next.Write(t, k.dir, "b") // b.crt then b.key
	setB.Reload(slog.New(slog.DiscardHandler))
	wg.Wait()
	if failed.Load() != 0 {
		var msgs []string
		failures.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
		t.Fatalf("%d requests failed during the rotation: %v", failed.Load(), msgs)
	}
	if sawNew.Load() == 0 {
		t.Error("no new handshake saw the new certificate during the load")
	}
	r, err := fresh.Get(p.B.URL + "/api/mte-echo")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if got := r.TLS.PeerCertificates[0].SerialNumber.Text(16); got != wantSerial {
		t.Errorf("after the reload B serves serial %s, want %s", got, wantSerial)
	}
}
