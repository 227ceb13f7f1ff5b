package link

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the package if a goroutine of this package outlives the
// tests and their cleanups: every connection's reader, writer and worker
// must end with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines lists this package's goroutines still running after
// wait; empty if none.
func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "pqrelay/link.") && !strings.Contains(g, "leakedGoroutines") &&
				!strings.Contains(g, "testing.tRunner") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echo answers every request with its own bytes.
func echo(ex *Exchange) { ex.Respond(append(ex.Buffer(), ex.Request()...)) }

// testServer is a link server on a real loopback listener, without the
// HTTP upgrade in front (upgrade_test.go covers that).
type testServer struct {
	*Server
	addr string
}

func startServer(t testing.TB, s *Server, h Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.ServeConn(c, h) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s.Shutdown(ctx)
		wg.Wait()
	})
	return &testServer{Server: s, addr: ln.Addr().String()}
}

// dialRaw opens A's side of a link to addr without the upgrade.
func dialRaw(t testing.TB, addr string, cfg ClientConfig) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(nc, bufio.NewReaderSize(nc, readBufferSize), cfg)
	t.Cleanup(func() {
		c.Abort()
		<-c.Done()
	})
	return c
}

// roundTrip sends msg as id and returns a copy of the response.
func roundTrip(c interface {
	RoundTrip(uint64, []byte, time.Time) (*Answer, error)
}, id uint64, msg []byte, timeout time.Duration) ([]byte, error) {
	a, err := c.RoundTrip(id, msg, time.Now().Add(timeout))
	if err != nil {
		return nil, err
	}
	defer a.Release()
	if code, _, ok := a.Refusal(); ok {
		return nil, fmt.Errorf("refused: %s", code)
	}
	return append([]byte(nil), a.Response()...), nil
}

func bufioReader(s string) *bufio.Reader {
	return bufio.NewReaderSize(strings.NewReader(s), readBufferSize)
}
