package link

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of a round trip. Only ErrClosed says the request may be sent again
// elsewhere: the connection ended before the answer, so B either never got
// the request or will never answer it, and B's replay window lets the same
// frame run at most once (docs/PROTOCOL.md §2.2.1).
var (
	ErrClosed   = errors.New("link: connection closed before the answer")
	ErrTimeout  = errors.New("link: no answer before the deadline")
	ErrBusy     = errors.New("link: connection full or draining")
	ErrTooLarge = errors.New("link: message larger than the limit")
	ErrDupID    = errors.New("link: id already in flight")
)

// ClientConfig tunes A's side of a connection. Zero fields take the
// defaults named.
type ClientConfig struct {
	// MaxInFlight bounds requests sent and not yet answered
	// (DefaultMaxInFlight). A request whose caller gave up still counts
	// until B answers it or the connection ends, so a stalled peer cannot
	// be handed more than this.
	MaxInFlight int
	// MaxMessage bounds a request or response message; a larger response
	// fails its own request with ErrTooLarge (default 16 MiB).
	MaxMessage int
	// IdleTimeout closes the connection after this long with nothing in
	// flight (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// StallTimeout closes the connection when requests are in flight and
	// nothing arrived for this long (twice IdleTimeout).
	StallTimeout time.Duration
	// WriteTimeout bounds each write (DefaultWriteTimeout).
	WriteTimeout time.Duration
}

const defaultMaxMessage = 16 << 20

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = defaultMaxMessage
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 2 * c.IdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}

// Conn is A's side of one link connection: many requests in flight, each
// answered by id in whatever order B finishes them. It is safe for
// concurrent use.
type Conn struct {
	conn net.Conn
	br   *bufio.Reader
	w    *writer
	cfg  ClientConfig

	inflight atomic.Int32 // requests sent and not yet answered, abandoned ones included
	usable   atomic.Bool  // neither ended nor draining: a lock-free copy for choosing a connection

	mu       sync.Mutex
	pending  map[uint64]*Answer
	err      error // set once: why the connection no longer takes requests
	draining bool  // GOAWAY received, or Close asked: finish in flight, take no more
	onClose  func(*Conn)

	// lastRead is, while the reader waits on, roughly when the wait began;
	// zero after data arrived. Only the reader uses it.
	lastRead time.Time

	pingMu sync.Mutex
	pong   chan uint64

	done chan struct{} // closed when both goroutines have returned
}

// newConn starts A's side over an upgraded connection whose bytes after the
// upgrade answer start in br.
func newConn(conn net.Conn, br *bufio.Reader, cfg ClientConfig) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		conn:    conn,
		br:      br,
		w:       newWriter(conn, cfg.WriteTimeout),
		cfg:     cfg,
		pending: make(map[uint64]*Answer, cfg.MaxInFlight),
		pong:    make(chan uint64, 1),
		done:    make(chan struct{}),
	}
	c.usable.Store(true)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := c.w.run(); err != nil {
			c.fail(ErrClosed)
		}
	}()
	go func() {
		err := c.read()
		c.fail(err)
		<-writerDone
		close(c.done)
	}()
	return c
}

// InFlight is how many requests are sent and not yet answered.
func (c *Conn) InFlight() int { return int(c.inflight.Load()) }

// Usable reports whether the connection takes new requests.
func (c *Conn) Usable() bool { return c.usable.Load() }

// notifyClose arranges for f to run once the connection has ended. It
// reports false, and arranges nothing, if it has already ended.
func (c *Conn) notifyClose(f func(*Conn)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.onClose = f
	return true
}

