package tlsconf

import (
	"bufio"
	"context"
	"crypto/fips140"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/certtest"
	"github.com/pqrelay/pqrelay/internal/syncbuf"
)

// pki is one test's certificates: a CA with a server and a client
// certificate, and a stranger CA with a client certificate of its own.
type pki struct {
	dir                            string
	ca, other                      *certtest.CA
	caFile, otherFile              string
	serverCert, serverKey          string
	clientCert, clientKey          string
	strangerCert, strangerKey      string
	server, client, strangerClient *certtest.Cert
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.ca = certtest.NewCA(t, "test CA")
	p.other = certtest.NewCA(t, "other CA")
	p.caFile = p.ca.Write(t, p.dir, "ca")
	p.otherFile = p.other.Write(t, p.dir, "other-ca")
	p.server = p.ca.Issue(t, certtest.Options{})
	p.serverCert, p.serverKey = p.server.Write(t, p.dir, "server")
	p.client = p.ca.Issue(t, certtest.Options{CommonName: "relay-a", DNSNames: []string{"relay-a.internal"},
		URIs: []string{"spiffe://example.org/relay-a"}, Client: true})
	p.clientCert, p.clientKey = p.client.Write(t, p.dir, "client")
	p.strangerClient = p.other.Issue(t, certtest.Options{CommonName: "relay-a", DNSNames: []string{"relay-a.internal"}, Client: true})
	p.strangerCert, p.strangerKey = p.strangerClient.Write(t, p.dir, "stranger")
	return p
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// load loads the settings kv and returns the set with a logger that writes
// to the buffer returned.
func load(t *testing.T, kv ...string) (*Set, *slog.Logger, *syncbuf.Buffer) {
	t.Helper()
	st, err := FromEnv(envOf(kv...))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	s, err := Load(st)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	logs := &syncbuf.Buffer{}
	return s, slog.New(slog.NewTextHandler(logs, nil)), logs
}

// serve runs a TLS echo server on 127.0.0.1 with cfg: each connection gets
// back the serial number of the certificate it was served, then echoes
// lines. Handshake errors are sent to errs.
func serve(t *testing.T, cfg *tls.Config) (addr string, errs chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	errs = make(chan error, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String(), errs
}

// dial handshakes with addr, writes a line and reads it back, so that a
// client certificate the server refuses (which TLS 1.3 reports only after
// the client's side of the handshake is done) fails here too.
func dial(cfg *tls.Config, addr string) (tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return c.ConnectionState(), err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("echo: " + line)
	}
	return c.ConnectionState(), err
}

func TestFromEnvErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kv      []string
		wantVar string
	}{
		{[]string{"TLS_KEY_FILE", "k"}, "TLS_CERT_FILE"},
		{[]string{"TLS_CERT_FILE", "c"}, "TLS_KEY_FILE"},
		{[]string{"TLS_CLIENT_CA_FILE", "ca"}, "TLS_CLIENT_CA_FILE"},
		{[]string{"TLS_CERT_FILE", "c", "TLS_KEY_FILE", "k", "TLS_CLIENT_NAMES", "a"}, "TLS_CLIENT_NAMES"},
		{[]string{"TLS_CERT_FILE", "c", "TLS_KEY_FILE", "k", "TLS_MIN_VERSION", "1.1"}, "TLS_MIN_VERSION"},
		{[]string{"TLS_CERT_FILE", "c", "TLS_KEY_FILE", "k", "TLS_MIN_VERSION", "tls13"}, "TLS_MIN_VERSION"},
		{[]string{"TLS_MIN_VERSION", "1.3"}, "TLS_MIN_VERSION"},
		{[]string{"PEER_KEY_FILE", "k"}, "PEER_CERT_FILE"},
		{[]string{"PEER_CERT_FILE", "c"}, "PEER_KEY_FILE"},
		{[]string{"PEER_SERVER_NAME", "relay-b:8443"}, "PEER_SERVER_NAME"},
		{[]string{"UPSTREAM_CERT_FILE", "c"}, "UPSTREAM_KEY_FILE"},
		{[]string{"UPSTREAM_SERVER_NAME", "https://api"}, "UPSTREAM_SERVER_NAME"},
		{[]string{"REDIS_KEY_FILE", "k"}, "REDIS_CERT_FILE"},
	}
	for _, c := range cases {
		_, err := FromEnv(envOf(c.kv...))
		if err == nil {
			t.Errorf("%v: accepted", c.kv)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, c.wantVar+":") || strings.Contains(msg, "\n") {
			t.Errorf("%v: error %q does not start with %s: or is not one line", c.kv, msg, c.wantVar)
		}
	}
}

