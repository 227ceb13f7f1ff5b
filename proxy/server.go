package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/link"
	"github.com/pqrelay/pqrelay/session"
	"github.com/pqrelay/pqrelay/upsign"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// Version identifies the relay in HEAD /api/mte-relay.
const Version = "pqrelay/1"

// Server is one relay. It serves both roles on one listener.
type Server struct {
	cfg Config
	// secrets are CLIENT_ID_SECRET's, which the outbound role pairs under.
	secrets *session.Secrets
	log     *slog.Logger
	metrics metrics.Recorder
	suite   session.Suite

	// site is the relay-wide site: the one site without DOMAIN_MAP; with
	// it, the token, CORS and headers of app requests under a Host in no
	// entry. sites are DOMAIN_MAP's entries by key, nil without it.
	site     *site
	sites    map[string]*site
	siteList []*site // every site with a store, for health, readiness and Close

	peers  peerSet
	signer *upsign.Signer // nil: UPSTREAM_SIGNING unset
	// anyRoutes is set when a site has PASS_THROUGH_ROUTES or MTE_ROUTES:
	// without, plain requests cost no route lookup.
	anyRoutes      bool
	frameLimit     int        // the largest frame a peer may send or answer
	requestLimits  protection // JSON_MAX_*, XML_MAX_*: checked by the inbound relay
	responseLimits protection // the same with JSON_RESPONSES, XML_RESPONSES: checked by the outbound relay
	responder      uint32     // this process's random id in response nonces (codec.Header.Responder)
	requestIDs     requestIDs
	pairSeen       session.SeenPairRequests
	server         *fasthttp.Server
	links          link.Server // the inbound side of relay links
	now            func() time.Time

	// One log line per tlsLogEvery for failing TLS toward peers and
	// toward the upstream: a misconfigured hop fails every request.
	peerTLSLog, upstreamTLSLog logLimit
	// And for clients this relay's listener refuses at the TLS handshake.
	refusedTLSLog logLimit

	mu        sync.Mutex
	listeners []net.Listener
	stopped   bool
	// draining is set from Drain on: GET /api/mte-ready answers 503.
	draining atomic.Bool
}

// New returns a relay serving cfg, with each site's sessions in a store
// from open (one site without DOMAIN_MAP, one per entry with it; nil opens
// a MemoryStore each). It validates cfg. Close closes the stores once the relay has shut down.
func New(cfg Config, open StoreOpener, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	secrets, err := session.NewSecrets(cfg.ClientIDSecret)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		secrets:   secrets,
		log:       log,
		metrics:   cfg.Metrics,
		suite:     session.DefaultSuite(),
		now:       time.Now,
		responder: randomUint32(),
		// A frame holds the body and headers, padded in MTE mode.
		frameLimit:    codec.PaddedLen(cfg.MaxBodyBytes+cfg.MaxHeaderBytes+envelopeSlack) + codec.Overhead,
		requestLimits: protection{json: cfg.JSONLimits, xml: cfg.XMLLimits},
	}
	if err := s.newSites(open); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.JSONResponses {
		s.responseLimits.json = cfg.JSONLimits
	}
	if cfg.XMLResponses {
		s.responseLimits.xml = cfg.XMLLimits
	}
	s.requestIDs.init()
	s.links.MaxMessage = s.frameLimit
	s.links.IdleTimeout = cfg.IdleTimeout
	s.peers = peerSet{byValue: map[string]*peer{}, byOrig: map[string]*peer{}, allowed: map[string]bool{}}
	for _, p := range cfg.AllowedPeers {
		o, _ := parsePeerOrigin(p)
		s.peers.allowed[o] = true
	}
	if cfg.Signing.Scheme != "" {
		if s.signer, err = upsign.New(cfg.Signing); err != nil {
			return nil, err
		}
	}
	s.server = &fasthttp.Server{
		Handler:               s.handle,
		ErrorHandler:          s.serverError,
		HeaderReceived:        s.admit,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.ReadTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ReadBufferSize:        cfg.MaxHeaderBytes,
		WriteBufferSize:       writeBufferSize,
		MaxRequestBodySize:    s.frameLimit,
		Concurrency:           maxConcurrency,
		CloseOnShutdown:       true,
		ConnState:             trackIdle,
		Logger:                fasthttpLogger{log: log, refusedTLS: &s.refusedTLSLog},
	}
	return s, nil
}