// Done is closed when the connection has ended and its goroutines have
// returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// RoundTrip sends msg as request id and waits for B's answer until
// deadline (none if zero). The id must not be in flight on this connection.
// msg is copied: the caller may reuse it when RoundTrip returns. The answer
// must be released.
func (c *Conn) RoundTrip(id uint64, msg []byte, deadline time.Time) (*Answer, error) {
	if len(msg) == 0 || len(msg) > c.cfg.MaxMessage {
		return nil, ErrTooLarge
	}
	if int(c.inflight.Add(1)) > c.cfg.MaxInFlight {
		c.inflight.Add(-1)
		return nil, ErrBusy
	}
	a := acquireAnswer()
	a.id = id
	a.req = append(a.req[:0], msg...)
	a.refs.Store(2) // the caller's and the writer's

	c.mu.Lock()
	switch {
	case c.err != nil || c.draining:
		c.mu.Unlock()
		c.inflight.Add(-1)
		a.refs.Store(1)
		a.Release()
		if c.err != nil {
			return nil, ErrClosed
		}
		return nil, ErrBusy
	case c.pending[id] != nil:
		c.mu.Unlock()
		c.inflight.Add(-1)
		a.refs.Store(1)
		a.Release()
		return nil, ErrDupID
	}
	c.pending[id] = a
	c.mu.Unlock()
	if !c.w.enqueue(item{typ: TypeRequest, id: id, payload: a.req, owner: a}) {
		a.sent() // the writer closed; fail() has answered a, or is about to
	}

	var expired <-chan time.Time
	if !deadline.IsZero() {
		a.timer.Reset(time.Until(deadline))
		expired = a.timer.C
	}
	select {
	case <-a.done:
	case <-expired:
		c.mu.Lock()
		if c.pending[id] == a && !a.complete {
			// The reader will meet B's answer, or fail() the end of the
			// connection, and release a then; until then it holds its slot.
			a.abandoned = true
			c.mu.Unlock()
			return nil, ErrTimeout
		}
		c.mu.Unlock()
		<-a.done // answered as the deadline passed: take the answer
	}
	a.timer.Stop()
	if a.err != nil {
		err := a.err
		a.Release()
		return nil, err
	}
	return a, nil
}

// Ping sends a ping and waits for its pong until deadline. One ping at a
// time: concurrent callers wait their turn.
func (c *Conn) Ping(deadline time.Time) error {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	id := uint64(time.Now().UnixNano())
	if !c.w.enqueue(item{typ: TypePing, id: id}) {
		return ErrClosed
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		select {
		case got := <-c.pong:
			if got == id {
				return nil
			}
		case <-c.done:
			return ErrClosed
		case <-t.C:
			return ErrTimeout
		}
	}
}

// Close stops new requests; the connection closes once those in flight are
// answered (at once if there are none).
func (c *Conn) Close() {
	c.mu.Lock()
	c.draining = true
	c.usable.Store(false)
	idle := len(c.pending) == 0
	c.mu.Unlock()
	if idle {
		c.fail(ErrClosed)
	}
}

// Abort closes the connection now; requests in flight fail with ErrClosed.
func (c *Conn) Abort() { c.fail(ErrClosed) }

// fail ends the connection once: every request in flight gets err.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.usable.Store(false)
	for id, a := range c.pending {
		delete(c.pending, id)
		c.finish(a, ErrClosed)
	}
	onClose := c.onClose
	c.mu.Unlock()
	c.w.close()
	c.conn.Close()
	if onClose != nil {
		onClose(c)
	}
}

// finish completes a, whose entry the caller removed from pending under
// c.mu.
func (c *Conn) finish(a *Answer, err error) {
	c.inflight.Add(-1)
	a.complete = true
	if a.abandoned {
		a.Release()
		return
	}
	a.err = err
	a.done <- struct{}{}
}

// read reads B's frames until the connection ends.
func (c *Conn) read() error {
	var hb [HeaderLen]byte
	for {
		if err := c.readFull(hb[:]); err != nil {
			return err
		}
		h, err := ParseHeader(hb[:], fromServer)
		if err != nil {
			return err
		}
		switch h.Type {
		case TypeResponse, TypeRefusal:
			if err := c.readAnswer(h); err != nil {
				return err
			}
		case TypePing:
			c.w.enqueue(item{typ: TypePong, id: h.ID})
		case TypePong:
			select {
			case c.pong <- h.ID:
			default:
			}
		case TypeGoAway:
			c.Close()
		}
	}
}

