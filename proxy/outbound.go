package proxy

// The outbound relay's path, stage by stage (docs/PROTOCOL.md has the bytes;
// inbound.go continues at stage 6).
//
// Outbound relay A, in outbound():
//  1. The app's request arrives whole (fasthttp reads the body; over
//     MAX_BODY_BYTES is 413, nothing forwarded). x-mte-outbound-token is
//     compared in constant time; x-mte-upstream picks the peer (allow-list,
//     one HostClient pool per peer); x-mte-encode-* pick the options.
//  2. peer.session() returns the one live session for that peer, pairing
//     first if there is none (POST /api/mte-pair, shared by all waiters)
//     and starting a background rekey near the end of its life.
//  3. sealRequest(): the next counter from the session's atomic counter,
//     the frame header, then the envelope (method, URI, forwardable
//     headers, body) appended in a pooled buffer and sealed in place.
//  4. exchangeLink(): the frame goes on one of the session's relay links,
//     its counter as the link id, and the answer comes back by that id
//     (docs/PROTOCOL.md §10). Otherwise (no link open yet, the peer
//     refuses links, or the app asked for clear copies) it is POSTed to
//     the peer at /api/mte-relay (or at the app's own URI when
//     x-mte-encode-url is false) with x-mte-client-id; with
//     x-mte-encode-headers false the app's headers travel in clear too,
//     and with a list of names all but those.
//  5. openResponse(): a 200 answer is a response frame that must carry the
//     same counter, open under the response key and name this request's
//     tag; with JSON_RESPONSES or XML_RESPONSES its body is scanned
//     (protect.go, 502 when refused); its status, headers and body go to
//     the app. MTE_SESSION_UNKNOWN
//     (the peer restarted or expired the session) with B's proof for this
//     request means: forget the session, pair anew, seal again and resend,
//     once.

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/link"
	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// outbound is the outbound relay's handler: stages 1–5. Everything the app
// sent is checked before anything is sealed: what the envelope cannot carry,
// or the inbound relay would refuse, is a clear 4xx here, never a panic and
// never a frame the peer rejects.
func (s *Server) outbound(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.metrics.RequestStarted()
	idBuf := requestIDBufs.Get().(*[maxRequestIDLen]byte)
	defer requestIDBufs.Put(idBuf)
	id, generated := s.takeRequestID(&ctx.Request.Header, idBuf[:0])
	var newID []byte
	if generated {
		newID = id
	}
	app := s.appSite(ctx.Request.Header.Host())
	e := s.relay(ctx, app, start, newID)
	outcome, code := e.outcomeOrOK(), ""
	if e != nil {
		s.fail(ctx, app, e)
		code = e.code
	} else {
		s.decorate(ctx, app)
		// The inbound relay's own errors (upstream down or slow) arrive
		// sealed, as an answer like any other: count them by their code.
		if o, ok := outcomeByCode[string(ctx.Response.Header.Peek(hdrRelayError))]; ok {
			outcome, code = o, errorTable[o-1].code
		}
	}
	ctx.Response.Header.SetBytesV(hdrRequestID, id)
	d := time.Since(start)
	s.metrics.RequestDone(metrics.Outbound, outcome, d)
	if s.cfg.AccessLog {
		s.logAccess(&accessEntry{role: "outbound", method: ctx.Method(), uri: ctx.Request.Header.RequestURI(),
			status: ctx.Response.StatusCode(), code: code, requestID: id,
			bytesIn: len(ctx.Request.Body()), bytesOut: len(ctx.Response.Body()), duration: d})
	}
}

