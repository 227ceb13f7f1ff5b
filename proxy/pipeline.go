package proxy

// The request path, stage by stage (docs/PROTOCOL.md has the bytes):
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
//
// Inbound relay B, in inbound():
//  6. x-mte-client-id names the session: a map hit in the store, compared
//     in constant time with the stored id; on a miss the id's HMAC decides
//     between MTE_CLIENT_ID_INVALID and MTE_SESSION_UNKNOWN (with a proof
//     MACed over the frame's tag), before anything reaches the upstream.
//  7. The frame's timestamp must be within MaxClockSkew; it must open under
//     the request key (bound to the client id); only then does the replay
//     window (store.Accept) record its counter. Any failure is one
//     MTE_FRAME_REJECTED: fail closed, tell the peer nothing.
//  8. forward(): the envelope is rebuilt as a request to UPSTREAM (no
//     Content-Length or Transfer-Encoding inside a frame, hop-by-hop and
//     x-mte-* dropped, HEADERS set), sent with UPSTREAM_TIMEOUT.
//  9. sealResponse(): the upstream's status, headers and body, or a relay
//     error (502, 504), sealed under the response key with the request's
//     counter and this relay's responder id as nonce, bound to the
//     request's tag, answered as 200.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// outbound is the outbound relay's handler: stages 1–5.
func (s *Server) outbound(ctx *fasthttp.RequestCtx) {
	token := ctx.Request.Header.Peek(hdrOutboundToken)
	if len(token) == 0 {
		s.fail(ctx, errTokenMissing)
		return
	}
	if got := sha256.Sum256(token); subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
		s.fail(ctx, errTokenInvalid)
		return
	}
	p, e := s.peers.lookup(s, ctx.Request.Header.Peek(hdrUpstream))
	if e != nil {
		s.fail(ctx, e)
		return
	}
	opts, e := parseOptions(&ctx.Request.Header)
	if e != nil {
		s.fail(ctx, e)
		return
	}
	if len(ctx.Request.Body()) > s.cfg.MaxBodyBytes {
		s.fail(ctx, errBodyTooLarge)
		return
	}
	for attempt := 0; ; attempt++ {
		sess, e := p.session(s)
		if e != nil {
			s.fail(ctx, e)
			return
		}
		e, again := s.exchange(ctx, p, sess, opts)
		if !again {
			if e != nil {
				s.fail(ctx, e)
				return
			}
			s.decorate(ctx)
			return
		}
		p.forget(sess)
		if attempt > 0 {
			s.fail(ctx, errPeerRefused)
			return
		}
	}
}

