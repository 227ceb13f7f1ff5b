package link

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler answers one request of a link: it must call exactly one of
// ex.Respond and ex.Refuse, from any goroutine, and not use ex after.
// Handlers run concurrently, so a slow one delays nobody else.
type Handler func(ex *Exchange)

// Server is B's side: it serves link connections handed over by Accept or
// ServeConn. Zero fields take the defaults named. A Server must not be
// copied after first use.
type Server struct {
	// MaxInFlight bounds requests read and not yet answered per connection
	// (DefaultMaxInFlight); beyond it B stops reading that connection.
	MaxInFlight int
	// MaxMessage bounds a request message (16 MiB); a larger one ends the
	// connection.
	MaxMessage int
	// IdleTimeout: a connection with nothing in flight for this long is
	// sent a GOAWAY, and closed if it stays idle as long again
	// (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write (DefaultWriteTimeout).
	WriteTimeout time.Duration

	once    sync.Once
	jobs    chan *Exchange
	quit    chan struct{}
	mu      sync.Mutex
	conns   map[*serverConn]struct{}
	closing bool
	wg      sync.WaitGroup // connections
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxInFlight <= 0 {
			s.MaxInFlight = DefaultMaxInFlight
		}
		if s.MaxMessage <= 0 {
			s.MaxMessage = defaultMaxMessage
		}
		if s.IdleTimeout <= 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultWriteTimeout
		}
		s.jobs = make(chan *Exchange)
		s.quit = make(chan struct{})
		s.conns = map[*serverConn]struct{}{}
	})
}

// ServeConn serves one link connection until it ends; c must already be
// upgraded. It closes c.
func (s *Server) ServeConn(c net.Conn, h Handler) {
	s.init()
	sc := &serverConn{
		s:     s,
		conn:  c,
		br:    bufio.NewReaderSize(c, readBufferSize),
		w:     newWriter(c, s.WriteTimeout),
		h:     h,
		slots: make(chan struct{}, s.MaxInFlight),
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		closeConn(c)
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	sc.serve()
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

// Shutdown sends every connection a GOAWAY and waits until A has closed
// them, once their requests are answered, or until ctx ends; then it
// closes what is left. Requests A sent before it saw the GOAWAY are still
// answered.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.quit)
	}
	for sc := range s.conns {
		sc.goAway()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sc := range s.conns {
		closeConn(sc.conn)
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Connections is how many link connections are being served.
func (s *Server) Connections() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeConn closes c, reaching under fasthttp's hijacked connection, whose
// Close does nothing until the hijack handler returns.
func closeConn(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		u.UnsafeConn().Close()
	}
	c.Close()
}

// dispatch hands ex to an idle worker, or starts one. Workers outlive their
// request, so that in steady state a request starts no goroutine.
func (s *Server) dispatch(ex *Exchange) {
	select {
	case s.jobs <- ex:
	default:
		go s.work(ex)
	}
}

// workerIdle is how long an idle worker waits for another request.
const workerIdle = 10 * time.Second

func (s *Server) work(ex *Exchange) {
	ex.c.h(ex)
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case ex := <-s.jobs:
			ex.c.h(ex)
			t.Reset(workerIdle)
		case <-t.C:
			return
		case <-s.quit:
			return
		}
	}
}

// serverConn is one link connection at B.
type serverConn struct {
	s       *Server
	conn    net.Conn
	br      *bufio.Reader
	w       *writer
	h       Handler
	slots   chan struct{} // one per request in flight
	partial map[uint64]*Exchange
	away    atomic.Bool
	pending sync.WaitGroup // handlers running or answers queued
}

func (sc *serverConn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if sc.w.run() != nil {
			closeConn(sc.conn)
		}
	}()
	if err := sc.read(); err == ErrProtocol {
		closeConn(sc.conn) // nothing more from this peer, answers included
	}
	// Answer what is in flight if the connection can still carry it (A
	// closed its side, or went idle): handlers finish, then the writer
	// stops.
	for _, ex := range sc.partial {
		ex.release()
	}
	sc.pending.Wait()
	sc.w.close()
	<-writerDone
	closeConn(sc.conn)
}