// newSites builds the relay-wide site and one per DOMAIN_MAP entry, each
// with its store but the relay-wide one beside DOMAIN_MAP, which serves no
// frames.
func (s *Server) newSites(open StoreOpener) error {
	if open == nil {
		open = func(string, *session.Secrets) (session.Store, error) { return session.NewMemoryStore(0), nil }
	}
	if len(s.cfg.Domains) == 0 {
		st, err := s.newSite("", &s.cfg, open)
		if err != nil {
			return err
		}
		s.site, s.siteList = st, []*site{st}
		s.anyRoutes = st.routes.set()
		return nil
	}
	var err error
	if s.site, err = s.newSite("", &s.cfg, nil); err != nil {
		return err
	}
	s.sites = make(map[string]*site, len(s.cfg.Domains))
	for i := range s.cfg.Domains {
		d := &s.cfg.Domains[i]
		cfg := domainConfig(s.cfg, d)
		st, err := s.newSite(d.Host, &cfg, open)
		if err != nil {
			return err
		}
		s.sites[d.Host] = st
		s.siteList = append(s.siteList, st)
		s.anyRoutes = s.anyRoutes || st.routes.set()
	}
	return nil
}

// retryUpstream is the inbound relay's one rule for sending a request to the
// upstream again after a connection failure (a pooled keep-alive connection
// the upstream closed as the request went out): at most once, and only for
// methods RFC 9110 §9.2.2 calls idempotent. fasthttp cannot tell whether the
// request reached the upstream, so a POST or PATCH is never resent; PUT and
// DELETE are, because running them twice has the effect of running them
// once, which may still surprise an API that counts calls (README says so).
func retryUpstream(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	return false, attempts < 2 && idempotent(req.Header.Method())
}

const (
	// envelopeSlack covers an envelope's own fields: method, URI and
	// length prefixes beyond the header block and body.
	envelopeSlack = 64 << 10
	// maxConcurrency bounds requests served at once (fasthttp's default
	// is 256 * 1024); beyond it clients get 503 instead of memory running out.
	maxConcurrency = 64 << 10
)

func randomUint32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// upstreamTLS is the TLS configuration toward an https UPSTREAM
// (UPSTREAM_* variables), nil for http.
func upstreamTLS(set *tlsconf.Set, up *url.URL) *tls.Config {
	if up.Scheme != "https" {
		return nil
	}
	return set.Upstream.Config(up.Hostname())
}

// Serve serves connections from ln until Shutdown: over TLS when the
// config has a listener certificate (TLS_CERT_FILE), so ln is plain TCP.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS.Listener != nil {
		ln = tls.NewListener(ln, s.cfg.TLS.Listener.Config())
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	if s.cfg.TLS.Listener == nil {
		ln = newParkingListener(ln, s.server, relayHandOffAbove)
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	return s.server.Serve(ln)
}

// Drain makes GET /api/mte-ready answer 503 from now on, so that load
// balancers that probe it stop sending new requests; the relay keeps
// serving until Shutdown. cmd/pqrelay calls it when SIGTERM arrives.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, or for ctx to end. It also closes the listeners itself: fasthttp's
// Shutdown returns at once if it runs before Serve has registered its
// listener, which would leave that Serve running.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.mu.Lock()
	s.stopped = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	// Links are not fasthttp's any more once upgraded: each gets a goaway,
	// and ends once the outbound relay has taken its answers.
	links := make(chan error, 1)
	go func() { links <- s.links.Shutdown(ctx) }()
	err := s.server.ShutdownWithContext(ctx)
	// The app's requests are done: this relay's own links to its peers
	// have nothing more to carry.
	s.peers.closeAll()
	if lerr := <-links; err == nil {
		err = lerr
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err // fasthttp closing what we closed first is no failure
	}
	return nil
}

// LinkConnections is how many relay links this relay serves as the
// inbound relay.
func (s *Server) LinkConnections() int { return s.links.Connections() }

// Relay endpoints (docs/PROTOCOL.md §2).
var (
	pathPair    = []byte("/api/mte-pair")
	pathRelay   = []byte("/api/mte-relay")
	pathEcho    = []byte("/api/mte-echo")
	pathEchoMsg = []byte("/api/mte-echo/")
	pathErrors  = []byte("/api/mte-errors")
	pathHealth  = []byte("/api/mte-health")
	pathReady   = []byte("/api/mte-ready")
)

