package proxy

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/fasthttp"

	"github.com/pqrelay/pqrelay/internal/metrics"
)

// peer is an inbound relay this relay sends to: its connection pool and the
// one live session every request to it shares (no pair pool, no lock-step).
type peer struct {
	origin    string
	host      []byte
	tls       bool
	client    *fasthttp.HostClient
	current   atomic.Pointer[outSession]
	rekeying  atomic.Bool
	mu        sync.Mutex
	inflight  *pairing // the pairing under way, shared by everyone waiting
	nextRekey atomic.Int64
	// lastFailureLog is when a failure to reach this peer was last logged
	// (Unix ns): one line per peerLogEvery, however many requests fail.
	lastFailureLog atomic.Int64
}

// outSession is a session as the outbound relay uses it.
type outSession struct {
	*session.Session
	idText []byte // x-mte-client-id value, encoded once
}

// pairing is one pairing attempt; done closes when sess or err is set.
type pairing struct {
	done chan struct{}
	sess *outSession
	err  *relayError
}

func newPeer(origin string, host string, tls bool, cfg *Config, frameLimit int) *peer {
	return &peer{
		origin: origin,
		host:   []byte(host),
		tls:    tls,
		client: &fasthttp.HostClient{
			Addr:                     addrWithPort(host, tls),
			IsTLS:                    tls,
			DialTimeout:              newDialer(host, tls).dial,
			NoDefaultUserAgentHeader: true,
			DisablePathNormalizing:   true,
			MaxConns:                 maxConnsPerHost,
			MaxConnWaitTimeout:       cfg.PeerTimeout,
			MaxIdleConnDuration:      peerIdle,
			ReadBufferSize:           cfg.MaxHeaderBytes,
			WriteBufferSize:          writeBufferSize,
			MaxResponseBodySize:      frameLimit,
			// sendToPeer resends; fasthttp must not resend on its own.
			RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		},
	}
}

const (
	// maxConnsPerHost bounds connections to one peer or upstream; it is
	// above any load the 1,000-connection tier generates.
	maxConnsPerHost = 4096
	writeBufferSize = 16 << 10
)

func addrWithPort(host string, tls bool) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if tls {
		return net.JoinHostPort(trimBrackets(host), "443")
	}
	return net.JoinHostPort(trimBrackets(host), "80")
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// session returns the live session, pairing first if there is none. A
// session near the end of its life is still used while a new one is paired
// in the background (make-before-break, DESIGN.md §2.6).
func (p *peer) session(s *Server, deadline time.Time) (*outSession, *relayError) {
	cur := p.current.Load()
	now := s.now()
	if cur != nil && !cur.Expired(now) {
		if (now.After(cur.RekeyAt()) || cur.Sealed() >= session.RekeyAfterMessages) &&
			now.UnixNano() >= p.nextRekey.Load() && p.rekeying.CompareAndSwap(false, true) {
			go p.rekey(s, cur)
		}
		return cur, nil
	}
	return p.pair(s, cur, deadline)
}

// rekey pairs anew while stale keeps serving. A failure is retried by a
// later request after a pause, never in a loop.
func (p *peer) rekey(s *Server, stale *outSession) {
	defer p.rekeying.Store(false)
	if _, err := p.pair(s, stale, time.Now().Add(s.cfg.PeerTimeout)); err != nil {
		p.nextRekey.Store(s.now().Add(rekeyRetryPause).UnixNano())
		s.log.Warn("rekey failed; the current session keeps serving", "peer", p.origin, "code", err.code)
		s.metrics.Rekey(metrics.ResultFailed)
		return
	}
	s.metrics.Rekey(metrics.ResultOK)
}

const rekeyRetryPause = 5 * time.Second

// forget drops stale if it is still current, so the next request pairs.
func (p *peer) forget(stale *outSession) { p.current.CompareAndSwap(stale, nil) }

// pair replaces stale with a new session. Concurrent callers share one
// pairing: the first runs it before its deadline, the others wait for its
// result, each no longer than its own deadline.
func (p *peer) pair(s *Server, stale *outSession, deadline time.Time) (*outSession, *relayError) {
	p.mu.Lock()
	if cur := p.current.Load(); cur != nil && cur != stale && !cur.Expired(s.now()) {
		p.mu.Unlock()
		return cur, nil
	}
	pg := p.inflight
	leader := pg == nil
	if leader {
		pg = &pairing{done: make(chan struct{})}
		p.inflight = pg
	}
	p.mu.Unlock()

	if !leader {
		wait := time.NewTimer(time.Until(deadline))
		defer wait.Stop()
		select {
		case <-pg.done:
			return pg.sess, pg.err
		case <-wait.C:
			return nil, errPeerTimeout
		}
	}
	pg.sess, pg.err = s.pairWith(p, deadline)
	p.mu.Lock()
	if pg.sess != nil {
		p.current.Store(pg.sess)
	}
	p.inflight = nil
	p.mu.Unlock()
	close(pg.done)
	return pg.sess, pg.err
}

// logFailure logs why the peer could not be reached, at most once per
// peerLogEvery: apps see the 502 or 504, the operator sees the cause.
func (p *peer) logFailure(log *slog.Logger, e *relayError, err error) {
	now := time.Now().UnixNano()
	last := p.lastFailureLog.Load()
	if now-last < int64(peerLogEvery) || !p.lastFailureLog.CompareAndSwap(last, now) {
		return
	}
	log.Warn("peer relay unreachable", "peer", p.origin, "code", e.code, "err", err.Error())
}

const peerLogEvery = 10 * time.Second

// peerSet maps x-mte-upstream values to peers.
type peerSet struct {
	mu      sync.RWMutex
	byValue map[string]*peer // keyed by the header value as sent
	byOrig  map[string]*peer // keyed by canonical origin
	allowed map[string]bool  // canonical origins; empty means any
}

// maxPeers bounds the peers one relay keeps when ALLOWED_PEERS is empty, so
// a token holder cannot grow the map without end.
const maxPeers = 1024

// lookup returns the peer for an x-mte-upstream value. The common case, a
// value seen before, is one map read without allocation.
func (ps *peerSet) lookup(s *Server, value []byte) (*peer, *relayError) {
	if len(value) == 0 {
		return nil, errUpstreamMissing
	}
	ps.mu.RLock()
	p := ps.byValue[string(value)]
	ps.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	origin, err := parsePeerOrigin(string(value))
	if err != nil {
		return nil, errUpstreamInvalid
	}
	if len(ps.allowed) > 0 && !ps.allowed[origin] {
		return nil, errUpstreamNotAllowed
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p = ps.byOrig[origin]; p == nil {
		if len(ps.byOrig) >= maxPeers {
			return nil, errUpstreamNotAllowed
		}
		scheme, host, _ := strings.Cut(origin, "://")
		p = newPeer(origin, host, scheme == "https", &s.cfg, s.frameLimit)
		ps.byOrig[origin] = p
	}
	if len(ps.byValue) < 4*maxPeers {
		ps.byValue[string(value)] = p
	}
	return p, nil
}
