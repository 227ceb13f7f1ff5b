package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOutOfOrder: many requests in flight on one connection, answered in
// a deliberately scrambled order, each matched to its own caller.
func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	const n = 200
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		// Later ids answer sooner: the order of answers is roughly the
		// reverse of the order of requests.
		id := binary.BigEndian.Uint64(ex.Request())
		time.Sleep(time.Duration(n-id%n) * 100 * time.Microsecond)
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	var order sync.Mutex
	var ids []uint64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := binary.BigEndian.AppendUint64(nil, uint64(i))
			msg = append(msg, bytes.Repeat([]byte{byte(i)}, i*37)...)
			got, err := roundTrip(c, uint64(i)+1000, msg, 10*time.Second)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("request %d: %v, answer of %d bytes for %d", i, err, len(got), len(msg))
				return
			}
			answered.Add(1)
			order.Lock()
			ids = append(ids, uint64(i))
			order.Unlock()
		}()
	}
	wg.Wait()
	if answered.Load() != n {
		t.Fatalf("%d of %d answered", answered.Load(), n)
	}
	inOrder := true
	for i := 1; i < len(ids); i++ {
		inOrder = inOrder && ids[i] > ids[i-1]
	}
	if inOrder {
		t.Error("answers came in request order: the test did not exercise reordering")
	}
	if c.InFlight() != 0 {
		t.Errorf("%d in flight after every answer", c.InFlight())
	}
}

// TestFragmentation: messages of every size class cross intact, both ways.
func TestFragmentation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Server{}, echo)
	c := dialRaw(t, srv.addr, ClientConfig{})
	for i, size := range []int{1, 100, MaxFragment - 1, MaxFragment, MaxFragment + 1, 3*MaxFragment + 5, 1 << 20} {
		msg := make([]byte, size)
		for j := range msg {
			msg[j] = byte(j*7 + i)
		}
		got, err := roundTrip(c, uint64(i+1), msg, 10*time.Second)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("%d bytes: %v, %d bytes back", size, err, len(got))
		}
	}
}

// TestNoHeadOfLineBlocking: a request whose handler is stuck delays no
// other request on the same connection.
func TestNoHeadOfLineBlocking(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		if string(ex.Request()) == "slow" {
			<-release
		}
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	slow := make(chan error, 1)
	go func() {
		_, err := roundTrip(c, 1, []byte("slow"), 10*time.Second)
		slow <- err
	}()
	for i := range 50 {
		if got, err := roundTrip(c, uint64(i+2), []byte("fast"), 2*time.Second); err != nil || string(got) != "fast" {
			t.Fatalf("fast request %d behind a slow one: %q, %v", i, got, err)
		}
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow request: %v", err)
	}
}

// TestLargeMessageInterleaved: while a large message is being written, a
// small one queued after it goes out after at most one of its fragments,
// not after all of them.
func TestLargeMessageInterleaved(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := newWriter(a, time.Second)
	large := bytes.Repeat([]byte{'L'}, 20*MaxFragment)
	w.enqueue(item{typ: TypeRequest, id: 1, payload: large})
	w.enqueue(item{typ: TypeRequest, id: 2, payload: []byte("small")})
	go w.run()
	defer w.close()
	var hb [HeaderLen]byte
	for frame := 0; ; frame++ {
		if _, err := io.ReadFull(b, hb[:]); err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(hb[:], fromClient)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, b, int64(h.Length))
		if h.ID == 2 {
			if frame > 1 {
				t.Fatalf("the small message was frame %d, behind %d fragments of the large one", frame, frame)
			}
			return
		}
	}
}

// TestTimeout: a caller's deadline ends its wait, not the connection; the
// request keeps its slot until B answers, and the late answer is dropped.
func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		if string(ex.Request()) == "slow" {
			<-release
		}
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	start := time.Now()
	if _, err := roundTrip(c, 1, []byte("slow"), 50*time.Millisecond); err != ErrTimeout {
		t.Fatalf("slow request: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the timeout took %v", d)
	}
	if c.InFlight() != 1 {
		t.Errorf("in flight after the timeout: %d, want 1 until B answers", c.InFlight())
	}
	close(release)
	if got, err := roundTrip(c, 2, []byte("next"), 2*time.Second); err != nil || string(got) != "next" {
		t.Fatalf("next request: %q, %v", got, err)
	}
	waitFor(t, func() bool { return c.InFlight() == 0 })
}

