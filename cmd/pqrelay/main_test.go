package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/pqrelay/pqrelay/internal/syncbuf"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// binary builds cmd/pqrelay once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pqrelay-bin")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "pqrelay")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// relayProcess is a running pqrelay binary.
type relayProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *syncbuf.Buffer
	done chan error
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRelay starts the binary serving upstream, with extra variables
// ("NAME=value") after the defaults, and waits until it answers. The port is
// free when picked but may be taken before the relay binds it (parallel
// tests, outgoing connections): then it tries another.
func startRelay(t *testing.T, upstream string, extra ...string) *relayProcess {
	t.Helper()
	for attempt := 0; ; attempt++ {
		r, portTaken := tryStartRelay(t, upstream, extra)
		if !portTaken {
			return r
		}
		if attempt == 2 {
			t.Fatalf("relay did not start: %s", r.logs)
		}
	}
}

func tryStartRelay(t *testing.T, upstream string, extra []string) (r *relayProcess, portTaken bool) {
	t.Helper()
	port := freePort(t)
	r = &relayProcess{logs: &syncbuf.Buffer{}, done: make(chan error, 1), url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.cmd = exec.Command(binary(t))
	// Metrics are off unless extra sets METRICS_PORT: relays of parallel
	// tests would all want the default 9090.
	r.cmd.Env = append([]string{"UPSTREAM=" + upstream, "CLIENT_ID_SECRET=" + goodSecret, "OUTBOUND_TOKEN=" + goodToken,
		fmt.Sprintf("PORT=%d", port), "LISTEN_ADDR=127.0.0.1", "METRICS_PORT=0"}, extra...)
	r.cmd.Stderr = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := http.Get(r.url + "/api/mte-echo"); err == nil {
			resp.Body.Close()
			return r, false
		}
		select {
		case err := <-r.done:
			r.done <- err // for the cleanup
			if strings.Contains(r.logs.String(), "address already in use") {
				return r, true
			}
			t.Fatalf("relay exited (%v): %s", err, r.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not start: %s", r.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGTERMFinishesInFlight: SIGTERM to either relay of a pair lets a
// request in flight through it finish, then the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	t.Parallel()
	for _, victim := range []string{"B", "A"} {
		started := make(chan struct{}, 1)
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			time.Sleep(500 * time.Millisecond)
			io.WriteString(w, "finished")
		}))
		defer upstream.Close()
		b := startRelay(t, upstream.URL)
		a := startRelay(t, upstream.URL)
		target := map[string]*relayProcess{"A": a, "B": b}[victim]

		result := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest("GET", a.url+"/slow", nil)
			req.Header.Set("x-mte-outbound-token", goodToken)
			req.Header.Set("x-mte-upstream", b.url)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				result <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			result <- fmt.Sprintf("%d %s", resp.StatusCode, body)
		}()
		<-started
		target.cmd.Process.Signal(syscall.SIGTERM)
		if got := <-result; got != "200 finished" {
			t.Fatalf("SIGTERM to %s: the request in flight got %q\n%s", victim, got, target.logs)
		}
		select {
		case err := <-target.done:
			if err != nil {
				t.Fatalf("SIGTERM to %s: exit %v\n%s", victim, err, target.logs)
			}
			target.done <- nil // for the cleanup
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still running 10 s after SIGTERM", victim)
		}
	}
}

// TestStartupWarnings runs the real binary: a relay of both roles whose
// UPSTREAM_TIMEOUT is not under its PEER_TIMEOUT starts, with one warning
// line naming both; with the defaults it has no such line.
func TestStartupWarnings(t *testing.T) {
	t.Parallel()
	peers := "ALLOWED_PEERS=http://127.0.0.1:9"
	for _, c := range []struct {
		env  []string
		want int
	}{
		{[]string{peers}, 0},
		{[]string{peers, "UPSTREAM_TIMEOUT=30s"}, 1},
		{[]string{peers, "UPSTREAM_TIMEOUT=30s", "RELAY_ROLE=inbound"}, 0},
	} {
		r := startRelay(t, "http://127.0.0.1:9", c.env...)
		var lines []string
		for _, l := range strings.Split(r.logs.String(), "\n") {
			if strings.Contains(l, "UPSTREAM_TIMEOUT") {
				lines = append(lines, l)
			}
		}
		if len(lines) != c.want || c.want == 1 && !(strings.Contains(lines[0], "level=WARN") && strings.Contains(lines[0], "PEER_TIMEOUT")) {
			t.Errorf("%v: UPSTREAM_TIMEOUT lines %q, want %d warning", c.env, lines, c.want)
		}
	}
}

// TestDomainMapBinary runs the real binaries: relay B with DOMAIN_MAP and
// REDIS_URL serves the entry its Host names, keeping that entry's sessions
// in Redis under the entry's namespace, and answers a Host in no entry
// with MTE_UNKNOWN_HOST, which relay A passes on to the app.
func TestDomainMapBinary(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "api "+r.URL.Path)
	}))
	t.Cleanup(api.Close)
	b := startRelay(t, "", "RELAY_ROLE=inbound", "REDIS_URL="+redis.URL(),
		`DOMAIN_MAP={"127.0.0.1":{"upstream":"`+api.URL+`/v2"},"api.example.com":{"upstream":"http://127.0.0.1:9"}}`)
	a := startRelay(t, "", "RELAY_ROLE=outbound")
	send := func(peer string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", a.url+"/orders", nil)
		req.Header.Set("x-mte-outbound-token", goodToken)
		req.Header.Set("x-mte-upstream", peer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	if resp, body := send(b.url); resp.StatusCode != 200 || body != "api /v2/orders" {
		t.Fatalf("entry 127.0.0.1: %d %q", resp.StatusCode, body)
	}
	keys, err := redis.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(keys, "pqrelay:d:127.0.0.1:s:") || strings.Contains(keys, "pqrelay:s:") {
		t.Errorf("keys in Redis: %q, want the session under the entry's namespace", keys)
	}
	// localhost resolves to 127.0.0.1 but is in no entry.
	n := calls.Load()
	peer := strings.Replace(b.url, "127.0.0.1", "localhost", 1)
	if resp, body := send(peer); resp.StatusCode != 502 || resp.Header.Get("x-mte-peer-error") != "MTE_UNKNOWN_HOST" {
		t.Fatalf("a host in no entry: %d %q, peer error %q", resp.StatusCode, body, resp.Header.Get("x-mte-peer-error"))
	}
	if calls.Load() != n {
		t.Fatal("the API was called for a host in no entry")
	}
}