// readAnswer reads one response fragment or refusal into its request's
// answer.
func (c *Conn) readAnswer(h Header) error {
	c.mu.Lock()
	a := c.pending[h.ID]
	c.mu.Unlock()
	// Every request stays pending until its answer is complete, so an
	// unknown id, or a refusal after response fragments, is B's mistake.
	if a == nil || h.Type == TypeRefusal && len(a.resp) > 0 {
		return ErrProtocol
	}
	n := int(h.Length)
	if a.tooLarge || len(a.resp)+n > c.cfg.MaxMessage {
		a.tooLarge = true
		a.resp = a.resp[:0]
		if err := c.discard(n); err != nil {
			return err
		}
	} else {
		start := len(a.resp)
		a.resp = grow(a.resp, n)
		if err := c.readFull(a.resp[start:]); err != nil {
			return err
		}
	}
	if h.Flags&FlagMore != 0 {
		return nil
	}
	var err error
	switch {
	case a.tooLarge:
		err = ErrTooLarge
	case h.Type == TypeRefusal:
		if _, _, perr := ParseRefusal(a.resp); perr != nil {
			return perr
		}
		a.refused = true
	}
	c.mu.Lock()
	delete(c.pending, h.ID)
	c.finish(a, err)
	drained := c.draining && len(c.pending) == 0
	c.mu.Unlock()
	if drained {
		c.fail(ErrClosed)
	}
	return nil
}

// readFull reads len(b) bytes. Every read waits at most IdleTimeout. When
// one expires with nothing in flight, the connection closes cleanly; with
// requests in flight it may wait on, until nothing has arrived for
// StallTimeout.
func (c *Conn) readFull(b []byte) error {
	for len(b) > 0 {
		if c.br.Buffered() == 0 {
			c.conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		}
		n, err := c.br.Read(b)
		b = b[n:]
		if n > 0 {
			c.lastRead = time.Time{}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return ErrClosed
			case !isTimeout(err):
				return err
			case c.idleExpired():
				return ErrClosed
			}
			if c.lastRead.IsZero() {
				c.lastRead = time.Now().Add(-c.cfg.IdleTimeout)
			}
			if time.Since(c.lastRead) >= c.cfg.StallTimeout {
				return err
			}
		}
	}
	return nil
}

// discard skips n bytes, with readFull's deadlines.
func (c *Conn) discard(n int) error {
	var scratch [512]byte
	for n > 0 {
		k := min(n, len(scratch))
		if err := c.readFull(scratch[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// idleExpired ends an idle connection: it refuses new requests first, so no
// request is lost to the close.
func (c *Conn) idleExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		c.draining = true
		c.usable.Store(false)
	}
	return len(c.pending) == 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Answer is B's answer to one request: a response message or a refusal.
// Release it when done; it must not be used after.
type Answer struct {
	id        uint64
	req, resp []byte
	refused   bool
	tooLarge  bool
	err       error
	done      chan struct{}
	timer     *time.Timer
	refs      atomic.Int32
	// Guarded by the connection's mu.
	complete, abandoned bool
}

// Response is the response message, or nil if B refused the request.
func (a *Answer) Response() []byte {
	if a.refused {
		return nil
	}
	return a.resp
}

// Refusal is B's relay error code and, for an unknown session, its proof.
func (a *Answer) Refusal() (code, proof []byte, ok bool) {
	if !a.refused {
		return nil, nil, false
	}
	code, proof, _ = ParseRefusal(a.resp)
	return code, proof, true
}

// Release returns the answer to its pool.
func (a *Answer) Release() {
	if a.refs.Add(-1) != 0 {
		return
	}
	a.id, a.refused, a.tooLarge, a.err, a.complete, a.abandoned = 0, false, false, nil, false, false
	if cap(a.req) > keepBuffer || cap(a.resp) > keepBuffer {
		return
	}
	a.req, a.resp = a.req[:0], a.resp[:0]
	answerPool.Put(a)
}

// sent: the writer no longer needs the request bytes.
func (a *Answer) sent() { a.Release() }

var answerPool sync.Pool

func acquireAnswer() *Answer {
	if a, ok := answerPool.Get().(*Answer); ok {
		return a
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Answer{done: make(chan struct{}, 1), timer: t}
}
