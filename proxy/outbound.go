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
//  4. The frame is POSTed to the peer at /api/mte-relay (or at the app's
//     own URI when x-mte-encode-url is false) with x-mte-client-id; with
//     x-mte-encode-headers false the app's headers travel in clear too.
//  5. openResponse(): a 200 answer is a response frame that must carry the
//     same counter, open under the response key and name this request's
//     tag; its status, headers and body go to the app. MTE_SESSION_UNKNOWN
//     (the peer restarted or expired the session) with B's proof for this
//     request means: forget the session, pair anew, seal again and resend,
//     once.

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// outbound is the outbound relay's handler: stages 1–5, measured.
func (s *Server) outbound(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.metrics.RequestStarted()
	idBuf := requestIDBufs.Get().(*[maxRequestIDLen]byte)
	defer requestIDBufs.Put(idBuf)
	id := s.takeRequestID(&ctx.Request.Header, idBuf[:0])
	e := s.relay(ctx)
	outcome, code := e.outcomeOrOK(), ""
	if e != nil {
		s.fail(ctx, e)
		code = e.code
	} else {
		s.decorate(ctx)
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
// ctx.Response, or the relay error to answer instead.
func (s *Server) relay(ctx *fasthttp.RequestCtx) *relayError {
	token := ctx.Request.Header.Peek(hdrOutboundToken)
	if len(token) == 0 {
		return errTokenMissing
	}
	if got := sha256.Sum256(token); subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
		return errTokenInvalid
	}
	p, e := s.peers.lookup(s, ctx.Request.Header.Peek(hdrUpstream))
	if e != nil {
		return e
	}
	opts, e := parseOptions(&ctx.Request.Header)
	if e != nil {
		return e
	}
	if len(ctx.Request.Body()) > s.cfg.MaxBodyBytes {
		return errBodyTooLarge
	}
	for attempt := 0; ; attempt++ {
		sess, e := p.session(s)
		if e != nil {
			return e
		}
		e, again := s.exchange(ctx, p, sess, opts)
		if !again {
			return e
		}
		p.forget(sess)
		if attempt > 0 {
			return errPeerRefused
		}
	}
}

// exchange seals the app's request under sess, sends it to p and writes the
// opened response to ctx. again reports that the peer does not know the
// session: nothing reached the upstream, and the caller may pair and resend.
func (s *Server) exchange(ctx *fasthttp.RequestCtx, p *peer, sess *outSession, opts options) (e *relayError, again bool) {
	counter, ok := sess.NextCounter()
	if !ok {
		return nil, true // the key is spent: pair anew (DESIGN.md §2.6)
	}
	// The frame buffer is taken first so that it goes back to the pool last,
	// after the request that points at it.
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var tag [codec.TagLen]byte
	if buf.B, e = s.sealRequest(buf.B[:0], &ctx.Request, req, sess, counter, opts); e != nil {
		return e, false
	}
	copy(tag[:], codec.Tag(buf.B))

	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetHostBytes(p.host)
	if opts.clearURL {
		req.Header.SetRequestURIBytes(ctx.Request.Header.RequestURI())
	} else {
		req.Header.SetRequestURIBytes(pathRelay)
	}
	if p.tls {
		req.URI().SetScheme("https")
	}
	req.Header.SetBytesV(hdrClientID, sess.idText)
	if len(req.Header.ContentType()) == 0 {
		req.Header.SetContentType(frameContentType)
	}
	req.SetBodyRaw(buf.B)

	sent := time.Now()
	err := s.sendToPeer(p, req, resp)
	s.metrics.PeerDone(time.Since(sent))
	if err != nil {
		return peerError(err), false
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return s.peerRefusal(resp, sess, tag)
	}
	if len(resp.Header.Peek(hdrRelay)) == 0 {
		return errPeerNotRelay, false
	}
	return s.openResponse(ctx, resp.Body(), sess, counter, opts, tag[:]), false
}

// sealRequest appends the sealed frame of in to dst (stage 3). With
// x-mte-encode-headers false it also copies the forwardable headers into
// out, in clear; the sealed copy stays the one the inbound relay uses.
func (s *Server) sealRequest(dst []byte, in, out *fasthttp.Request, sess *outSession, counter uint64, opts options) ([]byte, *relayError) {
	frame := codec.AppendHeader(dst, codec.Header{
		Kind: codec.KindRequest, Mode: opts.mode, Flags: opts.flags(),
		Counter: counter, Time: s.now().UnixMilli(),
	})
	env := codec.BeginRequest(frame, in.Header.Method(), in.Header.RequestURI())
	connection := in.Header.Peek(fasthttp.HeaderConnection)
	for name, value := range in.Header.All() {
		if !forwardable(name, connection) {
			continue
		}
		if !env.AddHeader(name, value) {
			return dst, errTooManyHeaders
		}
		if opts.clearHeaders {
			out.Header.AddBytesKV(name, value)
		}
	}
	frame = env.Finish(in.Body(), opts.mode)
	return codec.Seal(frame, sess.Request, sess.ClientID[:], nil), nil
}

// peerRefusal maps a relay error from the peer. Only MTE_SESSION_UNKNOWN
// allows a resend, because B raises it before anything reaches the upstream,
// and only with B's proof for this very request: a forged one would let an
// attacker who dropped a genuine response make the upstream run the request
// twice (docs/PROTOCOL.md §2.3).
//
// tag comes by value: passed as a slice it would escape into the proof's
// HMAC and put every request's tag on the heap, not just refused ones.
func (s *Server) peerRefusal(resp *fasthttp.Response, sess *outSession, tag [codec.TagLen]byte) (*relayError, bool) {
	code := resp.Header.Peek(hdrRelayError)
	switch {
	case len(code) == 0:
		return errPeerNotRelay, false
	case string(code) == errSessionUnknown.code:
		if s.validProof(resp.Header.Peek(hdrRelayProof), sess, tag[:]) {
			return nil, true
		}
		s.log.Warn("an unknown-session answer without a valid proof: not resending (tampering, or relays with different secrets)")
	case string(code) == errStoreUnavailable.code:
		return errStoreUnavailable, false
	}
	refused := *errPeerRefused
	refused.peerCode = bytes.Clone(code)
	return &refused, false
}

func (s *Server) validProof(text []byte, sess *outSession, tag []byte) bool {
	var proof [session.ProofLen]byte
	n, err := base64.RawURLEncoding.Decode(proof[:], text)
	return err == nil && n == session.ProofLen && len(text) == base64.RawURLEncoding.EncodedLen(session.ProofLen) &&
		s.secrets.VerifyUnknownSessionProof(&sess.ClientID, tag, proof[:])
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
func (s *Server) pairWith(p *peer) (*outSession, *relayError) {
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
	if err := s.sendToPeer(p, req, resp); err != nil {
		e := peerError(err)
		s.log.Warn("pairing: peer unreachable", "peer", p.origin, "code", e.code)
		s.metrics.Pairing(metrics.Outbound, metrics.ResultFailed)
		return nil, e
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
		return nil, errPairRefused
	}
	sess, err := ini.ConsumePairResponse(resp.Body(), s.now())
	if err != nil {
		s.log.Warn("pairing: the peer's answer did not verify", "peer", p.origin)
		return nil, errPairRefused
	}
	s.log.Info("paired", "peer", p.origin, "suite", sess.Suite.String(), "expires", sess.Expires.UTC().Format(time.RFC3339))
	return &outSession{Session: sess, idText: sess.ClientID.AppendText(nil)}, nil
}

// sendToPeer sends req to p within PEER_TIMEOUT, resending it after any
// failure that is not a timeout, and after an intermediary's gateway error. Resending is always safe: the peer's replay
// window accepts a frame once, so the upstream never sees it twice (and a
// duplicate pairing request only makes an unused session). The first resend
// is immediate, since the usual cause is a pooled keep-alive connection the
// peer closed (fasthttp would not resend a POST: its issues #1875, #818);
// later ones back off, so that a restarting inbound relay (a deploy) costs
// the app a short wait instead of an error. resendFor bounds the wait.
func (s *Server) sendToPeer(p *peer, req *fasthttp.Request, resp *fasthttp.Response) error {
	start := time.Now()
	deadline := start.Add(s.cfg.PeerTimeout)
	var pause time.Duration
	for {
		err := p.client.DoDeadline(req, resp, deadline)
		if err == nil && !undelivered(resp) || err != nil && !resendable(err) ||
			time.Since(start)+pause > resendFor || time.Until(deadline) <= pause {
			return err
		}
		time.Sleep(pause)
		pause = min(max(2*pause, resendFirstPause), resendMaxPause)
	}
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
	var timeout interface{ Timeout() bool }
	return !errors.Is(err, fasthttp.ErrTimeout) && !errors.Is(err, fasthttp.ErrDialTimeout) &&
		!errors.Is(err, fasthttp.ErrBodyTooLarge) && !(errors.As(err, &timeout) && timeout.Timeout())
}

// peerError classifies a failed exchange with a peer relay.
func peerError(err error) *relayError {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return errPeerTimeout
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return errPeerBadResponse
	}
	return errPeerUnreachable
}