// TestLoadErrors covers every start-up failure of a file: missing,
// unreadable, not PEM, a key from another pair, expired, not yet valid, and
// a CA file holding a leaf or an expired CA.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	expired := p.ca.Issue(t, certtest.Expired(certtest.Options{}))
	expCert, expKey := expired.Write(t, p.dir, "expired")
	future := p.ca.Issue(t, certtest.Options{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
	futCert, futKey := future.Write(t, p.dir, "future")
	notPEM := certtest.WriteFile(t, p.dir, "garbage.pem", []byte("not a certificate\n"))
	keyOnly := certtest.WriteFile(t, p.dir, "key-only.pem", p.server.KeyPEM)
	dir := p.dir // a directory: opens but does not read
	missing := filepath.Join(p.dir, "missing.pem")
	tlsOn := []string{"TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey}

	cases := []struct {
		name    string
		kv      []string
		wantVar string
		want    string
	}{
		{"missing cert", []string{"TLS_CERT_FILE", missing, "TLS_KEY_FILE", p.serverKey}, "TLS_CERT_FILE", "no such file"},
		{"missing key", []string{"TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", missing}, "TLS_KEY_FILE", "no such file"},
		{"unreadable cert", []string{"TLS_CERT_FILE", dir, "TLS_KEY_FILE", p.serverKey}, "TLS_CERT_FILE", "cannot read"},
		{"cert not PEM", []string{"TLS_CERT_FILE", notPEM, "TLS_KEY_FILE", p.serverKey}, "TLS_CERT_FILE", "no PEM certificate"},
		{"key is a cert", []string{"TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverCert}, "TLS_KEY_FILE", "no PEM private key"},
		{"cert is a key", []string{"TLS_CERT_FILE", keyOnly, "TLS_KEY_FILE", p.serverKey}, "TLS_CERT_FILE", "no PEM certificate"},
		{"mismatched key", []string{"TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.clientKey}, "TLS_KEY_FILE", "does not match"},
		{"expired cert", []string{"TLS_CERT_FILE", expCert, "TLS_KEY_FILE", expKey}, "TLS_CERT_FILE", "expired at"},
		{"future cert", []string{"TLS_CERT_FILE", futCert, "TLS_KEY_FILE", futKey}, "TLS_CERT_FILE", "not valid before"},
		{"client CA missing", append(slices.Clone(tlsOn), "TLS_CLIENT_CA_FILE", missing), "TLS_CLIENT_CA_FILE", "no such file"},
		{"client CA is a leaf", append(slices.Clone(tlsOn), "TLS_CLIENT_CA_FILE", p.serverCert), "TLS_CLIENT_CA_FILE", "is not a CA"},
		{"client CA not PEM", append(slices.Clone(tlsOn), "TLS_CLIENT_CA_FILE", notPEM), "TLS_CLIENT_CA_FILE", "no PEM certificate"},
		{"peer CA is a leaf", []string{"PEER_CA_FILE", p.clientCert}, "PEER_CA_FILE", "is not a CA"},
		{"peer CA missing", []string{"PEER_CA_FILE", missing}, "PEER_CA_FILE", "no such file"},
		{"peer key mismatched", []string{"PEER_CERT_FILE", p.clientCert, "PEER_KEY_FILE", p.serverKey}, "PEER_KEY_FILE", "does not match"},
		{"peer cert expired", []string{"PEER_CERT_FILE", expCert, "PEER_KEY_FILE", expKey}, "PEER_CERT_FILE", "expired at"},
		{"upstream CA not PEM", []string{"UPSTREAM_CA_FILE", notPEM}, "UPSTREAM_CA_FILE", "no PEM certificate"},
		{"upstream cert missing", []string{"UPSTREAM_CERT_FILE", missing, "UPSTREAM_KEY_FILE", p.clientKey}, "UPSTREAM_CERT_FILE", "no such file"},
		{"upstream key mismatched", []string{"UPSTREAM_CERT_FILE", p.clientCert, "UPSTREAM_KEY_FILE", p.serverKey}, "UPSTREAM_KEY_FILE", "does not match"},
		{"redis CA is a leaf", []string{"REDIS_CA_FILE", p.serverCert}, "REDIS_CA_FILE", "is not a CA"},
		{"redis cert expired", []string{"REDIS_CERT_FILE", expCert, "REDIS_KEY_FILE", expKey}, "REDIS_CERT_FILE", "expired at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, err := FromEnv(envOf(c.kv...))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			_, err = Load(st)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.wantVar+":") || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting %s: and containing %q", msg, c.wantVar, c.want)
			}
			if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "BEGIN") {
				t.Errorf("error %q quotes file contents", msg)
			}
		})
	}
}

// TestExpiredCAFile loads a CA file whose only CA has expired.
func TestExpiredCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := certtest.NewExpiredCA(t, "expired CA")
	file := old.Write(t, dir, "old")
	st, _ := FromEnv(envOf("PEER_CA_FILE", file))
	_, err := Load(st)
	if err == nil || !strings.HasPrefix(err.Error(), "PEER_CA_FILE:") || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("Load: %v; want PEER_CA_FILE: … expired at", err)
	}
}