// relay is stages 1–5: the app's request through the peer and back into
// ctx.Response, or the relay error to answer instead. newID, if not nil,
// is the request id relay A made for the envelope.
func (s *Server) relay(ctx *fasthttp.RequestCtx, app *site, start time.Time, newID []byte) *relayError {
	// One deadline for the whole exchange, pairing included: the app hears
	// back within PEER_TIMEOUT, however the time is spent.
	now := start
	deadline := now.Add(s.cfg.PeerTimeout)
	h := &ctx.Request.Header
	if e := app.checkToken(controlValue(h, hdrOutboundToken)); e != nil {
		return e
	}
	p, e := s.peers.lookup(s, controlValue(h, hdrUpstream), now.UnixNano())
	if e != nil {
		return e
	}
	opts, e := parseOptions(h)
	if e != nil {
		return e
	}
	if !codec.ValidMethod(h.Method()) {
		return errBadMethod
	}
	target, e := originForm(h.RequestURI())
	if e != nil {
		return e
	}
	if len(ctx.Request.Body()) > s.cfg.MaxBodyBytes {
		return errBodyTooLarge
	}
	req := appRequest{req: &ctx.Request, target: target, opts: opts, newID: newID}
	for attempt := 0; ; attempt++ {
		sess, e := p.session(s, deadline)
		if e != nil {
			return e
		}
		e, again := s.exchange(ctx, p, sess, &req, deadline)
		if !again {
			return e
		}
		p.forget(sess)
		if attempt > 0 {
			return errPeerRefused
		}
	}
}

// appRequest is the app's request as stage 3 seals it.
type appRequest struct {
	req    *fasthttp.Request
	target []byte // origin-form: path and query
	opts   options
	newID  []byte // the x-request-id relay A made, replacing the app's fields; nil: the app's id is kept
}

// checkToken compares an x-mte-outbound-token value with st's token
// (OUTBOUND_TOKEN, or the DOMAIN_MAP entry's) as SHA-256 hashes, so that
// timing reveals neither how much matched nor the token's length.
func (st *site) checkToken(token []byte) *relayError {
	if len(token) == 0 {
		return errTokenMissing
	}
	if got := sha256.Sum256(token); subtle.ConstantTimeCompare(got[:], st.tokenHash[:]) != 1 {
		return errTokenInvalid
	}
	return nil
}

// originForm returns the path and query of a request target, which is what
// an envelope carries (docs/PROTOCOL.md §5.1). RFC 9112 §3.2.2 has servers
// accept the absolute-form a client sends to a proxy; its scheme and
// authority are dropped, since relay B sends every request to UPSTREAM. The
// asterisk-form is only for OPTIONS, which the relay answers itself, and the
// authority-form only for CONNECT, which a relay does not tunnel.
func originForm(target []byte) ([]byte, *relayError) {
	if len(target) > 0 && target[0] != '/' {
		rest, ok := cutScheme(target)
		if !ok {
			return nil, errBadTarget
		}
		end := bytes.IndexAny(rest, "/?#")
		switch {
		case end < 0:
			target = []byte("/")
		case rest[end] == '?':
			target = append([]byte("/"), rest[end:]...)
		default:
			target = rest[end:]
		}
	}
	if !codec.ValidTarget(target) || target[0] != '/' || bytes.IndexByte(target, '#') >= 0 {
		return nil, errBadTarget
	}
	return target, nil
}

// cutScheme returns what follows "http://" or "https://", in any case.
func cutScheme(target []byte) ([]byte, bool) {
	for _, scheme := range []string{"http://", "https://"} {
		if len(target) >= len(scheme) && bytes.EqualFold(target[:len(scheme)], []byte(scheme)) {
			return target[len(scheme):], true
		}
	}
	return nil, false
}

