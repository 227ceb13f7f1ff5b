package proxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// An idle keep-alive connection inside fasthttp holds its read buffer
// (MAX_HEADER_BYTES sizes it, and it is what enforces that limit), its
// write buffer, a request context and a goroutine whose stack the handler
// grew: with 10,000 users who each send a request a second, most of a
// relay's memory. fasthttp's ReduceMemoryUsage gives the buffers back
// between requests, but it reads each request's first byte on its own (one
// more read and one allocation per request) and its goroutine waits deep
// in fasthttp, on a stack the collector cannot shrink.
//
// Parking does better from outside fasthttp: every plain TCP connection is
// served by fasthttp's ServeConn, and when a request is done and the next
// has not arrived, the connection's first read of it answers io.EOF
// without reading, which ends ServeConn cleanly (buffers and context go
// back to fasthttp's pools). A goroutine then waits for the socket to
// become readable and serves it again with ServeConn: the same one while
// few connections are parked, a new one with a small stack when many are
// (see serve). An idle connection then costs its socket, this struct and a
// goroutine of a few KiB; benchmarks/pair/README.md has the numbers. It
// costs no allocation and no extra syscall per request: the peek that
// checks for data before waiting takes the place of the read that would
// have found none.
//
// TLS connections are not parked (a tls.Conn may hold decrypted bytes the
// socket no longer shows), nor are links, which fasthttp hands over when
// they are hijacked.

// parkingListener accepts connections and serves each itself; Accept
// returns only the listener's error. fasthttp's Serve still owns it, so
// that Shutdown closes it and waits for the connections being served.
type parkingListener struct {
	net.Listener
	srv *fasthttp.Server

	// open counts the connections served, parked or not: fasthttp's
	// Concurrency bounds only those inside ServeConn, so this listener
	// closes new connections beyond it instead.
	open atomic.Int64

	// handOffAbove: see serve.
	handOffAbove int

	mu      sync.Mutex
	closed  bool
	parked  idleConn // sentinel of the ring of parked connections
	parkedN int
}

// relayHandOffAbove is parkingListener.handOffAbove for relays: below it,
// the grown stacks of idle connections add up to a few MB.
const relayHandOffAbove = 1024

func newParkingListener(ln net.Listener, srv *fasthttp.Server, handOffAbove int) *parkingListener {
	l := &parkingListener{Listener: ln, srv: srv, handOffAbove: handOffAbove}
	l.parked.prev, l.parked.next = &l.parked, &l.parked
	return l
}

func (l *parkingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			return c, nil
		}
		if l.open.Add(1) > l.limit() {
			l.open.Add(-1)
			tc.Close()
			continue
		}
		ic := &idleConn{TCPConn: tc, rc: rc, l: l}
		ic.waitReadable = ic.readable // bound once: no closure per wait
		go ic.serve()
	}
}

// Close closes the listener and every parked connection; the ones being
// served end when their request is done (CloseOnShutdown).
func (l *parkingListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for c := l.parked.next; c != &l.parked; c = c.next {
		c.TCPConn.Close()
	}
	l.mu.Unlock()
	return err
}

func (l *parkingListener) limit() int64 {
	if l.srv.Concurrency <= 0 {
		return fasthttp.DefaultConcurrency
	}
	return int64(l.srv.Concurrency)
}

// park adds c to the parked ring and returns how many are parked, or
// reports that the listener is closed.
func (l *parkingListener) park(c *idleConn) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, false
	}
	c.prev, c.next = l.parked.prev, &l.parked
	c.prev.next, c.next.prev = c, c
	l.parkedN++
	return l.parkedN, true
}

func (l *parkingListener) unpark(c *idleConn) {
	l.mu.Lock()
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	l.parkedN--
	l.mu.Unlock()
}

// idleConn is a plain TCP connection that can leave fasthttp between
// requests.
type idleConn struct {
	*net.TCPConn
	rc syscall.RawConn
	l  *parkingListener

	// idle is true from the moment fasthttp has answered a request until
	// its next request's first byte is in: fasthttp's ConnState calls
	// (trackIdle), made on the goroutine that serves c.
	idle bool
	// parking: Read ended ServeConn so that c can wait outside fasthttp;
	// ServeConn's Close must keep the socket. Atomic because fasthttp's
	// Shutdown closes idle connections from its own goroutine.
	parking atomic.Bool

	// linger: the relay answered a request without reading its body and
	// closes c (serverError); see lingerClose. Set and read on the
	// goroutine serving c.
	linger bool

	waitReadable func(fd uintptr) bool
	peek         [1]byte
	peeked       bool
	err          error // what the peek found wrong with the socket

	prev, next *idleConn // in l.parked while waiting
}