// read reads A's frames until the connection ends or breaks the format.
func (sc *serverConn) read() error {
	var hb [HeaderLen]byte
	for {
		if err := sc.readFull(hb[:]); err != nil {
			return err
		}
		h, err := ParseHeader(hb[:], fromClient)
		if err != nil {
			return err
		}
		switch h.Type {
		case TypeRequest:
			if err := sc.readRequest(h); err != nil {
				return err
			}
		case TypePing:
			sc.w.enqueue(item{typ: TypePong, id: h.ID})
		}
	}
}

// readRequest reads one request fragment; a complete request goes to a
// handler at once.
func (sc *serverConn) readRequest(h Header) error {
	ex := sc.partial[h.ID]
	if ex == nil {
		select {
		case sc.slots <- struct{}{}:
		default:
			// Full: wait, reading nothing more, so A's writes back up.
			sc.slots <- struct{}{}
		}
		ex = acquireExchange()
		ex.id, ex.c = h.ID, sc
		sc.pending.Add(1)
	}
	n := int(h.Length)
	if len(ex.req)+n > sc.s.MaxMessage {
		if sc.partial[h.ID] == nil {
			ex.release()
		}
		return ErrProtocol
	}
	start := len(ex.req)
	ex.req = grow(ex.req, n)
	if err := sc.readFull(ex.req[start:]); err != nil {
		if sc.partial[h.ID] == nil {
			ex.release()
		}
		return err
	}
	if h.Flags&FlagMore != 0 {
		if sc.partial == nil {
			sc.partial = make(map[uint64]*Exchange)
		}
		sc.partial[h.ID] = ex
		return nil
	}
	delete(sc.partial, h.ID)
	sc.s.dispatch(ex)
	return nil
}

// readFull reads len(b) bytes. A read may wait IdleTimeout; when it
// expires with nothing in flight, the first time sends a GOAWAY and the
// second ends the connection. With requests in flight A may rightly send
// nothing for as long as they take, so the wait starts again.
func (sc *serverConn) readFull(b []byte) error {
	for len(b) > 0 {
		if sc.br.Buffered() == 0 {
			sc.conn.SetReadDeadline(time.Now().Add(sc.s.IdleTimeout))
		}
		n, err := sc.br.Read(b)
		b = b[n:]
		if err != nil {
			if !isTimeout(err) {
				return err
			}
			if len(sc.slots) == 0 {
				if sc.away.Load() {
					return err
				}
				sc.goAway()
			}
		}
	}
	return nil
}

func (sc *serverConn) goAway() {
	if sc.away.CompareAndSwap(false, true) {
		sc.w.enqueue(item{typ: TypeGoAway})
	}
}

// Exchange is one request on a link and, once answered, its answer.
type Exchange struct {
	id   uint64
	req  []byte
	resp []byte
	typ  uint8
	c    *serverConn
}

// ID is the request's link id.
func (ex *Exchange) ID() uint64 { return ex.id }

// Request is the request message. It stays valid, and may be modified in
// place, until Respond or Refuse.
func (ex *Exchange) Request() []byte { return ex.req }

// Buffer is an empty buffer to build the answer in without allocating;
// Respond takes it back.
func (ex *Exchange) Buffer() []byte { return ex.resp[:0] }

// Respond answers with msg (not empty, at most A's MaxMessage) and hands
// msg over: the caller must not touch it after.
func (ex *Exchange) Respond(msg []byte) {
	if len(msg) == 0 {
		panic("link: empty response")
	}
	ex.typ, ex.resp = TypeResponse, msg
	ex.answer()
}

// Refuse answers with a relay error (see AppendRefusal).
func (ex *Exchange) Refuse(code string, proof []byte) {
	ex.typ, ex.resp = TypeRefusal, AppendRefusal(ex.resp[:0], code, proof)
	ex.answer()
}

func (ex *Exchange) answer() {
	if !ex.c.w.enqueue(item{typ: ex.typ, id: ex.id, payload: ex.resp, owner: ex}) {
		ex.release() // the connection is gone: nobody to answer
	}
}

// sent: the answer is written, or never will be.
func (ex *Exchange) sent() { ex.release() }

func (ex *Exchange) release() {
	sc := ex.c
	<-sc.slots
	ex.id, ex.c = 0, nil
	if cap(ex.req) <= keepBuffer && cap(ex.resp) <= keepBuffer {
		ex.req, ex.resp = ex.req[:0], ex.resp[:0]
		exchangePool.Put(ex)
	}
	sc.pending.Done()
}

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

func acquireExchange() *Exchange { return exchangePool.Get().(*Exchange) }