// exchange seals the app's request under sess, sends it to p and writes the
// opened response to ctx. again reports that the peer does not know the
// session: nothing reached the upstream, and the caller may pair and resend.
func (s *Server) exchange(ctx *fasthttp.RequestCtx, p *peer, sess *outSession, opts options) (e *relayError, again bool) {
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

	if err := s.sendToPeer(p, req, resp); err != nil {
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

// inbound is the inbound relay's handler: stages 6–9.
func (s *Server) inbound(ctx *fasthttp.RequestCtx, idText []byte) {
	id, err := session.ParseClientID(idText)
	if err != nil || !ctx.IsPost() {
		writeError(ctx, errClientIDInvalid)
		return
	}
	sess, e := s.lookup(ctx, &id)
	if e != nil {
		writeError(ctx, e)
		if e == errSessionUnknown {
			s.proveUnknown(ctx, &id)
		}
		return
	}
	if !sess.ClientID.Equal(&id) {
		writeError(ctx, errClientIDInvalid)
		return
	}

	frame := ctx.Request.Body()
	h, err := codec.ParseHeader(frame)
	if err != nil || h.Kind != codec.KindRequest || !s.fresh(h.Time) {
		s.reject(ctx)
		return
	}
	var tag [codec.TagLen]byte
	copy(tag[:], codec.Tag(frame))
	env, err := codec.Open(frame, h, sess.Request, id[:], nil)
	if err != nil {
		s.reject(ctx)
		return
	}
	if err := s.store.Accept(storeCtx, sess, h.Counter); err != nil {
		if errors.Is(err, session.ErrReplay) {
			s.reject(ctx)
		} else {
			// The store logs an outage once; nothing per request here.
			writeError(ctx, errStoreUnavailable)
		}
		return
	}
	r, err := codec.ParseRequest(env, h.Mode)
	if err != nil {
		s.reject(ctx)
		return
	}
	s.forward(ctx, sess, h, tag[:], &r)
}

// storeCtx is the context of store calls. Not the fasthttp.RequestCtx: its
// Done closes when a graceful shutdown begins, which would cancel the Redis
// commands of the very requests the shutdown waits for. Stores bound their
// own calls with timeouts.
var storeCtx = context.Background()

// lookup finds the session a client id names (stage 6): a local map read
// on the hot path; on a miss the id's MAC is checked before the store may
// ask a shared backend, so that junk ids cost no network round trip.
func (s *Server) lookup(ctx *fasthttp.RequestCtx, id *session.ClientID) (*session.Session, *relayError) {
	if sess, ok := s.store.GetLocal(id.ID()); ok {
		return sess, nil
	}
	// A copy, so that only this path's id escapes to the HMAC's heap and the
	// hit path stays allocation-free.
	unknown := *id
	if s.secrets.VerifyClientID(&unknown) != nil {
		return nil, errClientIDInvalid
	}
	sess, err := s.store.Get(storeCtx, unknown.ID())
	switch {
	case errors.Is(err, session.ErrUnknownSession):
		return nil, errSessionUnknown
	case err != nil:
		// The store logs an outage once; nothing per request here.
		return nil, errStoreUnavailable
	}
	return sess, nil
}

// proveUnknown adds to an MTE_SESSION_UNKNOWN answer B's proof for this
// request (docs/PROTOCOL.md §2.3), so that A may pair anew and resend.
func (s *Server) proveUnknown(ctx *fasthttp.RequestCtx, id *session.ClientID) {
	frame := ctx.Request.Body()
	if len(frame) < codec.Overhead {
		return // not a frame: nothing to bind a proof to, and A will not resend
	}
	unknown := *id
	proof := s.secrets.AppendUnknownSessionProof(nil, &unknown, codec.Tag(frame))
	ctx.Response.Header.Set(hdrRelayProof, base64.RawURLEncoding.EncodeToString(proof))
}

// reject answers a frame that does not open. It says nothing about why.
func (s *Server) reject(ctx *fasthttp.RequestCtx) {
	if s.cfg.Debug {
		s.log.Debug("frame rejected", "remote", ctx.RemoteAddr().String())
	}
	writeError(ctx, errFrameRejected)
}

// fresh bounds a frame's age and future-dating (docs/PROTOCOL.md §6.1).
func (s *Server) fresh(ms int64) bool {
	d := s.now().UnixMilli() - ms
	limit := session.MaxClockSkew.Milliseconds()
	return d <= limit && d >= -limit
}

// forward sends the opened request to UPSTREAM and seals the answer back
// (stages 8 and 9).
func (s *Server) forward(ctx *fasthttp.RequestCtx, sess *session.Session, h codec.Header, tag []byte, r *codec.Request) {
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	ureq, uresp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(ureq)
	defer fasthttp.ReleaseResponse(uresp)

	buf.B = append(append(buf.B[:0], s.upstreamPrefix...), r.URI...)
	ureq.SetRequestURIBytes(buf.B)
	ureq.Header.SetMethodBytes(r.Method)
	ureq.Header.SetNoDefaultContentType(true)
	for name, value, ok := r.Headers.Next(); ok; name, value, ok = r.Headers.Next() {
		switch {
		case bytes.EqualFold(name, strContentLength), bytes.EqualFold(name, strTransferEncoding):
			// A relay never sends these: the body's length is in the
			// envelope. Refuse rather than guess (request smuggling).
			s.sealResponse(ctx, sess, h, tag, nil, errForbiddenHeader, buf)
			return
		case isControl(name), isHopByHop(name, nil), bytes.EqualFold(name, strHost):
			continue
		}
		ureq.Header.AddBytesKV(name, value)
	}
	for _, x := range s.extraHeaders {
		ureq.Header.SetBytesKV(x[0], x[1])
	}
	ureq.SetBodyRaw(r.Body)

	if err := s.upstream.DoTimeout(ureq, uresp, s.cfg.UpstreamTimeout); err != nil {
		s.sealResponse(ctx, sess, h, tag, nil, upstreamError(err), buf)
		return
	}
	uresp.SkipBody = ureq.Header.IsHead() // remember for sealResponse
	s.sealResponse(ctx, sess, h, tag, uresp, nil, buf)
}

func upstreamError(err error) *relayError {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return errUpstreamTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge), errors.As(err, &small):
		return errUpstreamTooLarge
	}
	return errUpstreamUnreachable
}

// sealResponse seals either the upstream's response or a relay error as the
// answer to the request with header h and tag, and writes it to ctx. buf is
// scratch space the caller returns to the pool.
func (s *Server) sealResponse(ctx *fasthttp.RequestCtx, sess *session.Session, h codec.Header, tag []byte, up *fasthttp.Response, e *relayError, buf *bytebufferpool.ByteBuffer) {
	frame := codec.AppendHeader(buf.B[:0], codec.Header{
		Kind: codec.KindResponse, Mode: h.Mode, Counter: h.Counter, Responder: s.responder,
	})
	if e != nil {
		env := codec.BeginResponse(frame, e.status)
		env.AddHeader([]byte(fasthttp.HeaderContentType), []byte("application/json"))
		env.AddHeader([]byte(hdrRelayError), []byte(e.code))
		frame = env.Finish(e.json, h.Mode)
	} else {
		env := codec.BeginResponse(frame, up.StatusCode())
		connection := up.Header.Peek(fasthttp.HeaderConnection)
		// Content-Length only matters without a body: the app's HEAD must
		// see the length a GET would have.
		head := up.SkipBody
		for name, value := range up.Header.All() {
			if isHopByHop(name, connection) || (!head && bytes.EqualFold(name, strContentLength)) {
				continue
			}
			env.AddHeader(name, value)
		}
		frame = env.Finish(up.Body(), h.Mode)
	}
	frame = codec.Seal(frame, sess.Response, sess.ClientID[:], tag)
	ctx.Response.Header.Set(hdrRelay, Version)
	ctx.Response.Header.SetContentType(frameContentType)
	// The frame becomes the response body; the old body buffer is recycled.
	buf.B = ctx.Response.SwapBody(frame)
}