// TestMutualTLS: a listener requiring client certificates and a client side
// with the CA and its certificate agree on TLS 1.3 and the hybrid group.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey,
		"TLS_CLIENT_CA_FILE", p.caFile, "TLS_CLIENT_NAMES", "other-relay, relay-a.internal")
	addr, errs := serve(t, srv.Listener.Config())
	cli, _, _ := load(t, "PEER_CA_FILE", p.caFile, "PEER_CERT_FILE", p.clientCert, "PEER_KEY_FILE", p.clientKey)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		cs, err := dial(cli.Peer.Config(host), addr)
		if err != nil {
			t.Fatalf("%s: %v (server: %v)", host, err, drain(errs))
		}
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("%s: version %x, want TLS 1.3", host, cs.Version)
		}
		if cs.CurveID != tls.X25519MLKEM768 {
			t.Errorf("%s: group %v, want X25519MLKEM768", host, cs.CurveID)
		}
		if got := cs.PeerCertificates[0].SerialNumber; got.Cmp(p.server.Cert.SerialNumber) != 0 {
			t.Errorf("%s: served serial %x, want %x", host, got, p.server.Cert.SerialNumber)
		}
	}
	// A reconnection resumes, and is still held to TLS_CLIENT_NAMES and
	// the server's name.
	if cs, err := dial(cli.Peer.Config("localhost"), addr); err != nil || !cs.DidResume {
		t.Errorf("reconnection: resumed %v, err %v", cs.DidResume, err)
	}
}

// TestFIPSGroups runs in `make test-fips` (GODEBUG=fips140=on): the hybrid
// group is still negotiated, and a client offering only X25519, which the
// FIPS module does not provide, cannot connect. Outside FIPS mode it checks
// that such a client can.
func TestFIPSGroups(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey)
	addr, _ := serve(t, srv.Listener.Config())
	cli, _, _ := load(t, "PEER_CA_FILE", p.caFile)
	cs, err := dial(cli.Peer.Config("127.0.0.1"), addr)
	if err != nil || cs.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("default client: group %v, err %v; want X25519MLKEM768", cs.CurveID, err)
	}
	x25519Only := cli.Peer.Config("127.0.0.1")
	x25519Only.CurvePreferences = []tls.CurveID{tls.X25519}
	cs, err = dial(x25519Only, addr)
	switch {
	case fips140.Enabled() && err == nil:
		t.Errorf("FIPS mode: a client offering only X25519 connected (group %v)", cs.CurveID)
	case !fips140.Enabled() && (err != nil || cs.CurveID != tls.X25519):
		t.Errorf("X25519-only client: group %v, err %v", cs.CurveID, err)
	}
	p256 := cli.Peer.Config("127.0.0.1")
	p256.CurvePreferences = []tls.CurveID{tls.CurveP256}
	if cs, err = dial(p256, addr); err != nil || cs.CurveID != tls.CurveP256 {
		t.Errorf("P-256-only client: group %v, err %v", cs.CurveID, err)
	}
}