// handle serves one request. No panic may end the process and every
// in-flight request with it: a request that makes the relay panic is a bug
// to fix, answered 500 and logged, and the connection is closed.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("a request made the relay panic; answered 500", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			writeError(ctx, errInternal)
			ctx.SetConnectionClose()
		}
	}()
	s.route(ctx)
	// Content-Length and Transfer-Encoding together: fasthttp framed the
	// body by the chunks, as RFC 9112 §6.3 says, but whatever sent it may
	// disagree on where the next request starts, so the connection must not
	// carry one (request smuggling).
	if h := &ctx.Request.Header; chunked(h) {
		if _, both := findField(h.RawHeaders(), strContentLength); both {
			ctx.SetConnectionClose()
		}
	}
}

// route routes a request: relay frames (they carry x-mte-client-id), the
// relay's own endpoints, CORS preflights, and everything else to the
// outbound role.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	if s.refusedByRole(ctx) {
		return
	}
	if id := controlValue(&ctx.Request.Header, hdrClientID); id != nil {
		if st := s.inboundSite(ctx); st != nil {
			s.inbound(ctx, st, id)
		}
		return
	}
	if link.IsUpgrade(&ctx.Request.Header) {
		if st := s.inboundSite(ctx); st != nil {
			s.acceptLink(ctx, st)
		}
		return
	}
	path := ctx.Path()
	switch {
	case bytes.Equal(path, pathPair) && ctx.IsPost():
		if st := s.inboundSite(ctx); st != nil {
			s.acceptPairing(ctx, st)
		}
	case bytes.Equal(path, pathRelay) && (ctx.IsHead() || ctx.IsGet()):
		ctx.Response.Header.Set(hdrRelay, Version)
	case (bytes.Equal(path, pathEcho) || bytes.HasPrefix(path, pathEchoMsg)) && ctx.IsGet():
		s.echo(ctx, path)
	case bytes.Equal(path, pathErrors) && ctx.IsGet():
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyRaw(errorTableJSON)
	case bytes.Equal(path, pathHealth) && ctx.IsGet():
		s.health(ctx)
	case bytes.Equal(path, pathReady) && ctx.IsGet():
		s.ready(ctx)
	case s.appSite(ctx.Request.Header.Host()).cors.isPreflight(ctx):
		s.appSite(ctx.Request.Header.Host()).cors.preflight(ctx) // a second lookup only with DOMAIN_MAP, only for preflights
	case ctx.IsOptions() && bytes.Equal(ctx.Request.Header.RequestURI(), []byte("*")):
		// OPTIONS * asks about this server, not a resource (RFC 9110 §9.3.7).
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	case s.anyRoutes && s.routeUnsealed(ctx):
	default:
		s.outbound(ctx)
	}
}

// inboundSite returns the site a frame, pairing request or link upgrade
// arrived for, chosen by its Host before anything else is looked at; for a
// Host in no DOMAIN_MAP entry it answers MTE_UNKNOWN_HOST and returns nil.
func (s *Server) inboundSite(ctx *fasthttp.RequestCtx) *site {
	st := s.siteFor(ctx.Request.Header.Host())
	if st == nil {
		writeError(ctx, errUnknownHost)
		s.countRefusal(metrics.Inbound, errUnknownHost)
		if s.cfg.Debug {
			s.log.Debug("request for a host in no DOMAIN_MAP entry", "host", string(ctx.Request.Header.Host()))
		}
	}
	return st
}