// exchange seals the app's request under sess, sends it to p and writes the
// opened response to ctx. again reports that the peer does not know the
// session and the request did not run: the caller may pair and resend.
func (s *Server) exchange(ctx *fasthttp.RequestCtx, p *peer, sess *outSession, app *appRequest, deadline time.Time) (e *relayError, again bool) {
	counter, ok := sess.NextCounter()
	if !ok {
		return nil, true // the key is spent: pair anew (docs/PROTOCOL.md §6.2)
	}
	// The frame buffer is taken first so that it goes back to the pool last,
	// after the request that points at it.
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var tag [codec.TagLen]byte
	var sealed time.Time
	seal := func(clearCopies *fasthttp.Request) *relayError {
		var e *relayError
		if buf.B, e = s.sealRequest(buf.B[:0], app, clearCopies, sess, counter); e != nil {
			return e
		}
		sealed = time.Now()
		copy(tag[:], codec.Tag(buf.B))
		req.SetBodyRaw(buf.B)
		return nil
	}
	if e := seal(req); e != nil {
		return e, false
	}
	// Sealed anew before a resend when no earlier attempt can have reached
	// the peer (every one failed to connect): a request that waited out a
	// restart of the peer then counts as sealed after it, which is what
	// lets the peer's unknown-session proof cover it (peerRefusal).
	reseal := func() bool {
		next, ok := sess.NextCounter()
		if !ok {
			return false
		}
		counter = next
		return seal(nil) == nil // the clear copies, if any, are on req already
	}

	if sess.links != nil && app.opts.linkable() {
		sent := time.Now()
		e, again, outcome := s.exchangeLink(ctx, sess, buf.B, counter, app, tag, sealed, deadline)
		switch outcome {
		case linkAnswered:
			s.metrics.PeerDone(time.Since(sent))
			return e, again
		case linkMayHaveRun:
			reseal = nil // the same bytes go over HTTP, never a new seal
		}
	}

	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetHostBytes(p.host)
	if app.opts.clearURL {
		req.Header.SetRequestURIBytes(app.target)
	} else {
		req.Header.SetRequestURIBytes(pathRelay)
	}
	if p.tls {
		req.URI().SetScheme("https")
	}
	req.Header.SetBytesKV(hdrClientID, sess.idText)
	if len(req.Header.ContentType()) == 0 {
		req.Header.SetContentType(frameContentType)
	}

	sent := time.Now()
	err := s.sendToPeer(p, req, resp, deadline, reseal)
	s.metrics.PeerDone(time.Since(sent))
	if err != nil {
		return s.peerError(p, err), false
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return s.peerRefusal(resp, sess, tag, app.req.Header.Method(), sealed)
	}
	if len(resp.Header.Peek(hdrRelay)) == 0 {
		return errPeerNotRelay, false
	}
	return s.openResponse(ctx, resp.Body(), sess, counter, app.opts, tag[:]), false
}

// sealRequest appends the sealed frame of the app's request to dst (stage
// 3). The header fields come from the section as the app sent it (see
// nextField); with x-mte-encode-headers false they are also copied into
// clearCopies (unless nil), in clear, and with a list all but the listed
// ones are, while the sealed copy stays the one the inbound relay uses.
func (s *Server) sealRequest(dst []byte, app *appRequest, clearCopies *fasthttp.Request, sess *outSession, counter uint64) ([]byte, *relayError) {
	in := app.req
	frame := codec.AppendHeader(dst, codec.Header{
		Kind: codec.KindRequest, Mode: app.opts.mode, Flags: app.opts.flags(),
		Counter: counter, Time: s.now().UnixMilli(),
	})
	env := codec.BeginRequest(frame, in.Header.Method(), app.target)
	connection := in.Header.Peek(fasthttp.HeaderConnection)
	for raw := in.Header.RawHeaders(); ; {
		name, value, rest, ok, bad := nextField(raw)
		if bad {
			return dst, errBadHeader
		}
		if !ok {
			break
		}
		raw = rest
		if !forwardable(name, connection) || app.newID != nil && bytes.EqualFold(name, strRequestID) {
			continue
		}
		if !env.AddHeader(name, value) {
			return dst, errTooManyHeaders
		}
		if clearCopies != nil && app.opts.headerInClear(name) {
			clearCopies.Header.AddBytesKV(name, value)
		}
	}
	if app.newID != nil {
		if !env.AddHeader(strRequestID, app.newID) {
			return dst, errTooManyHeaders
		}
		if clearCopies != nil && app.opts.headerInClear(strRequestID) {
			clearCopies.Header.AddBytesKV(strRequestID, app.newID)
		}
	}
	frame = env.Finish(in.Body(), app.opts.mode)
	return codec.Seal(frame, sess.Request, sess.ClientID[:], nil), nil
}