// TestTLS12Suites: a TLS 1.2 client gets a forward-secret AEAD suite, and
// one offering only CBC suites (in Go's default list) is refused.
func TestTLS12Suites(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey)
	addr, _ := serve(t, srv.Listener.Config())
	cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	cs, err := dial(cfg, addr)
	if err != nil || cs.Version != tls.VersionTLS12 || !slices.Contains(tls12Suites, cs.CipherSuite) {
		t.Errorf("TLS 1.2 client: version %x suite %s, err %v", cs.Version, tls.CipherSuiteName(cs.CipherSuite), err)
	}
	cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	if cs, err := dial(cfg, addr); err == nil {
		t.Errorf("a CBC-only TLS 1.2 client connected with %s", tls.CipherSuiteName(cs.CipherSuite))
	}
}

// TestClientRefused: the listener refuses at the handshake a client with no
// certificate, one from another CA, one without an allowed name, and an
// expired one; the client sees the refusal as Refused.
func TestClientRefused(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey,
		"TLS_CLIENT_CA_FILE", p.caFile, "TLS_CLIENT_NAMES", "relay-a.internal")
	addr, errs := serve(t, srv.Listener.Config())
	unnamed := p.ca.Issue(t, certtest.Options{CommonName: "relay-z", DNSNames: []string{"relay-z.internal"}, Client: true})
	unnamedCert, unnamedKey := unnamed.Write(t, p.dir, "unnamed")
	expired := p.ca.Issue(t, certtest.Expired(certtest.Options{DNSNames: []string{"relay-a.internal"}, Client: true}))
	cases := []struct {
		name   string
		cert   *tls.Certificate
		server string // in the server's handshake error
	}{
		{"no certificate", nil, "certificate"},
		{"other CA", ptr(p.strangerClient.TLS(t)), "unknown authority"},
		{"name not allowed", loadPair(t, unnamedCert, unnamedKey), "TLS_CLIENT_NAMES"},
		{"expired", ptr(expired.TLS(t)), "expired"},
	}
	for _, c := range cases {
		cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost"}
		if c.cert != nil {
			// Sent whatever CAs the server names, as a misconfigured relay would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert, nil }
		}
		_, err := dial(cfg, addr)
		if err == nil {
			t.Errorf("%s: connected", c.name)
			continue
		}
		if f := Classify(err); f != Refused {
			t.Errorf("%s: client error %v classified %v, want refused", c.name, err, f)
		}
		select {
		case serr := <-errs:
			if !strings.Contains(serr.Error(), c.server) {
				t.Errorf("%s: server error %q does not mention %q", c.name, serr, c.server)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the server reported no handshake error", c.name)
		}
	}
	// The same listener with TLS_MIN_VERSION=1.3 refuses a TLS 1.2 client.
	srv13, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey, "TLS_MIN_VERSION", "1.3")
	addr13, _ := serve(t, srv13.Listener.Config())
	cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	if _, err := dial(cfg, addr13); err == nil {
		t.Error("TLS_MIN_VERSION=1.3: a TLS 1.2 client connected")
	}
	cfg.MaxVersion = 0
	if _, err := dial(cfg, addr13); err != nil {
		t.Errorf("TLS_MIN_VERSION=1.3: a TLS 1.3 client failed: %v", err)
	}
}