// admit runs once a request's header section is in, before its body is
// read, and sets how large a body the request may have. Only a request that
// shows it belongs here gets room: a relay frame whose client id this fleet
// issued, a pairing request, or an app request with the outbound token, each
// only if RELAY_ROLE serves it. Anything else gets no body, so that nobody without the secret or the
// token can make the relay buffer megabytes per connection; serverError
// then answers what the request lacked. Trailers are not read yet, so the
// parsed fields are the header section's own.
func (s *Server) admit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	limit := noBody
	switch {
	case h.PeekBytes(hdrClientID) != nil:
		if st := s.siteFor(h.Host()); s.cfg.Role.inbound() && st != nil && s.issuedClientID(st, h.PeekBytes(hdrClientID)) {
			limit = s.frameLimit
		}
	case bytes.Equal(h.RequestURI(), pathPair) && h.IsPost():
		if s.cfg.Role.inbound() && s.siteFor(h.Host()) != nil {
			limit = pairBodyLimit
		}
	case link.IsUpgrade(h):
		if st := s.siteFor(h.Host()); s.cfg.Role.inbound() && st != nil && s.issuedClientID(st, h.Peek(link.ClientIDHeader)) {
			limit = linkBodyLimit
		}
	case s.anyRoutes && s.plainRouteOf(h) == plainPassThrough:
		// Read whole, like an app's request: passThrough answers a body
		// over MAX_BODY_BYTES 413.
		limit = s.frameLimit
	case s.cfg.Role.outbound() && s.appSite(h.Host()).checkToken(h.PeekBytes(hdrOutboundToken)) == nil:
		// A frame's worth, beyond MAX_BODY_BYTES: a body a little too large
		// is read and answered 413 by outbound(), which a client that is
		// still writing it can read; past this, the connection is cut.
		limit = s.frameLimit
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

const (
	// noBody is the body limit of a request that has not shown it belongs
	// here. fasthttp reads 0 as "the server's limit", so it is 1 byte.
	noBody = 1
	// pairBodyLimit is above the largest PairRequest (docs/PROTOCOL.md §3.2).
	pairBodyLimit = 4 << 10
	// linkBodyLimit is above a link request frame (docs/PROTOCOL.md §10.1).
	linkBodyLimit = 1 << 10
)

// issuedClientID reports whether text is a client id of a session this relay
// serves, or one whose MAC this fleet's secret made (the session may be
// unknown: its refusal carries a proof bound to the frame, so the frame is
// read).
func (s *Server) issuedClientID(st *site, text []byte) bool {
	id, err := session.ParseClientID(text)
	if err != nil {
		return false
	}
	if _, e := s.lookupLocal(st, &id); e == nil {
		return true
	}
	unknown := id
	return st.secrets.VerifyClientID(&unknown) == nil
}

func (s *Server) echo(ctx *fasthttp.RequestCtx, path []byte) {
	out := map[string]any{"echo": true, "time": s.now().UnixMilli()}
	if len(path) > len(pathEchoMsg) {
		out["echo"] = string(path[len(pathEchoMsg):])
	}
	b, _ := json.Marshal(out)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBody(b)
	s.decorate(ctx, s.appSite(ctx.Request.Header.Host()))
}

// healthReporter is implemented by stores that can be degraded (Redis).
type healthReporter interface{ Health() error }

// health reports the session stores of every site: degraded, naming the
// first store's error, when any is (with DOMAIN_MAP, each entry has one).
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentType("application/json")
	var storeErr error
	s.eachStore(func(st session.Store) {
		if hr, ok := st.(healthReporter); ok && storeErr == nil {
			storeErr = hr.Health()
		}
	})
	if storeErr != nil {
		// 200 all the same: a degraded replica still serves (sessions it
		// paired itself), and a 503 here would make load balancers that
		// probe this endpoint drop every replica during a Redis outage.
		b, _ := json.Marshal(map[string]string{"status": "degraded", "store": storeErr.Error()})
		ctx.Response.SetBody(b)
		return
	}
	ctx.Response.SetBodyString(`{"status":"ok"}`)
}

// servingReporter is implemented by stores that may be unable to serve
// (Redis down with REDIS_OUTAGE=refuse).
type servingReporter interface{ Serving() bool }

// ready is the readiness probe, apart from the liveness probe
// (/api/mte-echo): 503 once draining, and while the store cannot serve,
// so that a balancer sends requests elsewhere without the orchestrator
// restarting a relay that is alive and waiting for Redis.
func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentType("application/json")
	serving := true
	s.eachStore(func(st session.Store) {
		if sr, ok := st.(servingReporter); ok && !sr.Serving() {
			serving = false
		}
	})
	switch {
	case s.draining.Load():
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyString(`{"ready":false,"reason":"shutting down"}`)
	case !serving:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyString(`{"ready":false,"reason":"session store unreachable"}`)
	default:
		ctx.Response.SetBodyString(`{"ready":true}`)
	}
}

// serverError answers what fasthttp could not parse or read in time.
func (s *Server) serverError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		if !s.refusedByRole(ctx) { // the role's refusal says more than the body's
			writeError(ctx, s.refusedBody(&ctx.Request.Header))
		}
	case errors.As(err, &small):
		writeError(ctx, errHeadersTooLarge)
	case errors.As(err, &timeout) && timeout.Timeout():
		writeError(ctx, errClientTimeout)
	default:
		writeError(ctx, errBadRequest)
	}
	ctx.SetConnectionClose()
	lingerAfterRefusal(ctx.Conn())
}

