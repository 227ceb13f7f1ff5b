package proxy_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// TestParkedConnection: a keep-alive connection leaves fasthttp between
// requests (proxy/park.go) and comes back for the next one, however that
// request arrives: after the connection went idle, pipelined behind the
// previous one, or pipelined and cut in two.
func TestParkedConnection(t *testing.T) {
	t.Parallel()
	a := relaytest.StartRelay(t, relaytest.BaseConfig(fastUpstream(t)), nil, "")
	const req = "GET /api/mte-health HTTP/1.1\r\nHost: relay\r\n\r\n"
	for _, tc := range []struct {
		name   string
		writes []string // written in turn, 50 ms apart
		want   int      // answers
	}{
		{"one request at a time", []string{req, req, req}, 3},
		{"next request cut in two while idle", []string{req, req[:10], req[10:]}, 2},
		{"pipelined", []string{req + req + req}, 3},
		{"pipelined, the second cut in two", []string{req + req[:10], req[10:]}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", a.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				for _, w := range tc.writes {
					io.WriteString(c, w)
					time.Sleep(50 * time.Millisecond)
				}
			}()
			br := bufio.NewReader(c)
			var resp fasthttp.Response
			for i := range tc.want {
				if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
					t.Fatalf("answer %d: %v %d %q", i+1, err, resp.StatusCode(), resp.Body())
				}
			}
		})
	}
}

// TestParkedConnectionShutdown: the relay's Shutdown closes the parked
// connections, whose goroutines end (TestMain checks that none is left).
func TestParkedConnectionShutdown(t *testing.T) {
	t.Parallel()
	a := relaytest.StartRelay(t, relaytest.BaseConfig(fastUpstream(t)), nil, "")
	c, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/mte-health HTTP/1.1\r\nHost: relay\r\n\r\n")
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("%v %d", err, resp.StatusCode())
	}
	time.Sleep(50 * time.Millisecond) // parked
	a.Stop()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Shutdown: read %v, want EOF", err)
	}
}

// TestRefusedBodyAnswerArrives: a client that sends a large body the relay
// refuses without reading (no token: no room for a body) reads the relay's
// answer naming why, rather than a connection reset. Closing a socket with
// the body unread would make the kernel reset the connection, and the
// client could lose the answer; the relay lingers instead (park.go).
func TestRefusedBodyAnswerArrives(t *testing.T) {
	t.Parallel()
	a := relaytest.StartRelay(t, relaytest.BaseConfig(fastUpstream(t)), nil, "")
	const size = 4 << 20
	for i := range 5 {
		c, err := net.Dial("tcp", a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			head := "POST /api/items HTTP/1.1\r\nHost: relay\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
			c.Write(append([]byte(head), make([]byte, size)...))
		}()
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Fatalf("attempt %d: reading the refusal: %v", i, err)
		}
		if code := string(resp.Header.Peek("x-mte-relay-error")); resp.StatusCode() != 401 || code != "MTE_TOKEN_MISSING" {
			t.Fatalf("attempt %d: %d %s, want 401 MTE_TOKEN_MISSING", i, resp.StatusCode(), code)
		}
		// And the relay does close the connection, within its lingering time.
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("attempt %d: after the refusal: %v", i, err)
		}
		c.Close()
	}
}