// peerRefusal maps a relay error the peer answered over HTTP: the code
// in x-mte-relay-error, the proof in x-mte-relay-proof (base64).
//
// tag comes by value: passed as a slice it would escape into the proof's
// HMAC and put every request's tag on the heap, not just refused ones.
func (s *Server) peerRefusal(resp *fasthttp.Response, sess *outSession, tag [codec.TagLen]byte, method []byte, sealed time.Time) (*relayError, bool) {
	code := resp.Header.Peek(hdrRelayError)
	if len(code) == 0 {
		return errPeerNotRelay, false
	}
	var proof [session.ProofLen]byte
	text := resp.Header.Peek(hdrRelayProof)
	if n, err := base64.RawURLEncoding.Decode(proof[:], text); err != nil || n != session.ProofLen || len(text) != proofTextLen {
		return s.refused(code, nil, sess, tag, method, sealed)
	}
	return s.refused(code, proof[:], sess, tag, method, sealed)
}

// refused maps a relay error from the peer, over HTTP or a link. Only
// MTE_SESSION_UNKNOWN allows a resend, because B raises it before anything
// reaches the upstream, and only with B's proof for this very request,
// which also says how long B has kept every session it was given. A
// request that may have run on a session B lost since (an attacker can
// hold B's answer back until B restarts, then replay the frame to draw the
// refusal) is resent only when its method is idempotent; otherwise the app
// hears that its outcome is unknown. docs/PROTOCOL.md §2.3 has the
// argument.
func (s *Server) refused(code, proof []byte, sess *outSession, tag [codec.TagLen]byte, method []byte, sealed time.Time) (*relayError, bool) {
	switch {
	case string(code) == errSessionUnknown.code:
		kept, ok := s.secrets.OpenUnknownSessionProof(&sess.ClientID, tag[:], proof)
		if !ok {
			s.log.Warn("an unknown-session answer without a valid proof: not resending (tampering, or relays with different secrets)")
			break
		}
		if sess.lostBefore(kept, sealed, s.now(), s.cfg.PeerTimeout) || idempotent(method) {
			return nil, true
		}
		return errPeerLostSession, false
	case string(code) == errStoreUnavailable.code:
		return errStoreUnavailable, false
	}
	refused := *errPeerRefused
	refused.peerCode = bytes.Clone(code)
	return &refused, false
}

// lostBefore reports whether B's refusal proves that the request sealed at
// sealed never ran: B has kept every session it was given for kept, longer
// than the request has been under way (so B lost this session before the
// request was sealed), and the session was far enough from its expiry that
// expiring cannot be why B forgot it. Both durations are measured on one
// clock each, so the relays' clocks need not agree.
func (o *outSession) lostBefore(kept time.Duration, sealed, now time.Time, peerTimeout time.Duration) bool {
	underWay := time.Since(sealed)
	return kept > underWay && o.Expires.After(now.Add(peerTimeout+session.MaxClockSkew))
}

// linkOutcome is what became of a request offered to the links.
type linkOutcome uint8

const (
	// linkAnswered: the peer answered on a link, or the wait timed out.
	linkAnswered linkOutcome = iota
	// linkNotSent: no link took the request; HTTP carries it as if links
	// did not exist.
	linkNotSent
	// linkMayHaveRun: a link carried the frame and ended before the
	// answer, so it may have reached the peer. HTTP resends the same
	// bytes, which the peer's replay window runs at most once; sealing it
	// anew would not be safe.
	linkMayHaveRun
)

