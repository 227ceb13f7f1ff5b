package proxy

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pqrelay/pqrelay/link"
	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/fasthttp"

	"github.com/pqrelay/pqrelay/internal/metrics"
)

// peer is an inbound relay this relay sends to: its connection pool and the
// one live session every request to it shares (no pair pool, no lock-step).
type peer struct {
	origin string
	host   []byte
	tls    bool
	// dialer holds the peer's one TLS configuration, used by its HTTP
	// client and its links alike.
	dialer    dialer
	client    *fasthttp.HostClient
	current   atomic.Pointer[outSession]
	rekeying  atomic.Bool
	mu        sync.Mutex
	inflight  *pairing // the pairing under way, shared by everyone waiting
	nextRekey atomic.Int64
	// lastFailureLog is when a failure to reach this peer was last logged
	// (Unix ns): one line per peerLogEvery, however many requests fail.
	lastFailureLog atomic.Int64
	// lastUsed is when an app last named this peer (Unix ns, to within
	// usedResolution), for evicting idle peers from a full table.
	lastUsed atomic.Int64
}

// touch records a use at now. The shared word is written at most once per
// usedResolution, so that requests on many cores do not all write it.
func (p *peer) touch(now int64) {
	if now-p.lastUsed.Load() >= int64(usedResolution) {
		p.lastUsed.Store(now)
	}
}

const usedResolution = time.Second

// close ends what the peer holds open: its session's links and its idle
// HTTP connections. Requests still under way finish.
func (p *peer) close() {
	p.current.Load().retire()
	p.client.CloseIdleConnections()
}

// outSession is a session as the outbound relay uses it.
type outSession struct {
	*session.Session
	idText []byte // x-mte-client-id value, encoded once
	// links are the session's relay links to the peer (docs/PROTOCOL.md
	// §10); nil with PEER_LINKS=false. They close when the session is
	// replaced or forgotten.
	links *link.Pool
}

// retire closes the session's links once their requests are answered.
func (o *outSession) retire() {
	if o != nil && o.links != nil {
		o.links.Close()
	}
}

// pairing is one pairing attempt; done closes when sess or err is set.
type pairing struct {
	done chan struct{}
	sess *outSession
	err  *relayError
}

func newPeer(origin string, host string, useTLS bool, cfg *Config, frameLimit int) *peer {
	var tlsConfig *tls.Config
	if useTLS {
		tlsConfig = peerTLSConfig(cfg, host)
	}
	d := newDialer(tlsConfig) // the pool's connections and the links'
	return &peer{
		origin: origin,
		host:   []byte(host),
		tls:    useTLS,
		dialer: d,
		client: &fasthttp.HostClient{
			Addr:                     addrWithPort(host, useTLS),
			IsTLS:                    useTLS,
			DialTimeout:              d.dial,
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

// peerTLSConfig is the TLS configuration for dialling the inbound relay at
// host (host[:port] from x-mte-upstream): PEER_CA_FILE, PEER_CERT_FILE /
// PEER_KEY_FILE and PEER_SERVER_NAME. Every connection to a peer, pooled
// here or multiplexed by the relay link, is made with it.
func peerTLSConfig(cfg *Config, host string) *tls.Config {
	return cfg.TLS.Peer.Config(peerHostname(host))
}

// peerHostname is host[:port] without the port and the IPv6 brackets.
func peerHostname(host string) string { return trimBrackets(hostOnly(host)) }

// PeerTLSConfig is peerTLSConfig for packages that dial peers themselves.
func (s *Server) PeerTLSConfig(host string) *tls.Config { return peerTLSConfig(&s.cfg, host) }

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
// in the background (make-before-break, docs/PROTOCOL.md §6.2).
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
func (p *peer) forget(stale *outSession) {
	if p.current.CompareAndSwap(stale, nil) {
		stale.retire()
	}
}

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
		p.current.Swap(pg.sess).retire()
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

// peerEvictIdle is how long a peer must have gone unnamed before a full
// table drops it for a new one: long enough that a peer in use is never
// dropped, short enough that origins named once (mistakes, probes, junk
// from a token holder) do not lock real peers out for good.
const peerEvictIdle = 2 * peerIdle

// lookup returns the peer for an x-mte-upstream value at time now (Unix
// ns). The common case, a value seen before, is one map read without
// allocation.
func (ps *peerSet) lookup(s *Server, value []byte, now int64) (*peer, *relayError) {
	if len(value) == 0 {
		return nil, errUpstreamMissing
	}
	ps.mu.RLock()
	p := ps.byValue[string(value)]
	ps.mu.RUnlock()
	if p != nil {
		p.touch(now)
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
		if len(ps.byOrig) >= maxPeers && ps.evictIdle(now) == 0 {
			return nil, errUpstreamNotAllowed
		}
		scheme, host, _ := strings.Cut(origin, "://")
		p = newPeer(origin, host, scheme == "https", &s.cfg, s.frameLimit)
		ps.byOrig[origin] = p
	}
	if len(ps.byValue) < 4*maxPeers {
		ps.byValue[string(value)] = p
	}
	p.touch(now)
	return p, nil
}

// closeAll closes what every peer holds open.
func (ps *peerSet) closeAll() {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for _, p := range ps.byOrig {
		p.close()
	}
}

// evictIdle drops, with ps.mu held, every peer unnamed for peerEvictIdle,
// closes what they hold open, and reports how many went. A request still
// using one finishes with it; the next one for that origin starts afresh.
func (ps *peerSet) evictIdle(now int64) int {
	n := 0
	for origin, p := range ps.byOrig {
		if now-p.lastUsed.Load() < int64(peerEvictIdle) {
			continue
		}
		delete(ps.byOrig, origin)
		p.close()
		n++
	}
	if n > 0 {
		for value, p := range ps.byValue {
			if ps.byOrig[p.origin] != p {
				delete(ps.byValue, value)
			}
		}
	}
	return n
}