// serve runs ServeConn, and each time it returns with c parked, waits for
// c's next request, until c is closed. With more than handOffAbove
// connections parked, a new goroutine waits instead and this one ends: the
// stack the handler grew goes with it, where a goroutine waiting on would
// keep it until the garbage collector shrinks it, which with no allocation
// per request can be minutes away. Below that the memory is not worth a
// goroutine started per request (benchmarks/pair/README.md measures both).
func (c *idleConn) serve() {
	for {
		if err := c.l.srv.ServeConn(c); err != nil && c.l.srv.Logger != nil {
			// What fasthttp's own Serve would have logged.
			c.l.srv.Logger.Printf("error when serving connection %q<->%q: %v", c.LocalAddr(), c.RemoteAddr(), err)
		}
		if !c.parking.Load() {
			if c.linger {
				c.lingerClose()
			}
			c.l.open.Add(-1)
			return
		}
		parked, ok := c.l.park(c)
		if !ok {
			c.TCPConn.Close()
			c.l.open.Add(-1)
			return
		}
		if parked > c.l.handOffAbove {
			handOff.Lock()
			handOff.conns = append(handOff.conns, c)
			handOff.Unlock()
			go waitHandedOff()
			return
		}
		if !c.wait() {
			return
		}
	}
}

// handOff carries parked connections from the goroutine that served them
// to a new one that waits: waitHandedOff takes no argument, so starting it
// allocates nothing, where go c.wait() would allocate its closure. Each
// goroutine started takes one connection; which one does not matter.
var handOff struct {
	sync.Mutex
	conns []*idleConn
}

func waitHandedOff() {
	handOff.Lock()
	last := len(handOff.conns) - 1
	c := handOff.conns[last]
	handOff.conns[last] = nil
	handOff.conns = handOff.conns[:last]
	handOff.Unlock()
	if c.wait() {
		c.serve()
	}
}

// wait waits for c to become readable, and reports false if c was closed
// instead. The read deadline fasthttp set for the idle time
// (IDLE_TIMEOUT) still holds, and ends the wait.
func (c *idleConn) wait() bool {
	c.peeked = false
	err := c.rc.Read(c.waitReadable)
	c.l.unpark(c)
	c.parking.Store(false)
	if err != nil || c.err != nil {
		c.TCPConn.Close()
		c.l.open.Add(-1)
		return false
	}
	return true
}

// readable is the wait's RawConn callback: the first call looks (a peek,
// since data may have come before the wait began, and edge-triggered
// polling would not report it again); after that the poller has reported
// readiness, or an error, which the next read will see.
func (c *idleConn) readable(fd uintptr) bool {
	if c.peeked {
		return true
	}
	c.peeked = true
	_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.err = nil
	if err == syscall.EAGAIN {
		return false
	}
	if err != nil && err != syscall.EINTR {
		c.err = err
	}
	return true
}

func (c *idleConn) Read(p []byte) (int, error) {
	if c.idle {
		// fasthttp waits here for the next request, with its buffers and
		// context: leave instead, and wait in serve.
		c.idle = false
		c.parking.Store(true)
		return 0, io.EOF
	}
	return c.TCPConn.Read(p)
}

func (c *idleConn) Close() error {
	if c.parking.Load() || c.linger {
		return nil
	}
	return c.TCPConn.Close()
}

// lingerAfterRefusal marks the connection of a request answered without
// its body being read, so that closing it lingers (lingerClose). Only plain
// TCP connections are parked, so only they linger.
func lingerAfterRefusal(nc net.Conn) {
	if c, ok := nc.(*idleConn); ok {
		c.linger = true
	}
}

// Lingering bounds: enough for a client to finish sending a body of a
// few MiB on loopback or a LAN and read the answer, short enough that a
// client cannot hold sockets with it.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 8 << 20
)

// lingerClose closes a connection whose client may still be sending the
// body the relay refused. Closing a socket with unread data makes the
// kernel answer with a reset, which can reach the client before it has
// read the relay's answer (it then sees a broken pipe, not the 413 or 403
// naming what was wrong). So the relay ends its side of the stream, reads
// and drops what the client still sends, within lingerTime and
// lingerBytes, and closes (RFC 9112 §9.6). It runs on the goroutine that
// served c, which counts in the listener's bound until it is done.
func (c *idleConn) lingerClose() {
	c.linger = false
	if c.TCPConn.CloseWrite() == nil && c.TCPConn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
		// A timeout, a reset or the client's end all end the drain alike.
		_, _ = io.CopyN(io.Discard, c.TCPConn, lingerBytes)
	}
	c.TCPConn.Close()
}

// trackIdle is fasthttp's ConnState hook. It leaves the other states
// alone: fasthttp reports StateHijacked after the hijacking handler has
// started reading on its own goroutine.
func trackIdle(nc net.Conn, state fasthttp.ConnState) {
	c, ok := nc.(*idleConn)
	if !ok {
		return
	}
	switch state {
	case fasthttp.StateIdle:
		c.idle = true
	case fasthttp.StateActive:
		c.idle = false
	}
}