// exchangeLink sends the sealed request frame over one of the session's
// links (stage 4, docs/PROTOCOL.md §10), its counter as the link id, and
// writes the opened answer to ctx. A link that ends before the answer
// costs one resend on another link; e and again mean what exchange's do
// when the outcome is linkAnswered.
func (s *Server) exchangeLink(ctx *fasthttp.RequestCtx, sess *outSession, frame []byte, counter uint64, app *appRequest, tag [codec.TagLen]byte, sealed time.Time, deadline time.Time) (e *relayError, again bool, outcome linkOutcome) {
	a, err := sess.links.RoundTrip(counter, frame, deadline)
	carried := false
	if err == link.ErrClosed {
		carried = true
		a, err = sess.links.RoundTrip(counter, frame, deadline)
	}
	switch err {
	case nil:
	case link.ErrTimeout:
		return errPeerTimeout, false, linkAnswered
	case link.ErrTooLarge:
		// The peer answered within its own MAX_BODY_BYTES, which is larger
		// than this relay's: the request may have run.
		return errResponseTooLarge, false, linkAnswered
	default: // ErrNoLink, or ErrClosed again
		if carried || err == link.ErrClosed {
			return nil, false, linkMayHaveRun
		}
		return nil, false, linkNotSent
	}
	defer a.Release()
	if code, proof, ok := a.Refusal(); ok {
		e, again = s.refused(code, proof, sess, tag, app.req.Header.Method(), sealed)
		return e, again, linkAnswered
	}
	return s.openResponse(ctx, a.Response(), sess, counter, app.opts, tag[:]), false, linkAnswered
}

// sealLinkRequest seals the link request frame that opens a link for sess
// (docs/PROTOCOL.md §10.1): a request frame under the session's next
// counter whose envelope is LINK /api/mte-link, nothing else.
func (s *Server) sealLinkRequest(sess *outSession) ([]byte, error) {
	counter, ok := sess.NextCounter()
	if !ok {
		return nil, errSessionSpent
	}
	frame := codec.AppendHeader(nil, codec.Header{
		Kind: codec.KindRequest, Mode: codec.ModeMKE, Counter: counter, Time: s.now().UnixMilli(),
	})
	env := codec.BeginRequest(frame, strLinkMethod, []byte(link.Path))
	frame = env.Finish(nil, codec.ModeMKE)
	return codec.Seal(frame, sess.Request, sess.ClientID[:], nil), nil
}

var (
	strLinkMethod   = []byte("LINK")
	errSessionSpent = errors.New("proxy: the session's counters are spent")
)

// newLinks makes the set of links to p for sess: dialled in the background
// when requests come, each opened with a link request frame of sess.
func (s *Server) newLinks(p *peer, sess *outSession) *link.Pool {
	d := &link.Dialer{
		Addr:    p.client.Addr,
		Host:    string(p.host),
		TLS:     p.dialer.tls,
		Timeout: min(s.cfg.PeerTimeout, link.DefaultDialTimeout),
		Config: link.ClientConfig{
			MaxMessage:  s.frameLimit,
			IdleTimeout: peerIdle,
			// A write that cannot finish within PEER_TIMEOUT fails every
			// request on the link anyway; ending the link then sends the
			// next ones elsewhere.
			WriteTimeout: min(s.cfg.PeerTimeout, link.DefaultWriteTimeout),
			StallTimeout: s.cfg.PeerTimeout + peerIdle,
		},
	}
	return link.NewPool(func() (*link.Conn, error) {
		frame, err := s.sealLinkRequest(sess)
		if err != nil {
			return nil, err
		}
		c, err := d.Dial(sess.idText, frame)
		switch {
		case err == nil:
			// From now on HTTP is the fallback: its idle keep-alive
			// connections would only be closed by B, and a request that
			// falls back onto one B closed cannot be sealed anew.
			p.client.CloseIdleConnections()
		case !errors.Is(err, link.ErrRefused):
			p.logFailure(s.log, errPeerUnreachable, err)
		}
		return c, err
	}, link.PoolConfig{})
}

