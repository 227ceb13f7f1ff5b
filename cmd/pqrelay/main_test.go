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
	"sync"
	"syscall"
	"testing"
	"time"

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

// startRelay starts the binary with extra environment variables after the
// defaults (later ones win); metrics are off unless extra sets METRICS_PORT.
func startRelay(t *testing.T, upstream string, extra ...string) *relayProcess {
	t.Helper()
	port := freePort(t)
	r := &relayProcess{logs: &syncbuf.Buffer{}, done: make(chan error, 1), url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.cmd = exec.Command(binary(t))
	r.cmd.Env = append([]string{"UPSTREAM=" + upstream, "CLIENT_ID_SECRET=" + goodSecret, "OUTBOUND_TOKEN=token",
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
			return r
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
			req.Header.Set("x-mte-outbound-token", "token")
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
