// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped by its PID when the test ends. A test
// can stop it (an outage) and start it again on the same port (recovery).
//
// It never installs anything: a missing redis-server fails the test with a
// message saying how to get one (`make test` installs the Debian package).
// It binds nothing but 127.0.0.1 and signals no process it did not start.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MissingServer is the failure message when redis-server is not installed.
const MissingServer = "redis-server not found: run `make test` (it installs redis-server) or apt-get install -y redis-server"

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	// Addr is host:port on 127.0.0.1; it stays the same across Restart.
	Addr string
	Port int
	// Password, when set, is sent with AUTH before every Do (for tests
	// that set requirepass).
	Password string
	// TLSAddr is host:port of the TLS port on 127.0.0.1 for servers from
	// StartTLS; empty otherwise. Addr stays plain for Do and the readiness
	// probe.
	TLSAddr string

	t    testing.TB
	bin  string
	dir  string
	args []string
	conf string // config file contents, for modes that need one (Sentinel)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs redis-server on a free port without persistence (no RDB, no AOF)
// plus extra (more config directives, each as "--name", "value"...), waits
// until it answers PING, and stops it in t.Cleanup.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startServer(t, "", extra)
}

func startServer(t testing.TB, conf string, extra []string) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: extra, conf: conf}
	// A free port can be taken between our probe and redis-server's bind;
	// try a few before giving up.
	var err error
	for range 5 {
		s.Port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TLS are the files of a server started with StartTLS (PEM paths).
type TLS struct {
	CertFile, KeyFile string
	// CAFile signs the client certificates the server accepts.
	CAFile string
	// AuthClients makes a client certificate mandatory (tls-auth-clients).
	AuthClients bool
}

// StartTLS is Start with a TLS port as well (redis-server --tls-port),
// serving cfg's certificate; the plain port stays open for Do.
func StartTLS(t testing.TB, cfg TLS, extra ...string) *Server {
	t.Helper()
	port := strconv.Itoa(freePort(t))
	auth := "no"
	if cfg.AuthClients {
		auth = "yes"
	}
	args := append([]string{"--tls-port", port, "--tls-cert-file", cfg.CertFile, "--tls-key-file", cfg.KeyFile,
		"--tls-ca-cert-file", cfg.CAFile, "--tls-auth-clients", auth}, extra...)
	s := startServer(t, "", args)
	s.TLSAddr = net.JoinHostPort("127.0.0.1", port)
	return s
}

// TLSURL is the server's rediss:// URL (StartTLS only).
func (s *Server) TLSURL() string { return "rediss://" + s.TLSAddr }

// Binary returns the path of redis-server or fails t with MissingServer.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(MissingServer)
	}
	return bin
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Dir is the server's working directory (its log is redis.log there).
func (s *Server) Dir() string { return s.dir }

// Stop ends the server with SIGTERM and waits for it (SIGKILL after 5 s).
// Stopping a stopped server does nothing.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill ends the server abruptly with SIGKILL and waits for it.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Restart starts the server again on the same port, empty (no persistence).
// It fails the test if the server is running or does not come up.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatalf("redistest: Restart of a running server on %s", s.Addr)
	}
	// The port was ours a moment ago; redis-server binds with SO_REUSEADDR,
	// but retry briefly in case the kernel has not let go yet.
	var err error
	for range 20 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on %s: %v", s.Addr, err)
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		conf := filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(s.conf), 0o600); err != nil {
			return err
		}
		args = append(args, conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", "redis.log",
	)
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	// Its own process group, so that a ^C to `go test` does not race our
	// shutdown; we still signal it by its PID only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for !pingOK(s.Addr) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited: %v; log: %s", s.Addr, waitErr, s.tail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("redis-server on %s did not answer PING within %v; log: %s", s.Addr, startTimeout, s.tail())
		}
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// StartCluster runs a Redis Cluster of n masters (no replicas) on free
// ports, with the 16,384 slots split evenly, and waits until every node
// reports cluster_state:ok.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	const slots = 16384
	for i, node := range nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := node.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatalf("redistest: cluster slots on %s: %v", node.Addr, err)
		}
		if i > 0 {
			if _, err := node.Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(nodes[0].Port)); err != nil {
				t.Fatalf("redistest: cluster meet from %s: %v", node.Addr, err)
			}
		}
	}
	deadline := time.Now().Add(startTimeout)
	for _, node := range nodes {
		for {
			info, err := node.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok within %v: %s", startTimeout, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

// StartSentinel runs a Sentinel (redis-server --sentinel) on a free port
// that monitors master under name, and waits until it reports the master.
func StartSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	conf := "sentinel monitor " + name + " 127.0.0.1 " + strconv.Itoa(master.Port) + " 1\n" +
		"sentinel down-after-milliseconds " + name + " 1000\n"
	s := startServer(t, conf, []string{"--sentinel"})
	deadline := time.Now().Add(startTimeout)
	for {
		addr, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
		if err == nil && addr == "127.0.0.1\n"+strconv.Itoa(master.Port) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel does not report master %s: %q %v", name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) tail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// Do sends one command over a fresh connection and returns the reply as
// text (RESP2: simple strings, errors, integers and bulk strings; arrays are
// returned with their elements joined by newlines). Tests use it to look at
// the server directly, bypassing the client under test.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if s.Password != "" {
		if _, err := c.Write(command("AUTH", s.Password)); err != nil {
			return "", err
		}
		if _, err := readReply(r); err != nil {
			return "", err
		}
	}
	if _, err := c.Write(command(args...)); err != nil {
		return "", err
	}
	return readReply(r)
}

func command(args ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

// ErrNil is returned by Do for a nil reply.
var ErrNil = errors.New("redistest: nil reply")

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", ErrNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", ErrNil
		}
		parts := make([]string, 0, n)
		for range n {
			p, err := readReply(r)
			if err != nil && !errors.Is(err, ErrNil) {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

func pingOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: no free loopback port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
