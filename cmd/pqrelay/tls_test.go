package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/certtest"
	"github.com/pqrelay/pqrelay/internal/syncbuf"
)

// tlsRelay is a pqrelay binary serving HTTPS with mutual TLS.
type tlsRelay struct {
	cmd              *exec.Cmd
	url              string
	logs             *syncbuf.Buffer
	dir              string
	ca               *certtest.CA
	caFile           string
	clientCert       string
	clientKey        string
	client           *http.Client // presents the client certificate
	serverCertSerial string
}

func startTLSRelay(t *testing.T) *tlsRelay {
	t.Helper()
	r := &tlsRelay{logs: &syncbuf.Buffer{}, dir: t.TempDir(), ca: certtest.NewCA(t, "relay CA")}
	r.caFile = r.ca.Write(t, r.dir, "ca")
	server := r.ca.Issue(t, certtest.Options{})
	server.Write(t, r.dir, "tls")
	r.serverCertSerial = server.Cert.SerialNumber.Text(16)
	client := r.ca.Issue(t, certtest.Options{CommonName: "relay-a", DNSNames: []string{"relay-a.internal"}, Client: true})
	r.clientCert, r.clientKey = client.Write(t, r.dir, "client")
	r.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: r.ca.Pool(), Certificates: []tls.Certificate{client.TLS(t)},
	}}}
	t.Cleanup(r.client.CloseIdleConnections)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	r.cmd = exec.Command(binary(t))
	r.cmd.Env = []string{"UPSTREAM=http://127.0.0.1:9", "CLIENT_ID_SECRET=" + goodSecret, "OUTBOUND_TOKEN=" + goodToken,
		fmt.Sprintf("PORT=%d", port), "LISTEN_ADDR=127.0.0.1", "METRICS_PORT=0",
		"TLS_CERT_FILE=" + r.dir + "/tls.crt", "TLS_KEY_FILE=" + r.dir + "/tls.key",
		"TLS_CLIENT_CA_FILE=" + r.caFile, "TLS_CLIENT_NAMES=relay-a.internal"}
	r.cmd.Stderr = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	t.Cleanup(func() { r.cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := r.client.Get(r.url + "/api/mte-echo"); err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not start: %s", r.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servedSerial makes a new connection (no resumption) and returns the
// serial of the certificate served.
func (r *tlsRelay) servedSerial(t *testing.T) string {
	t.Helper()
	tr := r.client.Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(r.url + "/api/mte-health")
	if err != nil {
		t.Fatalf("health over TLS: %v", err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
}

// The relay's log lines for a SIGHUP and for TLS files it does not install.
const (
	msgReread  = "SIGHUP: re-reading the TLS files"
	msgRefused = "TLS files refused"
)

// waitLog waits until the relay has logged msg n times.
func (r *tlsRelay) waitLog(t *testing.T, msg string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); strings.Count(r.logs.String(), msg) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged %d times: %s", msg, n, r.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPSListener runs the binary with TLS_* set: the relay's own
// endpoints answer over mutual TLS 1.3 with the hybrid group, clients
// without an acceptable certificate are refused, and SIGHUP installs new
// files or refuses broken ones with one log line.
func TestHTTPSListener(t *testing.T) {
	t.Parallel()
	r := startTLSRelay(t)

	resp, err := r.client.Head(r.url + "/api/mte-relay")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("x-mte-relay") != "pqrelay/1" {
		t.Errorf("HEAD /api/mte-relay over TLS: x-mte-relay %q", resp.Header.Get("x-mte-relay"))
	}
	if resp.TLS.Version != tls.VersionTLS13 || resp.TLS.CurveID != tls.X25519MLKEM768 {
		t.Errorf("negotiated version %x group %v, want TLS 1.3 and X25519MLKEM768", resp.TLS.Version, resp.TLS.CurveID)
	}
	resp, err = r.client.Get(r.url + "/api/mte-health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("health over TLS: %d %s", resp.StatusCode, body)
	}

	// Strangers: no certificate, and a certificate without the name.
	other := r.ca.Issue(t, certtest.Options{CommonName: "relay-z", Client: true})
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "name not allowed": {other.TLS(t)}} {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.ca.Pool(), Certificates: certs}}}
		if resp, err := c.Get(r.url + "/api/mte-echo"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %d", name, resp.StatusCode)
		}
	}

	// SIGHUP with a new pair installs it.
	if got := r.servedSerial(t); got != r.serverCertSerial {
		t.Fatalf("serial %s, want %s", got, r.serverCertSerial)
	}
	next := r.ca.Issue(t, certtest.Options{})
	next.Write(t, r.dir, "tls")
	r.cmd.Process.Signal(syscall.SIGHUP)
	want := next.Cert.SerialNumber.Text(16)
	for deadline := time.Now().Add(5 * time.Second); r.servedSerial(t) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not install the new pair: %s", r.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// SIGHUP with a key that does not match: refused once, old pair kept.
	// Signals sent together may arrive as one, so each waits for the one
	// before it to be taken; the relay handles them one at a time, so the
	// third's "re-reading" line shows that the second reload has finished.
	certtest.WriteFile(t, r.dir, "tls.key", other.KeyPEM)
	hups := strings.Count(r.logs.String(), msgReread)
	r.cmd.Process.Signal(syscall.SIGHUP)
	r.waitLog(t, msgRefused, 1)
	for range 2 {
		hups++
		r.cmd.Process.Signal(syscall.SIGHUP)
		r.waitLog(t, msgReread, hups+1)
	}
	if n := strings.Count(r.logs.String(), msgRefused); n != 1 || !strings.Contains(r.logs.String(), "TLS_KEY_FILE") {
		t.Errorf("refusal logged %d times, want once naming TLS_KEY_FILE: %s", n, r.logs)
	}
	if got := r.servedSerial(t); got != want {
		t.Errorf("after a broken key: serial %s, want the previous %s", got, want)
	}
}