// openResponse opens a response frame and writes it to the app (stage 5).
func (s *Server) openResponse(ctx *fasthttp.RequestCtx, frame []byte, sess *outSession, counter uint64, opts options, tag []byte) *relayError {
	h, err := codec.ParseHeader(frame)
	if err != nil || h.Kind != codec.KindResponse || h.Mode != opts.mode || h.Counter != counter {
		return errPeerBadResponse
	}
	env, err := codec.Open(frame, h, sess.Response, sess.ClientID[:], tag)
	if err != nil {
		return errPeerBadResponse
	}
	r, err := codec.ParseResponse(env, h.Mode)
	if err != nil {
		return errPeerBadResponse
	}
	if len(r.Body) > s.cfg.MaxBodyBytes {
		return errResponseTooLarge
	}
	if e := s.responseLimits.check(r.Headers, r.Body, responseJSONErrors, responseXMLErrors); e != nil {
		return e
	}
	out := &ctx.Response
	out.SetStatusCode(r.Status)
	for name, value, ok := r.Headers.Next(); ok; name, value, ok = r.Headers.Next() {
		out.Header.AddBytesKV(name, value)
	}
	if !ctx.IsHead() {
		out.SetBody(r.Body)
	}
	return nil
}

// pairWith is the outbound relay's side of pairing with p.
func (s *Server) pairWith(p *peer, deadline time.Time) (*outSession, *relayError) {
	ini, err := s.secrets.CreatePairRequest(s.suite, s.now())
	if err != nil {
		s.log.Error("pairing: cannot create a request", "err", err)
		return nil, errPairRefused
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.origin + string(pathPair))
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(pairContentType)
	req.SetBodyRaw(ini.Request())
	if err := s.sendToPeer(p, req, resp, deadline, nil); err != nil {
		s.metrics.Pairing(metrics.Outbound, metrics.ResultFailed)
		return nil, s.peerError(p, err)
	}
	sess, e := s.consumePairAnswer(p, ini, resp)
	if e != nil {
		s.metrics.Pairing(metrics.Outbound, metrics.ResultRefused)
		return nil, e
	}
	s.metrics.Pairing(metrics.Outbound, metrics.ResultOK)
	return sess, nil
}

// consumePairAnswer checks the peer's answer to a pairing request.
func (s *Server) consumePairAnswer(p *peer, ini *session.Initiator, resp *fasthttp.Response) (*outSession, *relayError) {
	if resp.StatusCode() == fasthttp.StatusOK && len(resp.Header.Peek(hdrRelay)) == 0 {
		s.log.Warn("pairing: the peer is not a relay", "peer", p.origin)
		return nil, errPeerNotRelay
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		code := string(resp.Header.Peek(hdrRelayError))
		s.log.Warn("pairing refused by peer", "peer", p.origin, "status", resp.StatusCode(), "code", code)
		if code == "" {
			return nil, errPeerNotRelay
		}
		if code == errOutboundOnly.code || code == errUnknownHost.code {
			refused := *errPeerRefused
			refused.peerCode = []byte(code)
			return nil, &refused
		}
		return nil, errPairRefused
	}
	sess, err := ini.ConsumePairResponse(resp.Body(), s.now())
	if err != nil {
		s.log.Warn("pairing: the peer's answer did not verify", "peer", p.origin)
		return nil, errPairRefused
	}
	s.log.Info("paired", "peer", p.origin, "suite", sess.Suite.String(), "expires", sess.Expires.UTC().Format(time.RFC3339))
	o := &outSession{Session: sess, idText: sess.ClientID.AppendText(nil)}
	if !s.cfg.NoPeerLinks {
		o.links = s.newLinks(p, o)
	}
	return o, nil
}