// TestServerVerification: a client side refuses a server its CA did not
// sign or whose certificate lacks the name, says which, and honours
// SERVER_NAME; a plain TCP server is NoTLS.
func TestServerVerification(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey)
	addr, _ := serve(t, srv.Listener.Config())
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ours, _, _ := load(t, "PEER_CA_FILE", p.caFile)
	strangers, _, _ := load(t, "PEER_CA_FILE", p.otherFile)
	renamed, _, _ := load(t, "PEER_CA_FILE", p.caFile, "PEER_SERVER_NAME", "localhost")
	system, _, _ := load(t)
	cases := []struct {
		name string
		cfg  *tls.Config
		addr string
		want Failure
	}{
		{"other CA", strangers.Peer.Config("localhost"), addr, Untrusted},
		{"system roots", system.Peer.Config("localhost"), addr, Untrusted},
		{"wrong name", ours.Peer.Config("relay-b.example.com"), addr, WrongName},
		{"SERVER_NAME overrides", renamed.Peer.Config("relay-b.example.com"), addr, NotTLS},
		{"plain HTTP server", ours.Peer.Config("localhost"), plain.Addr().String(), NoTLS},
	}
	for _, c := range cases {
		_, err := dial(c.cfg, c.addr)
		if got := Classify(err); got != c.want {
			t.Errorf("%s: %v classified %v, want %v", c.name, err, got, c.want)
		}
	}
}

// TestRotation: files replaced on disk are picked up by the next poll (and
// by Reload without waiting for one), new handshakes see the new serial,
// a connection made before keeps working, and a broken replacement is
// refused with one log line while the old pair keeps serving.
func TestRotation(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, log, logs := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey,
		"TLS_CLIENT_CA_FILE", p.caFile)
	addr, errs := serve(t, srv.Listener.Config())
	cli, _, _ := load(t, "PEER_CA_FILE", p.caFile, "PEER_CERT_FILE", p.clientCert, "PEER_KEY_FILE", p.clientKey)
	cfg := cli.Peer.Config("localhost")
	serial := func() string {
		t.Helper()
		// A resumed session shows the certificate of the session it
		// resumes; only a full handshake shows the one served now.
		full := cfg.Clone()
		full.ClientSessionCache = nil
		cs, err := dial(full, addr)
		if err != nil {
			t.Fatalf("dial: %v (server: %v)", err, drain(errs))
		}
		return cs.PeerCertificates[0].SerialNumber.Text(16)
	}
	if got := serial(); got != p.server.Cert.SerialNumber.Text(16) {
		t.Fatalf("first serial %s", got)
	}
	established, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()

	// A new pair, written as rotation tools do: certificate first.
	next := p.ca.Issue(t, certtest.Options{})
	certtest.WriteFile(t, p.dir, "server.crt", next.CertPEM)
	srv.poll(false, log) // the key is still the old one: refused, logged once
	srv.poll(false, log)
	if got := serial(); got != p.server.Cert.SerialNumber.Text(16) {
		t.Errorf("half-rotated pair served: serial %s", got)
	}
	if n := strings.Count(logs.String(), "refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once: %s", n, logs)
	}
	certtest.WriteFile(t, p.dir, "server.key", next.KeyPEM)
	srv.poll(false, log)
	if got := serial(); got != next.Cert.SerialNumber.Text(16) {
		t.Errorf("after rotation: serial %s, want %s", got, next.Cert.SerialNumber.Text(16))
	}
	if !strings.Contains(logs.String(), "reloaded") {
		t.Errorf("no reload logged: %s", logs)
	}
	if _, err := established.Write([]byte("still here\n")); err != nil {
		t.Fatalf("established connection: %v", err)
	}
	if line, err := bufio.NewReader(established).ReadString('\n'); err != nil || line != "still here\n" {
		t.Fatalf("established connection: %q %v", line, err)
	}

	// Kubernetes swaps a symlink to a new directory; Reload (SIGHUP) sees
	// it at once, and an unchanged file set is not reloaded again.
	linkDir := t.TempDir()
	third := p.ca.Issue(t, certtest.Options{})
	v1, v2 := filepath.Join(linkDir, "v1"), filepath.Join(linkDir, "v2")
	for _, d := range []string{v1, v2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	next.Write(t, v1, "tls")
	third.Write(t, v2, "tls")
	data := filepath.Join(linkDir, "..data")
	if err := os.Symlink("v1", data); err != nil {
		t.Fatal(err)
	}
	k8s, _, _ := load(t, "TLS_CERT_FILE", filepath.Join(data, "tls.crt"), "TLS_KEY_FILE", filepath.Join(data, "tls.key"))
	if err := os.Symlink("v2", data+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(data+".tmp", data); err != nil {
		t.Fatal(err)
	}
	k8s.Reload(log)
	if got := k8s.Listener.Certificate().Leaf.SerialNumber; got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Errorf("after the symlink swap: serial %x, want %x", got, third.Cert.SerialNumber)
	}
}

