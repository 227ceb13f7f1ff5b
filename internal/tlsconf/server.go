package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
)

// Server is the listener's TLS: the certificate it serves and, with mutual
// TLS, the CA and names a client certificate must match.
type Server struct {
	cert  *keyPair
	cas   *caPool // nil: no client certificate asked
	names []string
	min   uint16
	base  *tls.Config
	// current is what the next handshake gets; rebuilt when the client CA
	// file changes (the certificate is looked up per handshake anyway).
	current atomic.Pointer[tls.Config]
}

func newServer(l ListenerSettings) *Server {
	s := &Server{
		cert:  newKeyPair("TLS_CERT_FILE", l.CertFile, "TLS_KEY_FILE", l.KeyFile),
		names: l.ClientNames,
		min:   l.MinVersion,
	}
	if l.ClientCAFile != "" {
		s.cas = newCAPool("TLS_CLIENT_CA_FILE", l.ClientCAFile)
		s.cas.onChange = s.rebuild
	}
	s.base = &tls.Config{
		MinVersion:     s.min,
		CipherSuites:   tls12Suites,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: s.certificate,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current.Load(), nil
		},
	}
	return s
}

// Config is the configuration to serve with (tls.NewListener). Each
// handshake gets the files current at that moment; connections already
// established keep the certificate they started with.
func (s *Server) Config() *tls.Config { return s.base }

// Certificate is the certificate new handshakes are served.
func (s *Server) Certificate() *tls.Certificate { return s.cert.Certificate() }

func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Certificate(), nil
}

func (s *Server) rebuild() {
	c := &tls.Config{
		MinVersion:     s.min,
		CipherSuites:   tls12Suites,
		NextProtos:     s.base.NextProtos,
		GetCertificate: s.certificate,
	}
	if s.cas != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = s.cas.Pool()
		if len(s.names) > 0 {
			// Also called on resumed sessions, so a resumed session is held
			// to the names as well (crypto/tls checks a resumed session's
			// chain against the current ClientCAs itself).
			c.VerifyConnection = s.checkNames
		}
	}
	s.current.Store(c)
}

// tls12Suites are the TLS 1.2 suites offered: forward-secret AEADs only
// (Go's default list still has CBC suites). TLS 1.3's three suites are not
// configurable and all AEADs; FIPS mode filters both lists further.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// errClientName is what a client certificate without an allowed name gets.
var errClientName = errors.New("tlsconf: client certificate carries none of TLS_CLIENT_NAMES")

func (s *Server) checkNames(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errClientName
	}
	if certHasName(cs.PeerCertificates[0], s.names) {
		return nil
	}
	return errClientName
}

// certHasName reports whether c carries one of names as a DNS SAN or its
// common name (compared as DNS names are, without regard to case) or as a
// URI SAN (compared exactly). No wildcards: a name is one client.
func certHasName(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(c.Subject.CommonName, n) ||
			slices.ContainsFunc(c.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) {
			return true
		}
		for _, u := range c.URIs {
			if u.String() == n {
				return true
			}
		}
	}
	return false
}