// sendToPeer sends req to p before deadline, resending it after any failure
// that is not a timeout, and after an intermediary's gateway error.
// Resending is always safe: the peer's replay window accepts a frame once,
// so the upstream never sees it twice (and a duplicate pairing request only
// makes an unused session). The first resend is immediate, since the usual
// cause is a pooled keep-alive connection the peer closed (fasthttp would
// not resend a POST: its issues #1875, #818); later ones back off, so that a
// restarting inbound relay (a deploy) costs the app a short wait instead of
// an error. resendFor bounds the wait.
//
// reseal, when not nil, is called before a resend while no attempt can have
// reached the peer (each failed to connect); when it reports false, or once
// an attempt may have arrived, the same bytes are resent.
func (s *Server) sendToPeer(p *peer, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, reseal func() bool) error {
	start := time.Now()
	var pause time.Duration
	reached := false  // an attempt may have reached the peer
	var refusal error // the last failure that was not our own deadline
	for attempt := 0; ; attempt++ {
		err := p.client.DoDeadline(req, resp, deadline)
		if err != nil && isTimeout(err) && refusal != nil && time.Until(deadline) <= 0 {
			// A resend cut short by the deadline says less than the
			// failures before it: a peer that refuses every connection is
			// unreachable, not slow.
			return refusal
		}
		if attempt == 1 && p.tls && err != nil && resendable(err) && !isDialError(err) && tlsconf.Classify(err) == tlsconf.NotTLS {
			// Connected but failed twice in a row: perhaps not a stale
			// pooled connection but a TLS 1.3 peer refusing our client
			// certificate, which fasthttp reports as a closed or reset
			// connection.
			if terr := s.cfg.TLS.Peer.Diagnose(p.client.Addr, peerHostname(string(p.host)), diagnoseTimeout); terr != nil {
				return terr
			}
		}
		if err == nil && !undelivered(resp) || err != nil && (!resendable(err) || tlsconf.Classify(err) != tlsconf.NotTLS) ||
			time.Since(start)+pause > resendFor || time.Until(deadline) <= pause {
			return err
		}
		refusal = err
		reached = reached || !isDialError(err)
		time.Sleep(pause)
		pause = min(max(2*pause, resendFirstPause), resendMaxPause)
		if !reached && reseal != nil && !reseal() {
			reseal = nil
		}
	}
}

// diagnoseTimeout bounds the extra handshake that looks for a TLS refusal
// behind a closed connection.
const diagnoseTimeout = 2 * time.Second

// isDialError reports a connection that could not be opened: nothing of the
// request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

const (
	resendFirstPause = 10 * time.Millisecond
	resendMaxPause   = 200 * time.Millisecond
	resendFor        = 2 * time.Second
)

// undelivered reports an answer from something between the relays, not
// from a relay: a load balancer's 502, 503 or 504 when the replica it chose
// was stopping or gone. Whether or not the frame got through, resending it is
// safe for the same reason as after a connection error.
func undelivered(resp *fasthttp.Response) bool {
	switch resp.StatusCode() {
	case fasthttp.StatusBadGateway, fasthttp.StatusServiceUnavailable, fasthttp.StatusGatewayTimeout:
		return len(resp.Header.Peek(hdrRelay)) == 0 && len(resp.Header.Peek(hdrRelayError)) == 0
	}
	return false
}

// resendable reports a failure after which the peer cannot have answered:
// not a timeout (the peer may still be working on it) and not an oversized
// answer (it would be the same again).
func resendable(err error) bool {
	return !isTimeout(err) && !errors.Is(err, fasthttp.ErrBodyTooLarge)
}

func isTimeout(err error) bool {
	var timeout interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) || errors.As(err, &timeout) && timeout.Timeout()
}

// peerError classifies a failed exchange with a peer relay. An unreachable
// peer also leaves a line in the log, at most one per peer every
// peerLogEvery, so that an operator sees why apps get 502s.
//
// A TLS failure gets its own code and a message saying which side to fix,
// and its verification error is logged at most once per tlsLogEvery.
func (s *Server) peerError(p *peer, err error) *relayError {
	if f := tlsconf.Classify(err); f != tlsconf.NotTLS {
		if s.peerTLSLog.allow(s.now()) {
			s.log.Warn("TLS to the inbound relay failed", "peer", p.origin, "failure", f.String(), "err", err.Error())
		}
		return errPeerTLSFailures[f]
	}
	e := errPeerUnreachable
	switch {
	case isTimeout(err):
		e = errPeerTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// The inbound relay answered within its own MAX_BODY_BYTES, which
		// is larger than this relay's: the request may have run.
		return errResponseTooLarge
	}
	p.logFailure(s.log, e, err)
	return e
}
