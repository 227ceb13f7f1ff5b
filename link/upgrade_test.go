package link

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startHTTP serves handler with fasthttp on loopback, over TLS when cert
// is given, as a relay's own listener would.
func startHTTP(t testing.TB, handler fasthttp.RequestHandler, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	srv := &fasthttp.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// upgrading is a relay's handler reduced to the link: it upgrades when the
// request asks for it and its "frame" is the expected one.
func upgrading(ls *Server, auth string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !IsUpgrade(&ctx.Request.Header) || string(ctx.Request.Body()) != auth ||
			string(ctx.Request.Header.Peek(ClientIDHeader)) != "client-1" {
			ctx.Error("no", fasthttp.StatusUnauthorized)
			return
		}
		ls.Accept(ctx, echo)
	}
}

// TestUpgrade: a link starts with an HTTP/1.1 upgrade on the relay's own
// port, over plain TCP and over TLS; what is not a 101 for the link is
// ErrRefused, so A keeps to HTTP.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	ls := &Server{}
	t.Cleanup(func() { ls.Shutdown(t.Context()) })
	plain := startHTTP(t, upgrading(ls, "sealed"), nil)
	secure := startHTTP(t, upgrading(ls, "sealed"), cert)
	plainOK := startHTTP(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, nil)
	wrong101 := startHTTP(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.Header.Set("Upgrade", "websocket")
		ctx.Response.Header.Set("Connection", "Upgrade")
	}, nil)
	for _, tc := range []struct {
		name string
		d    Dialer
		auth string
		want error
	}{
		{"plain", Dialer{Addr: plain, Host: plain}, "sealed", nil},
		{"TLS", Dialer{Addr: secure, Host: "localhost", TLS: &tls.Config{RootCAs: pool}}, "sealed", nil},
		{"auth refused", Dialer{Addr: plain, Host: plain}, "forged", ErrRefused},
		{"not a relay", Dialer{Addr: plainOK, Host: plainOK}, "sealed", ErrRefused},
		{"another protocol", Dialer{Addr: wrong101, Host: wrong101}, "sealed", ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.d.Dial([]byte("client-1"), []byte(tc.auth))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Dial: %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			defer func() { c.Abort(); <-c.Done() }()
			for i := range 3 {
				msg := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
				if got, err := roundTrip(c, uint64(i+1), msg, 5*time.Second); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
		})
	}
}

// TestUpgradeRequest pins the request's bytes to docs/PROTOCOL.md §10.1.
func TestUpgradeRequest(t *testing.T) {
	t.Parallel()
	got := AppendUpgradeRequest(nil, "relay-b.example:8443", []byte("AAECAwQFBgcICQoLDA0ODwAAAABndIWAwazw4FISkLftCeYzzCOSFQ"), []byte{1, 2, 3})
	want := "POST /api/mte-link HTTP/1.1\r\n" +
		"Host: relay-b.example:8443\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: pqrelay-link/1\r\n" +
		"x-mte-link: AAECAwQFBgcICQoLDA0ODwAAAABndIWAwazw4FISkLftCeYzzCOSFQ\r\n" +
		"Content-Type: application/x-mte-frame\r\n" +
		"Content-Length: 3\r\n" +
		"\r\n\x01\x02\x03"
	if string(got) != want {
		t.Errorf("upgrade request:\n%q\nwant\n%q", got, want)
	}
}

// TestUpgradeResponse: only a complete 101 naming the link is accepted.
func TestUpgradeResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		resp string
		ok   bool
	}{
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: pqrelay-link/1\r\nConnection: Upgrade\r\n\r\n", true},
		{"HTTP/1.1 101\r\nupgrade: PQRELAY-LINK/1\r\nconnection: keep-alive, upgrade\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nUpgrade: pqrelay-link/1\r\nConnection: Upgrade\r\n\r\n", false},
		{"HTTP/1.1 1010 X\r\nUpgrade: pqrelay-link/1\r\nConnection: Upgrade\r\n\r\n", false},
		{"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: pqrelay-link/1\r\n\r\n", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: pqrelay-link/1\r\nConnection: Upgrade\r\nbroken\r\n\r\n", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: pqrelay-link/1\r\nConnection: Upgrade\r\nX: " +
			string(bytes.Repeat([]byte{'a'}, maxUpgradeResponse)) + "\r\n\r\n", false},
	} {
		err := readUpgradeResponse(bufioReader(tc.resp))
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.resp, err, tc.ok)
		}
	}
}

// selfSigned makes a certificate for localhost and 127.0.0.1 and a pool
// that trusts it.
func selfSigned(t testing.TB) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