// TestMaxInFlight: a connection takes MaxInFlight requests and refuses
// more with ErrBusy; B, with the same bound, reads no more than that.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	const max = 8
	release := make(chan struct{})
	var running atomic.Int32
	srv := startServer(t, &Server{MaxInFlight: max}, func(ex *Exchange) {
		running.Add(1)
		<-release
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{MaxInFlight: max})
	errs := make(chan error, max)
	for i := range max {
		go func() { _, err := roundTrip(c, uint64(i+1), []byte("x"), 10*time.Second); errs <- err }()
	}
	waitFor(t, func() bool { return running.Load() == max })
	if _, err := c.RoundTrip(100, []byte("x"), time.Now().Add(time.Second)); err != ErrBusy {
		t.Fatalf("request over the bound: %v, want ErrBusy", err)
	}
	close(release)
	for range max {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestPeerStopsReading: B accepts the connection and never reads. A's
// memory stays bounded (MaxInFlight requests, then ErrBusy), callers time
// out at their own deadline, the write deadline ends the connection, and
// no goroutine is left.
func TestPeerStopsReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	before := runtime.NumGoroutine()
	const max = 16
	c := dialRaw(t, ln.Addr().String(), ClientConfig{MaxInFlight: max, WriteTimeout: 300 * time.Millisecond})
	peer := <-accepted
	defer peer.Close()
	big := make([]byte, 1<<20) // 16 MiB in all: more than the socket buffers hold
	var wg sync.WaitGroup
	var busy, timedOut, closed atomic.Int32
	start := time.Now()
	for i := range 2 * max {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := roundTrip(c, uint64(i+1), big, 200*time.Millisecond)
			switch err {
			case ErrBusy:
				busy.Add(1)
			case ErrTimeout:
				timedOut.Add(1)
			case ErrClosed:
				closed.Add(1)
			default:
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("callers waited %v with a 200ms deadline", d)
	}
	if busy.Load() < max || timedOut.Load()+closed.Load() > max {
		t.Errorf("busy %d, timed out %d, closed %d: more than %d were taken", busy.Load(), timedOut.Load(), closed.Load(), max)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the write deadline did not end the connection")
	}
	if c.InFlight() != 0 {
		t.Errorf("%d in flight after the connection ended", c.InFlight())
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

// TestConnectionDies: requests in flight when B's side dies fail with
// ErrClosed, the one error after which a resend elsewhere is allowed.
func TestConnectionDies(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 10)
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond) // answered after the kill
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	errs := make(chan error, 5)
	for i := range 5 {
		go func() { _, err := roundTrip(c, uint64(i+1), []byte("x"), 10*time.Second); errs <- err }()
	}
	for range 5 {
		<-started
	}
	srv.mu.Lock()
	for sc := range srv.conns {
		closeConn(sc.conn)
	}
	srv.mu.Unlock()
	for range 5 {
		if err := <-errs; err != ErrClosed {
			t.Errorf("in flight at the kill: %v, want ErrClosed", err)
		}
	}
	if _, err := roundTrip(c, 99, []byte("x"), time.Second); err != ErrClosed {
		t.Errorf("after the kill: %v, want ErrClosed", err)
	}
}

// TestGoAway: B's Shutdown answers what is in flight, A takes nothing new
// on that connection and closes it, and Shutdown returns.
func TestGoAway(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		close(started)
		<-release
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	inflight := make(chan error, 1)
	go func() { _, err := roundTrip(c, 1, []byte("x"), 10*time.Second); inflight <- err }()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	waitFor(t, func() bool { return !c.Usable() })
	if _, err := c.RoundTrip(2, []byte("y"), time.Now().Add(time.Second)); err != ErrBusy {
		t.Errorf("a new request after GOAWAY: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-inflight; err != nil {
		t.Errorf("the request in flight at GOAWAY: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-c.Done()
}

// TestIdleClose: a connection with nothing to carry closes by itself,
// from either side, and no request is lost to it.
func TestIdleClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		clientIdle time.Duration
		serverIdle time.Duration
	}{
		{"A closes", 100 * time.Millisecond, time.Minute},
		{"B sends GOAWAY", time.Minute, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, &Server{IdleTimeout: tc.serverIdle}, echo)
			c := dialRaw(t, srv.addr, ClientConfig{IdleTimeout: tc.clientIdle})
			if got, err := roundTrip(c, 1, []byte("x"), time.Second); err != nil || string(got) != "x" {
				t.Fatalf("%q, %v", got, err)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the idle connection stayed open")
			}
			waitFor(t, func() bool { return srv.Connections() == 0 })
		})
	}
}

// TestProtocolViolation: bytes that break the format end the connection
// at B, and nothing reaches the handler.
func TestProtocolViolation(t *testing.T) {
	t.Parallel()
	var handled atomic.Int32
	srv := startServer(t, &Server{MaxMessage: 2 * MaxFragment}, func(ex *Exchange) { handled.Add(1); echo(ex) })
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"unknown type", hdr(9, 0, 0, 1)},
		{"response to B", append(hdr(TypeResponse, 0, 1, 1), 'x')},
		{"over MaxMessage", append(bytes.Repeat(append(hdr(TypeRequest, FlagMore, MaxFragment, 1), make([]byte, MaxFragment)...), 2),
			append(hdr(TypeRequest, FlagMore, MaxFragment, 1), make([]byte, MaxFragment)...)...)},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(tc.bytes)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
			}
		})
	}
	if handled.Load() != 0 {
		t.Errorf("%d requests reached the handler", handled.Load())
	}
}