// TestTLSInterop: curl --cert and openssl s_client talk to the relay (both
// from OpenSSL, which negotiates X25519 where it lacks the hybrid group).
func TestTLSInterop(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: `make test` installs it (apt-get install -y %s)", tool, tool)
		}
	}
	r := startTLSRelay(t)
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "--cacert", r.caFile,
		"--cert", r.clientCert, "--key", r.clientKey, r.url+"/api/mte-echo/interop").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"echo":"interop"`) {
		t.Errorf("curl --cert: %v %s", err, out)
	}
	out, err = exec.Command("curl", "-sS", "--max-time", "5", "--cacert", r.caFile, r.url+"/api/mte-echo").CombinedOutput()
	if err == nil {
		t.Errorf("curl without a client certificate was answered: %s", out)
	}
	host := strings.TrimPrefix(r.url, "https://")
	sc := exec.Command("openssl", "s_client", "-connect", host, "-brief", "-ign_eof", "-CAfile", r.caFile,
		"-cert", r.clientCert, "-key", r.clientKey)
	sc.Stdin = strings.NewReader("HEAD /api/mte-relay HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
	out, err = sc.CombinedOutput()
	for _, want := range []string{"protocol version: tlsv1.3", "verification: ok", "x-mte-relay: pqrelay/1"} {
		if !strings.Contains(strings.ToLower(string(out)), want) {
			t.Errorf("openssl s_client: %q missing (err %v):\n%s", want, err, out)
		}
	}
}

// TestTLSStartupErrorExits: a TLS file problem stops the binary with exit
// status 2 and one line naming the variable.
func TestTLSStartupErrorExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "CA")
	certFile, _ := ca.Issue(t, certtest.Options{}).Write(t, dir, "a")
	_, otherKey := ca.Issue(t, certtest.Options{}).Write(t, dir, "b")
	cmd := exec.Command(binary(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "UPSTREAM=http://127.0.0.1:9", "CLIENT_ID_SECRET=" + goodSecret,
		"OUTBOUND_TOKEN=" + goodToken, "TLS_CERT_FILE=" + certFile, "TLS_KEY_FILE=" + otherKey}
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "TLS_KEY_FILE: the key does not match the certificate in TLS_CERT_FILE") {
		t.Fatalf("output %q", out)
	}
}
