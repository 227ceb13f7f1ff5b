// Package certtest makes X.509 certificates for tests: a CA, server and
// client certificates it signs (with DNS, IP and URI SANs), expired ones,
// and a second CA to play the stranger. Keys are ECDSA P-256, which Go's
// FIPS 140-3 mode accepts, so the same certificates serve FIPS runs.
//
// It is test support only: nothing it makes is fit for production (short
// lives, keys in memory and in t.TempDir). It never touches files outside
// the directories a test gives it.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that issues certificates for one test.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// Cert is an issued certificate and its private key.
type Cert struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Options describe a leaf certificate. The zero value is a server
// certificate for 127.0.0.1 and localhost, valid from an hour ago for a day.
type Options struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	URIs       []string
	// Client makes a client certificate (ExtKeyUsageClientAuth) instead of
	// a server one; with Both, the certificate is good for either.
	Client, Both bool
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
}

// Expired is Options' validity for a certificate that expired an hour ago.
func Expired(o Options) Options {
	o.NotBefore = time.Now().Add(-48 * time.Hour)
	o.NotAfter = time.Now().Add(-time.Hour)
	return o
}

// NewCA makes a self-signed CA named name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// NewExpiredCA makes a self-signed CA that expired an hour ago.
func NewExpiredCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
}

func newCA(t testing.TB, name string, notBefore, notAfter time.Time) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"pqrelay tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("certtest: CA: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a leaf certificate described by o.
func (ca *CA) Issue(t testing.TB, o Options) *Cert {
	t.Helper()
	if o.CommonName == "" && len(o.DNSNames) == 0 && len(o.IPs) == 0 && len(o.URIs) == 0 {
		o.DNSNames = []string{"localhost"}
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	switch {
	case o.Both:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case o.Client:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	for _, u := range o.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("certtest: URI SAN %q: %v", u, err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("certtest: issue: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certtest: key: %v", err)
	}
	return &Cert{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}
}

// TLS is c as a tls.Certificate, for configs built directly in a test.
func (c *Cert) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatalf("certtest: key pair: %v", err)
	}
	return pair
}

// Write stores the certificate and key as PEM files name.crt and name.key
// in dir and returns their paths.
func (c *Cert) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = WriteFile(t, dir, name+".crt", c.CertPEM)
	keyFile = WriteFile(t, dir, name+".key", c.KeyPEM)
	return certFile, keyFile
}

// Write stores the CA certificate as the PEM file name.crt in dir.
func (ca *CA) Write(t testing.TB, dir, name string) string {
	t.Helper()
	return WriteFile(t, dir, name+".crt", ca.CertPEM)
}

// WriteFile writes data to dir/name atomically (a rename), as a rotation
// tool would, and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err == nil {
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		t.Fatalf("certtest: write %s: %v", path, err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certtest: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatalf("certtest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
