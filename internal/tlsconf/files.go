package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// watched is a group of files that are loaded together: a certificate and
// its key, or a CA bundle. Rotation tools do not replace two files at
// once, so a pair is installed only when both files agree; until then the
// previous pair keeps serving.
type watched struct {
	vars  []string // the variables naming the files, for errors and logs
	paths []string
	// Fields below belong to the goroutine that polls (Set serialises it).
	sigs    []fileSig
	hash    [sha256.Size]byte // of the contents installed
	refused [sha256.Size]byte // of the last contents refused: each broken version is logged once
	// install parses contents (one per path) and makes them current; its
	// error names the variable at fault. It returns attributes to log.
	install func(contents [][]byte, now time.Time) ([]any, error)
}

// fileSig is what a cheap poll compares: os.Stat follows the symlinks that
// a Kubernetes Secret swaps, so a new file shows a new inode or mtime.
type fileSig struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	sig := fileSig{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.ino = st.Ino
	}
	return sig, nil
}

// load reads and installs the files for the first time.
func (w *watched) load(now time.Time) error {
	w.sigs = make([]fileSig, len(w.paths))
	contents, err := w.read()
	if err != nil {
		return err
	}
	if _, err := w.install(contents, now); err != nil {
		return err
	}
	w.hash = hashAll(contents)
	return nil
}

// poll re-reads the files when their signatures changed, or always when
// force is set, and installs them when their contents changed. A refusal
// is logged once per distinct content; the installed files keep serving.
func (w *watched) poll(force bool, now time.Time, log *slog.Logger) {
	changed := force
	for i, p := range w.paths {
		sig, err := statSig(p)
		if err != nil || sig != w.sigs[i] {
			changed = true
		}
	}
	if !changed {
		return
	}
	contents, err := w.read()
	if err != nil {
		w.refuse(sha256.Sum256([]byte(err.Error())), err, log)
		return
	}
	h := hashAll(contents)
	if h == w.hash {
		return
	}
	attrs, err := w.install(contents, now)
	if err != nil {
		w.refuse(h, err, log)
		return
	}
	w.hash = h
	log.Info("TLS files reloaded; new handshakes use them", append([]any{"var", w.vars[0]}, attrs...)...)
}

func (w *watched) refuse(key [sha256.Size]byte, err error, log *slog.Logger) {
	if key == w.refused {
		return
	}
	w.refused = key
	log.Warn("TLS files refused; the previous ones keep serving", "err", err.Error())
}

// read returns every file's contents and records their signatures.
func (w *watched) read() ([][]byte, error) {
	out := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		sig, err := statSig(p)
		if err == nil {
			out[i], err = os.ReadFile(p)
		}
		if err != nil {
			return nil, errors.New(w.vars[i] + ": cannot read: " + err.Error())
		}
		w.sigs[i] = sig
	}
	return out, nil
}

func hashAll(contents [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range contents {
		h.Write(c)
		h.Write([]byte{0}) // PEM never holds NUL: the files stay apart
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// keyPair is a certificate and key from two files, swapped atomically.
type keyPair struct {
	current atomic.Pointer[tls.Certificate]
	w       watched
}

func newKeyPair(certVar, certFile, keyVar, keyFile string) *keyPair {
	kp := &keyPair{}
	kp.w = watched{
		vars:  []string{certVar, keyVar},
		paths: []string{certFile, keyFile},
		install: func(c [][]byte, now time.Time) ([]any, error) {
			cert, err := parseKeyPair(certVar, c[0], keyVar, c[1], now)
			if err != nil {
				return nil, err
			}
			kp.current.Store(cert)
			return []any{"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.UTC()}, nil
		},
	}
	return kp
}

// Certificate returns the pair new handshakes use.
func (kp *keyPair) Certificate() *tls.Certificate { return kp.current.Load() }

func parseKeyPair(certVar string, certPEM []byte, keyVar string, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	if !hasBlock(certPEM, "CERTIFICATE") {
		return nil, errors.New(certVar + ": holds no PEM certificate")
	}
	if !hasBlock(keyPEM, "PRIVATE KEY") {
		return nil, errors.New(keyVar + ": holds no PEM private key")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, errors.New(keyVar + ": the key does not match the certificate in " + certVar)
		}
		// X509KeyPair's messages name no file and hold no key material.
		return nil, errors.New(certVar + "/" + keyVar + ": " + strings.TrimPrefix(err.Error(), "tls: "))
	}
	if err := checkValidity(certVar, pair.Leaf, now); err != nil {
		return nil, err
	}
	return &pair, nil
}

func checkValidity(v string, c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return errors.New(v + ": certificate " + describe(c) + " expired at " + c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return errors.New(v + ": certificate " + describe(c) + " is not valid before " + c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func describe(c *x509.Certificate) string {
	name := c.Subject.CommonName
	if name == "" && len(c.DNSNames) > 0 {
		name = c.DNSNames[0]
	}
	return `"` + name + `" (serial ` + c.SerialNumber.Text(16) + ")"
}

// hasBlock reports whether data holds a PEM block whose type ends in kind
// ("PRIVATE KEY" matches "EC PRIVATE KEY" and "RSA PRIVATE KEY" too).
func hasBlock(data []byte, kind string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, kind) {
			return true
		}
	}
}

// caPool is a CA bundle from one file, swapped atomically.
type caPool struct {
	current atomic.Pointer[x509.CertPool]
	w       watched
	// onChange, when set, runs after a new pool is installed (the listener
	// rebuilds the config it hands to new handshakes).
	onChange func()
}

func newCAPool(v, file string) *caPool {
	cp := &caPool{}
	cp.w = watched{
		vars:  []string{v},
		paths: []string{file},
		install: func(c [][]byte, now time.Time) ([]any, error) {
			pool, n, err := parseCAs(v, c[0], now)
			if err != nil {
				return nil, err
			}
			cp.current.Store(pool)
			if cp.onChange != nil {
				cp.onChange()
			}
			return []any{"certificates", n}, nil
		},
	}
	return cp
}

// Pool returns the pool new handshakes verify against.
func (cp *caPool) Pool() *x509.CertPool { return cp.current.Load() }

func parseCAs(v string, data []byte, now time.Time) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bytes.TrimSpace(data); len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, 0, errors.New(v + ": certificate " + strconv.Itoa(n+1) + " does not parse: " + err.Error())
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, 0, errors.New(v + ": certificate " + describe(c) + " is not a CA (no CA:TRUE basic constraint); give the issuer's certificate")
		}
		if err := checkValidity(v, c, now); err != nil {
			return nil, 0, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, 0, errors.New(v + ": holds no PEM certificate")
	}
	return pool, n, nil
}
