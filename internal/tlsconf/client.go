package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"time"
)

// Client is one client side's TLS (toward the peer relay, the API or
// Redis): what the server's certificate must chain to, and this relay's own
// certificate for servers that ask for one.
type Client struct {
	roots      *caPool // nil: the system roots
	cert       *keyPair
	serverName string
	// sessions lets reconnections resume instead of doing a full
	// handshake; shared by every config this side hands out.
	sessions tls.ClientSessionCache
}

// sessionCacheSize holds tickets for many peers; an entry is a few hundred
// bytes.
const sessionCacheSize = 1024

func newClient(c ClientSettings) *Client {
	cl := &Client{serverName: c.ServerName, sessions: tls.NewLRUClientSessionCache(sessionCacheSize)}
	if c.CAFile != "" {
		cl.roots = newCAPool(c.Prefix+"_CA_FILE", c.CAFile)
	}
	if c.CertFile != "" {
		cl.cert = newKeyPair(c.Prefix+"_CERT_FILE", c.CertFile, c.Prefix+"_KEY_FILE", c.KeyFile)
	}
	return cl
}

// Config is the configuration for dialling host (a name or IP address
// without a port). The server's certificate must carry the side's
// SERVER_NAME variable when set, else host. Every handshake uses the CA and
// client certificate current at that moment, so the config may be kept for
// the life of a connection pool.
func (c *Client) Config(host string) *tls.Config {
	name := c.serverName
	if name == "" {
		name = host
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       tls12Suites,
		ServerName:         name,
		ClientSessionCache: c.sessions,
		// The built-in check would verify against a RootCAs fixed when the
		// config was made; VerifyConnection does the same check against the
		// pool current at the handshake, so a rotated CA file takes effect
		// in pools that live for hours. It runs on resumed sessions too.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs, name)
		},
	}
	if c.cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.cert.Certificate(), nil
		}
	}
	return cfg
}

// Diagnose finds out whether the server at addr (host:port) refuses this
// side's TLS. A TLS 1.3 server judges the client certificate after the
// client has finished its side of the handshake, so the refusal arrives
// only when the client reads, and HTTP clients (fasthttp) report it as a
// closed connection. Diagnose dials with Config(host), sends one HEAD
// request and reads the first byte of the answer within timeout. It
// returns the TLS error (Classify tells which), or nil when the server
// answered or failed in a way that is not TLS.
func (c *Client) Diagnose(addr, host string, timeout time.Duration) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, c.Config(host))
	if err == nil {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err = io.WriteString(conn, "HEAD / HTTP/1.1\r\nHost: diagnose\r\nConnection: close\r\n\r\n"); err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
	}
	if Classify(err) == NotTLS {
		return nil
	}
	return err
}

var errNoServerCertificate = errors.New("tlsconf: the server sent no certificate")

// verify is crypto/tls's own server check (handshake_client.go
// verifyServerCertificate) with the current pool; errors come wrapped in
// tls.CertificateVerificationError exactly as the built-in check's do.
func (c *Client) verify(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoServerCertificate
	}
	opts := x509.VerifyOptions{
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if c.roots != nil {
		opts.Roots = c.roots.Pool()
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
