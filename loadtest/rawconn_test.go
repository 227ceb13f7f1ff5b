package loadtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests drive a worker through real TCP on 127.0.0.1. On Linux they
// go through connReader's raw path (the request written inside the first
// read of its answer, rawconn_linux.go); elsewhere through the plain one,
// where they check the same behaviour.

// testWorker returns a worker for cfg (URL and Duration filled in if
// unset), connected, with its stop channel.
func testWorker(t *testing.T, cfg Config) (*worker, chan struct{}) {
	t.Helper()
	cfg.Connections = 1
	if cfg.Duration == 0 {
		cfg.Duration = time.Minute
	}
	p, err := cfg.plan()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	now := time.Now()
	w := newWorker(context.Background(), p, stop, now, now.Add(cfg.Duration), 0, nil)
	t.Cleanup(w.closeConn)
	if err := w.connect(); err != nil {
		t.Fatal(err)
	}
	return w, stop
}

// rawServer accepts connections on 127.0.0.1 and hands each to serve, in
// its own goroutine; the connection is closed when serve returns or the
// test ends.
func rawServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequest reads one bodiless request's header block from br.
func readRequest(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// answerThenClose answers n GET requests per connection, then closes it:
// with a FIN, or with a RST when reset is set.
func answerThenClose(n int, reset bool) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for range n {
			if readRequest(br) != nil {
				return
			}
			if _, err := c.Write([]byte(okResponse)); err != nil {
				return
			}
		}
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
	}
}

// neverAnswer reads whatever arrives and never answers.
func neverAnswer(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// TestRawPathIsUsed: plain-TCP requests go through the raw path (on
// Linux), and their answers come back intact.
func TestRawPathIsUsed(t *testing.T) {
	t.Parallel()
	for _, size := range []int{16, 1024, 64 << 10} {
		t.Run(FormatSize(size), func(t *testing.T) {
			t.Parallel()
			up := startUpstream(t, size, 0)
			w, _ := testWorker(t, Config{
				URL: up.URL(), Body: Body(size), ExpectSize: size, Verify: true, VerifyChecksum: up.Checksum(),
			})
			const n = 20
			for i := range n {
				if oc := w.roundTrip(time.Now()); oc != outcomeOK {
					t.Fatalf("request %d: outcome %d", i, oc)
				}
			}
			if w.conn == nil {
				t.Fatal("the connection was not kept alive")
			}
			if rawPath && w.rd.rawSends != n {
				t.Fatalf("%d of %d requests went through the raw path", w.rd.rawSends, n)
			}
		})
	}
}

// TestRawPathLargeRequest: a 1 MiB request to a target that is slow to
// read fills the socket's (fixed-size) send buffer, so the raw write stops part-way and
// the rest goes through conn.Write; the target still gets every byte, in
// order, and the answer is read.
func TestRawPathLargeRequest(t *testing.T) {
	t.Parallel()
	body := Body(1 << 20)
	want := Checksum(body)
	url := rawServer(t, func(c net.Conn) {
		// A fixed receive buffer: autotuning would grow it past 1 MiB
		// after a few requests, and the whole request would fit again.
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		br := bufio.NewReader(c)
		got := make([]byte, len(body))
		for {
			if readRequest(br) != nil {
				return
			}
			// Slow to read: the loopback's buffers fill up behind us.
			time.Sleep(20 * time.Millisecond)
			if _, err := io.ReadFull(br, got); err != nil {
				return
			}
			resp := okResponse
			if Checksum(got) != want {
				resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
			}
			if _, err := c.Write([]byte(resp)); err != nil {
				return
			}
		}
	})
	w, _ := testWorker(t, Config{URL: url, Body: body, Timeout: 10 * time.Second, ExpectSize: 2})
	// Likewise for the send buffer, which Linux grows up to 4 MiB
	// (tcp_wmem).
	if err := w.conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if oc := w.roundTrip(time.Now()); oc != outcomeOK {
			t.Fatalf("request %d: outcome %d", i, oc)
		}
	}
	if rawPath && (w.rd.rawSends != n || w.rd.rawRests != n) {
		t.Fatalf("rawSends %d, rawRests %d: want every request to start raw and finish with conn.Write",
			w.rd.rawSends, w.rd.rawRests)
	}
}

// TestRawPathNotForTLS: TLS connections keep the plain path.
func TestRawPathNotForTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	w, _ := testWorker(t, Config{URL: srv.URL, TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, ExpectSize: 2})
	for range 5 {
		if oc := w.roundTrip(time.Now()); oc != outcomeOK {
			t.Fatalf("outcome %d", oc)
		}
	}
	if w.rd.rawSends != 0 {
		t.Fatalf("%d TLS requests took the raw path", w.rd.rawSends)
	}
}