// TestCARotation: a client side trusts a new CA file, and a listener asks
// client certificates of a new CA, from the next handshake on.
func TestCARotation(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey, "TLS_CLIENT_CA_FILE", p.caFile)
	addr, _ := serve(t, srv.Listener.Config())
	caFile := certtest.WriteFile(t, t.TempDir(), "peer-ca.crt", p.other.CertPEM)
	cli, _, _ := load(t, "PEER_CA_FILE", caFile, "PEER_CERT_FILE", p.strangerCert, "PEER_KEY_FILE", p.strangerKey)
	cfg := cli.Peer.Config("localhost") // kept across the rotation, as a pool keeps it
	if _, err := dial(cfg, addr); Classify(err) != Untrusted {
		t.Fatalf("before: %v, want untrusted", err)
	}
	certtest.WriteFile(t, filepath.Dir(caFile), "peer-ca.crt", p.ca.CertPEM)
	cli.Reload(slog.New(slog.DiscardHandler))
	if _, err := dial(cfg, addr); Classify(err) != Refused {
		t.Fatalf("client CA rotated: %v, want refused (the listener does not know the client's CA yet)", err)
	}
	certtest.WriteFile(t, p.dir, "ca.crt", append(slices.Clone(p.ca.CertPEM), p.other.CertPEM...))
	srv.Reload(slog.New(slog.DiscardHandler))
	if _, err := dial(cfg, addr); err != nil {
		t.Fatalf("both CAs rotated: %v", err)
	}
	if cs, err := dial(cfg, addr); err != nil || !cs.DidResume {
		t.Fatalf("reconnection: resumed %v, err %v", cs.DidResume, err)
	}
	// The client's CA leaves the listener's file: a session it began
	// before does not resume past the new file.
	certtest.WriteFile(t, p.dir, "ca.crt", p.ca.CertPEM)
	srv.Reload(slog.New(slog.DiscardHandler))
	if _, err := dial(cfg, addr); Classify(err) != Refused {
		t.Fatalf("resumption after the client's CA was removed: %v, want refused", err)
	}
}

// TestWatch: the poll loop installs a changed file without a Reload.
func TestWatch(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, _, _ := load(t, "TLS_CERT_FILE", p.serverCert, "TLS_KEY_FILE", p.serverKey)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Watch(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()
	next := p.ca.Issue(t, certtest.Options{})
	next.Write(t, p.dir, "server")
	deadline := time.Now().Add(5 * time.Second)
	for srv.Listener.Certificate().Leaf.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not install the new pair within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func loadPair(t *testing.T, certFile, keyFile string) *tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func drain(errs chan error) error {
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// TestClientNames: TLS_CLIENT_NAMES matches a DNS SAN or the common name
// without regard to case, a URI SAN exactly, and never by wildcard.
func TestClientNames(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "CA")
	cert := ca.Issue(t, certtest.Options{CommonName: "relay-a", DNSNames: []string{"relay-a.internal"},
		URIs: []string{"spiffe://example.org/relay-a"}, Client: true}).Cert
	cases := []struct {
		names []string
		want  bool
	}{
		{[]string{"relay-a.internal"}, true},
		{[]string{"spiffe://example.org/relay-a"}, true},
		{[]string{"relay-a"}, true},
		{[]string{"other", "relay-a.internal"}, true},
		{[]string{"RELAY-A.internal"}, true},
		{[]string{"SPIFFE://example.org/relay-a"}, false},
		{[]string{"relay-a.internal.evil"}, false},
		{[]string{"spiffe://example.org/relay"}, false},
		{[]string{"*.internal"}, false},
	}
	for _, c := range cases {
		if got := certHasName(cert, c.names); got != c.want {
			t.Errorf("certHasName(%v) = %v, want %v", c.names, got, c.want)
		}
	}
}
