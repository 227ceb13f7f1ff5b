package link

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoLink: no connection of the set can take the request now (none is
// open yet, all are full, or the peer refuses links). Nothing was sent; the
// caller uses the per-request path.
var ErrNoLink = errors.New("link: no connection available")

// PoolConfig tunes a peer's set of connections. Zero fields take the
// defaults named.
type PoolConfig struct {
	// MinConns is how many connections the set keeps open while in use
	// (2), so that replicas of B behind a balancer share the load.
	MinConns int
	// MaxConns bounds the set (8).
	MaxConns int
	// Saturated is the number in flight on the least busy connection at
	// which another is dialed (half the connection's MaxInFlight).
	Saturated int
	// RetryRefused is how long after a refused upgrade no dial is tried
	// (1 min); failed dials back off from 100 ms to the same bound.
	RetryRefused time.Duration
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MinConns <= 0 {
		c.MinConns = 2
	}
	if c.MaxConns < c.MinConns {
		c.MaxConns = max(8, c.MinConns)
	}
	if c.RetryRefused <= 0 {
		c.RetryRefused = time.Minute
	}
	return c
}

// Pool is A's set of link connections to one peer for one session. Dials
// happen in the background: a request never waits for one.
type Pool struct {
	dial func() (*Conn, error)
	cfg  PoolConfig

	conns atomic.Pointer[[]*Conn] // copy on write, under mu

	mu       sync.Mutex
	dialing  bool
	closed   bool
	nextDial time.Time
	backoff  time.Duration
}

// NewPool returns an empty set whose connections dial opens.
func NewPool(dial func() (*Conn, error), cfg PoolConfig) *Pool {
	p := &Pool{dial: dial, cfg: cfg.withDefaults()}
	p.conns.Store(new([]*Conn))
	return p
}

// RoundTrip sends msg as request id and waits for the answer (see
// Conn.RoundTrip). ErrNoLink means nothing was sent.
//
// The request goes on the least busy of the first MinConns connections;
// only while that one is saturated does it go on the first other one that
// is not (the least busy of all when every one is). So connections opened
// for a burst carry nothing once it is over and close at their
// IdleTimeout, and a steady load keeps its batches on few connections
// instead of splitting them over every connection a burst opened.
func (p *Pool) RoundTrip(id uint64, msg []byte, deadline time.Time) (*Answer, error) {
	var best *Conn
	bestLoad, live := 0, 0
	for _, c := range *p.conns.Load() {
		if !c.Usable() {
			continue
		}
		live++
		n := c.InFlight()
		switch {
		case best == nil:
			best, bestLoad = c, n
		case live <= p.cfg.MinConns || bestLoad >= p.saturated(best):
			if n < bestLoad {
				best, bestLoad = c, n
			}
		}
	}
	if live < p.cfg.MinConns || (best == nil || bestLoad >= p.saturated(best)) && live < p.cfg.MaxConns {
		p.grow()
	}
	if best == nil || bestLoad >= best.cfg.MaxInFlight {
		return nil, ErrNoLink
	}
	a, err := best.RoundTrip(id, msg, deadline)
	if err == ErrBusy {
		return nil, ErrNoLink // it filled up or drained since the choice
	}
	return a, err
}

// saturated is the load of c at which the set wants another connection.
func (p *Pool) saturated(c *Conn) int {
	if c == nil || p.cfg.Saturated > 0 {
		return p.cfg.Saturated
	}
	return c.cfg.MaxInFlight / 2
}

// Len is how many connections the set holds.
func (p *Pool) Len() int { return len(*p.conns.Load()) }

// Close stops new requests; each connection closes once its requests in
// flight are answered.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	conns := *p.conns.Load()
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// grow starts one background dial unless one is running, the set is
// closed, or the last failure asked for a pause.
func (p *Pool) grow() {
	p.mu.Lock()
	if p.dialing || p.closed || len(*p.conns.Load()) >= p.cfg.MaxConns || time.Now().Before(p.nextDial) {
		p.mu.Unlock()
		return
	}
	p.dialing = true
	p.mu.Unlock()
	go p.dialOne()
}

const firstDialBackoff = 100 * time.Millisecond

func (p *Pool) dialOne() {
	c, err := p.dial()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing = false
	if err != nil {
		switch {
		case errors.Is(err, ErrRefused):
			p.backoff = p.cfg.RetryRefused
		case p.backoff == 0:
			p.backoff = firstDialBackoff
		default:
			p.backoff = min(2*p.backoff, p.cfg.RetryRefused)
		}
		p.nextDial = time.Now().Add(p.backoff)
		return
	}
	p.backoff = 0
	if p.closed || !c.notifyClose(p.remove) {
		c.Close()
		return
	}
	conns := append(append([]*Conn(nil), *p.conns.Load()...), c)
	p.conns.Store(&conns)
}

// remove drops a connection that ended.
func (p *Pool) remove(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.conns.Load()
	conns := make([]*Conn, 0, len(old))
	for _, x := range old {
		if x != c {
			conns = append(conns, x)
		}
	}
	p.conns.Store(&conns)
}