// TestRawPathTimeout: a target that never answers leaves the worker
// parked until its deadline, which ends the wait as a timeout.
func TestRawPathTimeout(t *testing.T) {
	t.Parallel()
	url := rawServer(t, neverAnswer)
	const timeout = 100 * time.Millisecond
	w, _ := testWorker(t, Config{URL: url, Method: "GET", Timeout: timeout})
	start := time.Now()
	oc := w.roundTrip(start)
	took := time.Since(start)
	if oc != outcomeTimeout {
		t.Fatalf("outcome %d, want timeout (%d)", oc, outcomeTimeout)
	}
	if took < timeout-timeout/64 || took > timeout+time.Second {
		t.Fatalf("timed out after %v, want about %v", took, timeout)
	}
	if rawPath && w.rd.rawSends != 1 {
		t.Fatalf("rawSends = %d, want 1", w.rd.rawSends)
	}

	// And through Run: every request is a timeout, nothing else.
	res, err := Run(context.Background(), Config{URL: url, Method: "GET", Connections: 2, Timeout: timeout, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Timeouts == 0 || res.Failed() != res.Timeouts || res.Requests != 0 {
		t.Fatalf("want only timeouts: %+v", res)
	}
}

// TestRawPathCancelUnblocks: the cancel watcher's deadline nudge wakes a
// worker parked waiting for an answer, and the request is discarded.
func TestRawPathCancelUnblocks(t *testing.T) {
	t.Parallel()
	url := rawServer(t, neverAnswer)
	w, stop := testWorker(t, Config{URL: url, Method: "GET", Timeout: time.Minute})
	time.AfterFunc(100*time.Millisecond, func() {
		close(stop)
		w.unblock()
	})
	start := time.Now()
	oc := w.roundTrip(start)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("unblock took %v", took)
	}
	if oc != outcomeDiscard {
		t.Fatalf("outcome %d, want discard (%d)", oc, outcomeDiscard)
	}
	if rawPath && w.rd.rawSends != 1 {
		t.Fatalf("rawSends = %d, want 1", w.rd.rawSends)
	}
}

// TestRawPathServerCloses: a target that closes connections mid-run, with
// a FIN or a RST, yields errors (and reconnects), not hangs or timeouts.
func TestRawPathServerCloses(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		name := "FIN"
		if reset {
			name = "RST"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := rawServer(t, answerThenClose(3, reset))
			start := time.Now()
			res, err := Run(context.Background(), Config{URL: url, Method: "GET", Connections: 2, Timeout: 10 * time.Second, Duration: 400 * time.Millisecond, ExpectSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("a 400ms run took %v", took)
			}
			if res.Requests == 0 || res.Errors == 0 || res.Failed() != res.Errors {
				t.Fatalf("want successes and errors only: %+v", res)
			}
			// Each connection answers 3 and fails the 4th, or loses a
			// request to a reconnect: about 3 successes per error.
			if res.Requests < res.Errors {
				t.Fatalf("more errors than successes: %+v", res)
			}
		})
	}
}

// TestRawPathWriteError: a write on a connection the peer has reset fails
// as a write, as conn.Write would, and counts as an error.
func TestRawPathWriteError(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	url := rawServer(t, func(c net.Conn) {
		answerThenClose(1, true)(c)
		c.Close()
		close(closed)
	})
	w, _ := testWorker(t, Config{URL: url, Method: "GET", Timeout: 5 * time.Second})
	if oc := w.roundTrip(time.Now()); oc != outcomeOK {
		t.Fatalf("first request: outcome %d", oc)
	}
	<-closed
	time.Sleep(50 * time.Millisecond) // the RST crosses the loopback
	err := w.rd.send(w.p.raw, true)
	if err == nil {
		_, err = w.br.ReadByte()
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" ||
		!(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("err = %#v (%v), want a write error ECONNRESET or EPIPE", err, err)
	}
	if got := w.rd.writeErr(); rawPath && got != err {
		t.Fatalf("writeErr() = %v, want %v", got, err)
	}
	// Through roundTrip, on the same dead connection: an error.
	if oc := w.roundTrip(time.Now()); oc != outcomeError {
		t.Fatalf("outcome %d, want error (%d)", oc, outcomeError)
	}
	if w.conn != nil {
		t.Fatal("the failed connection was kept")
	}
}

// TestRawPathBufferedBytes: when the previous answer left bytes in the
// reader (a target that answered twice), the next request is written at
// once rather than armed, since the parser may not call Read at all; every
// request still reaches the target exactly once.
func TestRawPathBufferedBytes(t *testing.T) {
	t.Parallel()
	var got atomic.Int32
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if readRequest(br) != nil {
				return
			}
			got.Add(1)
			resp := okResponse
			if i == 0 {
				resp += okResponse // one answer too many
			}
			if _, err := c.Write([]byte(resp)); err != nil {
				return
			}
		}
	})
	w, _ := testWorker(t, Config{URL: url, Method: "GET", ExpectSize: 2})
	const n = 4
	for i := range n {
		if oc := w.roundTrip(time.Now()); oc != outcomeOK {
			t.Fatalf("request %d: outcome %d", i, oc)
		}
		if i == 0 {
			// Let the surplus answer arrive, so that the next request
			// finds it buffered.
			time.Sleep(50 * time.Millisecond)
			if w.br.Buffered() == 0 {
				if _, err := w.br.Peek(1); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := got.Load(); g != n {
		t.Fatalf("the target got %d requests, want %d", g, n)
	}
	if w.conn == nil {
		t.Fatal("the connection was dropped")
	}
}
