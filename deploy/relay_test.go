package deploy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// repoRoot is the relay's module, one directory up.
const repoRoot = ".."

var (
	relayOnce sync.Once
	relayBin  string
	relayErr  error
)

// relayBinary builds cmd/pqrelay of the enclosing repository once.
func relayBinary(t *testing.T) string {
	t.Helper()
	relayOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pqrelay-deploy")
		if err != nil {
			relayErr = err
			return
		}
		relayBin = filepath.Join(dir, "pqrelay")
		if out, err := exec.Command("go", "build", "-C", repoRoot, "-o", relayBin, "./cmd/pqrelay").CombinedOutput(); err != nil {
			relayErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if relayErr != nil {
		t.Fatalf("build: %v", relayErr)
	}
	return relayBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if relayBin != "" {
		os.RemoveAll(filepath.Dir(relayBin))
	}
	os.Exit(code)
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

// waitHTTP polls url until it answers at all, for up to 15 s.
func waitHTTP(t *testing.T, url string, logs func() string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v\n%s", url, err, logs())
		}
	}
}

// testSecret is the CLIENT_ID_SECRET of the relays these tests start:
// random hex, since the relay refuses predictable secrets.
const testSecret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// testToken is their OUTBOUND_TOKEN.
const testToken = "3a7bd3e2360a3d29eea436fcfb7e44c7"

// startRelay runs the relay binary on a free loopback port with env added
// to a working configuration (metrics off), stops it by PID at cleanup, and
// returns its URL.
func startRelay(t *testing.T, env ...string) string {
	t.Helper()
	port := freePort(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "relay.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(relayBinary(t))
	cmd.Env = append([]string{"CLIENT_ID_SECRET=" + testSecret, "OUTBOUND_TOKEN=" + testToken,
		fmt.Sprintf("PORT=%d", port), "LISTEN_ADDR=127.0.0.1", "METRICS_PORT=0"}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, url+"/api/mte-echo", func() string {
		b, _ := os.ReadFile(logFile.Name())
		return string(b)
	})
	return url
}