// TestRefuse: a refusal, with and without proof, reaches its caller.
func TestRefuse(t *testing.T) {
	t.Parallel()
	proof := bytes.Repeat([]byte{7}, ProofLen)
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		if ex.ID() == 1 {
			ex.Refuse("MTE_SESSION_UNKNOWN", proof)
		} else {
			ex.Refuse("MTE_FRAME_REJECTED", nil)
		}
	})
	c := dialRaw(t, srv.addr, ClientConfig{})
	for id, want := range map[uint64]string{1: "MTE_SESSION_UNKNOWN", 2: "MTE_FRAME_REJECTED"} {
		a, err := c.RoundTrip(id, []byte("x"), time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		code, p, ok := a.Refusal()
		if !ok || string(code) != want || a.Response() != nil || id == 1 != bytes.Equal(p, proof) || id == 2 && len(p) != 0 {
			t.Errorf("id %d: %q %x %v", id, code, p, ok)
		}
		a.Release()
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Server{}, echo)
	c := dialRaw(t, srv.addr, ClientConfig{})
	for range 3 {
		if err := c.Ping(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDuplicateID: an id already in flight is refused before anything is
// sent.
func TestDuplicateID(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) { <-release; echo(ex) })
	c := dialRaw(t, srv.addr, ClientConfig{})
	first := make(chan error, 1)
	go func() { _, err := roundTrip(c, 5, []byte("x"), 5*time.Second); first <- err }()
	waitFor(t, func() bool { return c.InFlight() == 1 })
	if _, err := c.RoundTrip(5, []byte("y"), time.Now().Add(time.Second)); !errors.Is(err, ErrDupID) {
		t.Errorf("duplicate id: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Error(err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("condition not met in 5s"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStall: B holds requests and sends nothing, while keeping the
// connection open. Callers end at their deadline; the connection ends
// after StallTimeout with nothing read, freeing what it held.
func TestStall(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) { <-release; echo(ex) })
	t.Cleanup(func() { close(release) })
	c := dialRaw(t, srv.addr, ClientConfig{IdleTimeout: 50 * time.Millisecond, StallTimeout: 300 * time.Millisecond})
	if _, err := roundTrip(c, 1, []byte("x"), 100*time.Millisecond); err != ErrTimeout {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled connection stayed open")
	}
	if c.InFlight() != 0 {
		t.Errorf("%d in flight after the stall ended the connection", c.InFlight())
	}
}

// TestResponseTooLarge: an answer over A's MaxMessage fails its own
// request only; the connection carries on.
func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Server{}, func(ex *Exchange) {
		if string(ex.Request()) == "big" {
			ex.Respond(make([]byte, 3*MaxFragment))
			return
		}
		echo(ex)
	})
	c := dialRaw(t, srv.addr, ClientConfig{MaxMessage: 2 * MaxFragment})
	if _, err := roundTrip(c, 1, []byte("big"), 5*time.Second); err != ErrTooLarge {
		t.Fatalf("oversized answer: %v, want ErrTooLarge", err)
	}
	if got, err := roundTrip(c, 2, []byte("small"), 5*time.Second); err != nil || string(got) != "small" {
		t.Fatalf("the next request: %q, %v", got, err)
	}
}