// refusedBody says why admit gave a request no room for its body.
func (s *Server) refusedBody(h *fasthttp.RequestHeader) *relayError {
	switch {
	case h.PeekBytes(hdrClientID) != nil:
		if st := s.siteFor(h.Host()); st == nil {
			return errUnknownHost
		} else if !s.issuedClientID(st, h.PeekBytes(hdrClientID)) {
			return errClientIDInvalid
		}
	case bytes.Equal(h.RequestURI(), pathPair) && h.IsPost():
		if s.siteFor(h.Host()) == nil {
			return errUnknownHost
		}
	case link.IsUpgrade(h):
		if st := s.siteFor(h.Host()); st == nil {
			return errUnknownHost
		} else if !s.issuedClientID(st, h.Peek(link.ClientIDHeader)) {
			return errClientIDInvalid
		}
	default:
		// With route lists set, what routeUnsealed would have answered, or
		// for a pass-through request over admit's limit, the body's size.
		switch s.plainRouteOf(h) {
		case plainPassThrough:
			return errBodyTooLarge
		case plainNotFound:
			return errRouteNotFound
		}
		if !s.cfg.Role.outbound() {
			return errInboundOnly // only with route lists set: refusedByRole answers first otherwise
		}
		if e := s.appSite(h.Host()).checkToken(h.PeekBytes(hdrOutboundToken)); e != nil {
			return e
		}
	}
	return errBodyTooLarge
}

// plainRouteOf is routePlain with a pooled scratch buffer.
func (s *Server) plainRouteOf(h *fasthttp.RequestHeader) plainRoute {
	scratch := bytebufferpool.Get()
	defer bytebufferpool.Put(scratch)
	route, _ := s.routePlain(h, &scratch.B)
	return route
}

// decorate adds the headers and CORS fields of st (HEADERS and
// CORS_ORIGINS, or the DOMAIN_MAP entry's) to a response for the app.
func (s *Server) decorate(ctx *fasthttp.RequestCtx, st *site) {
	st.addExtraHeaders(ctx)
	st.cors.decorate(ctx)
}

// addExtraHeaders sets st's HEADERS fields on ctx's response.
func (st *site) addExtraHeaders(ctx *fasthttp.RequestCtx) {
	for _, h := range st.extraHeaders {
		ctx.Response.Header.SetBytesKV(h[0], h[1])
	}
}

// fail answers the app with e, decorated like any other response.
func (s *Server) fail(ctx *fasthttp.RequestCtx, st *site, e *relayError) {
	writeError(ctx, e)
	s.decorate(ctx, st)
	if s.cfg.Debug {
		s.log.Debug("request refused", "method", string(ctx.Method()), "code", e.code, "status", e.status)
	}
}

// logLimit lets one message through per tlsLogEvery.
type logLimit struct{ next atomic.Int64 }

const tlsLogEvery = time.Minute

func (l *logLimit) allow(now time.Time) bool {
	next := l.next.Load()
	return now.UnixNano() >= next && l.next.CompareAndSwap(next, now.Add(tlsLogEvery).UnixNano())
}

// fasthttpLogger routes fasthttp's own messages to slog at debug level,
// except a connection that ended in a failed TLS handshake (a client
// without an acceptable certificate, or one speaking plain HTTP to the TLS
// port): that is logged as a warning with the reason, at most once per
// tlsLogEvery, so that the operator of a relay with mutual TLS sees whom
// it refuses and why.
type fasthttpLogger struct {
	log        *slog.Logger
	refusedTLS *logLimit
}

func (l fasthttpLogger) Printf(format string, args ...any) {
	if len(args) == 3 && strings.HasPrefix(format, "error when serving connection") {
		if err, ok := args[2].(error); ok && isTLSHandshakeError(err) {
			if l.refusedTLS.allow(time.Now()) {
				l.log.Warn("TLS handshake refused", "remote", fmt.Sprint(args[1]), "err", err.Error())
			}
			return
		}
	}
	l.log.Debug("fasthttp", "format", format)
}

// isTLSHandshakeError recognises the server side's handshake failures:
// crypto/tls words them "tls: …" and has no type for most of them.
func isTLSHandshakeError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "tlsconf: ")
}
