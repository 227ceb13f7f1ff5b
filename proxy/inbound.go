package proxy

// The inbound relay's path, stage by stage (docs/PROTOCOL.md has the bytes).
//
// Inbound relay B, in inbound() for a frame over HTTP and serveLink() for
// one on a relay link (acceptLink() opens a link, docs/PROTOCOL.md §10.1):
//  6. x-mte-client-id names the session: a map hit in the store, compared
//     in constant time with the stored id; on a miss the id's HMAC decides
//     between MTE_CLIENT_ID_INVALID and MTE_SESSION_UNKNOWN (with a proof
//     MACed over the frame's tag), before anything reaches the upstream.
//  7. The frame's timestamp must be within MaxClockSkew; it must open under
//     the request key (bound to the client id); only then does the replay
//     window (store.Accept) record its counter. Any failure is one
//     MTE_FRAME_REJECTED: fail closed, tell the peer nothing.
//  8. With MTE_ROUTES set, a path it does not match is answered with a
//     sealed MTE_ROUTE_NOT_FOUND (routes.go). Message protection (protect.go): with JSON_MAX_* or XML_MAX_* set,
//     a JSON or XML body is scanned; a refused one is answered with a
//     sealed MTE_JSON_* or MTE_XML_* error and never reaches the upstream.
//     forward(): the envelope is rebuilt as a request to UPSTREAM (no
//     Content-Length or Transfer-Encoding inside a frame, hop-by-hop and
//     x-mte-* dropped, HEADERS set), signed last when UPSTREAM_SIGNING is
//     set (package upsign), sent with UPSTREAM_TIMEOUT.
//  9. sealResponse(): the upstream's status, headers and body, or a relay
//     error (502, 504), sealed under the response key with the request's
//     counter and this relay's responder id as nonce, bound to the
//     request's tag, answered as 200 (or on the link, by the request's id).

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/link"
	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// inbound is the inbound relay's HTTP handler for one relay frame: stages
// 6–9 through serveFrame, answered as the frame's own HTTP response.
func (s *Server) inbound(ctx *fasthttp.RequestCtx, st *site, idText []byte) {
	start := time.Now()
	s.metrics.RequestStarted()
	var a frameAnswer
	e := s.answerFrame(ctx, st, idText, &a)
	s.inboundDone(start, &a, e)
}

// inboundDone records one request the inbound relay answered, over HTTP or
// a link, with e the relay error it answered, in clear or sealed.
func (s *Server) inboundDone(start time.Time, a *frameAnswer, e *relayError) {
	d := time.Since(start)
	s.metrics.RequestDone(metrics.Inbound, e.outcomeOrOK(), d)
	if s.cfg.AccessLog {
		entry := accessEntry{role: "inbound", method: a.method, uri: a.uri, status: a.status,
			requestID: a.requestID, bytesIn: a.bytesIn, bytesOut: a.bytesOut, duration: d}
		if e != nil {
			entry.code = e.code
			entry.status = e.status
		}
		s.logAccess(&entry)
	}
}

// answerFrame answers one relay frame into ctx and a, and returns the relay
// error it answered, in clear or sealed, if any.
func (s *Server) answerFrame(ctx *fasthttp.RequestCtx, st *site, idText []byte, a *frameAnswer) *relayError {
	if !ctx.IsPost() {
		writeError(ctx, errClientIDInvalid)
		return errClientIDInvalid
	}
	buf := bytebufferpool.Get()
	*a = s.serveFrame(st, idText, ctx.Request.Body(), buf)
	if a.err != nil {
		writeError(ctx, a.err)
		if a.hasProof {
			var text [proofTextLen]byte
			base64.RawURLEncoding.Encode(text[:], a.proof[:])
			ctx.Response.Header.SetBytesV(hdrRelayProof, text[:])
		}
		if a.err == errFrameRejected && s.cfg.Debug {
			s.log.Debug("frame rejected", "remote", ctx.RemoteAddr().String())
		}
		bytebufferpool.Put(buf)
		return a.err
	}
	ctx.Response.Header.Set(hdrRelay, Version)
	ctx.Response.Header.SetContentType(frameContentType)
	// The frame becomes the response body; the old body buffer is recycled.
	buf.B = ctx.Response.SwapBody(buf.B)
	bytebufferpool.Put(buf)
	return a.sealed
}

// A refusal on a link carries the same proof as x-mte-relay-proof.
var _ = [1]struct{}{}[session.ProofLen-link.ProofLen]

// proofTextLen is the unpadded base64 length of a session.ProofLen proof.
const proofTextLen = (session.ProofLen*8 + 5) / 6

// frameAnswer is relay B's answer to one request frame: either a sealed
// response frame (in the buffer serveFrame was given) or, when the frame
// never opened, a relay error, with B's proof on MTE_SESSION_UNKNOWN.
type frameAnswer struct {
	err      *relayError
	proof    [session.ProofLen]byte
	hasProof bool
	// sealed is the relay error sealed into the response frame (the
	// upstream down or slow), nil when it holds the upstream's answer.
	sealed *relayError
	// What the access log says of an opened frame: the request (slices
	// into the opened envelope, valid while the handler runs), the
	// upstream's status and the body sizes.
	method, uri, requestID []byte
	status, bytesIn        int
	bytesOut               int
}

// serveFrame runs stages 6–9 for the frame sent to st with client id
// idText and leaves the sealed response frame in out.B. It does not depend
// on how the frame arrived.
func (s *Server) serveFrame(st *site, idText, frame []byte, out *bytebufferpool.ByteBuffer) (a frameAnswer) {
	id, err := session.ParseClientID(idText)
	if err != nil {
		a.err = errClientIDInvalid
		return a
	}
	return s.serveFrameOf(st, &id, frame, out)
}

// serveFrameOf is serveFrame for a client id already parsed.
func (s *Server) serveFrameOf(st *site, id *session.ClientID, frame []byte, out *bytebufferpool.ByteBuffer) (a frameAnswer) {
	sess, e := s.lookup(st, id)
	if e != nil {
		a.err = e
		if e == errSessionUnknown && len(frame) >= codec.Overhead {
			// B's proof for this request (docs/PROTOCOL.md §2.3), so that A
			// may pair anew and resend. A body too short to be a frame gets
			// none: there is nothing to bind it to, and A will not resend.
			// Only this path allocates: the id and the proof escape to the
			// HMAC, and a.proof must not, or every answer would.
			unknown := *id
			kept := st.store.Kept(storeCtx)
			copy(a.proof[:], st.secrets.AppendUnknownSessionProof(nil, &unknown, codec.Tag(frame), kept))
			a.hasProof = true
		}
		return a
	}

	h, err := codec.ParseHeader(frame)
	if err != nil || h.Kind != codec.KindRequest {
		return s.refuse(metrics.RefusedMalformed)
	}
	if !s.fresh(h.Time) {
		return s.refuse(metrics.RefusedStale)
	}
	var tag [codec.TagLen]byte
	copy(tag[:], codec.Tag(frame))
	env, err := codec.Open(frame, h, sess.Request, id[:], nil)
	if err != nil {
		return s.refuse(metrics.RefusedUnauthentic)
	}
	if err := st.store.Accept(storeCtx, sess, h.Counter); err != nil {
		if errors.Is(err, session.ErrReplay) {
			return s.refuse(metrics.RefusedReplay)
		}
		// The store logs an outage once; nothing per request here.
		s.metrics.StoreCommandError()
		a.err = errStoreUnavailable
		return a
	}
	r, err := codec.ParseRequest(env, h.Mode)
	if err != nil {
		return s.refuse(metrics.RefusedEnvelope)
	}
	a.method, a.uri, a.bytesIn = r.Method, r.URI, len(r.Body)
	// On the path as opened and authenticated: nothing outside MTE_ROUTES
	// reaches the upstream, nor costs a body scan.
	if !st.routes.sealedAllowed(r.URI, &out.B) {
		a.sealed = errRouteNotFound
		s.sealResponse(sess, h, tag[:], nil, errRouteNotFound, out)
		return a
	}
	if e := s.requestLimits.check(r.Headers, r.Body, requestJSONErrors, requestXMLErrors); e != nil {
		if s.cfg.Debug {
			s.log.Debug("request body refused", "code", e.code, "error", e.message)
		}
		a.sealed = e
		s.sealResponse(sess, h, tag[:], nil, e, out)
		return a
	}
	s.forward(st, sess, h, tag[:], &r, out, &a)
	return a
}

// refuse is the answer to a frame that does not open: one error for every
// reason (fail closed), the reason counted for the operator only.
func (s *Server) refuse(why metrics.Refusal) frameAnswer {
	s.metrics.FrameRefused(why)
	return frameAnswer{err: errFrameRejected}
}

// acceptLink is the inbound relay's side of a link upgrade
// (docs/PROTOCOL.md §10.1): the request's link request frame must pass
// every check a relay frame passes, its counter is recorded in the replay
// window, and its envelope must be exactly LINK /api/mte-link; then the
// connection becomes a link of that session. A refusal is answered as for
// a relay frame, so A keeps to HTTP or pairs anew.
func (s *Server) acceptLink(ctx *fasthttp.RequestCtx, st *site) {
	id, err := session.ParseClientID(ctx.Request.Header.Peek(link.ClientIDHeader))
	if err != nil {
		writeError(ctx, errClientIDInvalid)
		return
	}
	frame := ctx.Request.Body()
	sess, e := s.lookup(st, &id)
	if e != nil {
		writeError(ctx, e)
		if e == errSessionUnknown && len(frame) >= codec.Overhead {
			unknown := id
			proof := st.secrets.AppendUnknownSessionProof(nil, &unknown, codec.Tag(frame), st.store.Kept(storeCtx))
			ctx.Response.Header.Set(hdrRelayProof, base64.RawURLEncoding.EncodeToString(proof))
		}
		return
	}
	h, err := codec.ParseHeader(frame)
	if err != nil || h.Kind != codec.KindRequest || !s.fresh(h.Time) {
		writeError(ctx, errFrameRejected)
		return
	}
	env, err := codec.Open(frame, h, sess.Request, id[:], nil)
	if err != nil {
		writeError(ctx, errFrameRejected)
		return
	}
	if err := st.store.Accept(storeCtx, sess, h.Counter); err != nil {
		if errors.Is(err, session.ErrReplay) {
			writeError(ctx, errFrameRejected)
		} else {
			writeError(ctx, errStoreUnavailable)
		}
		return
	}
	r, err := codec.ParseRequest(env, h.Mode)
	if err != nil || !bytes.Equal(r.Method, strLinkMethod) || string(r.URI) != link.Path ||
		len(r.Body) != 0 || r.Headers.Len() != 0 {
		writeError(ctx, errFrameRejected)
		return
	}
	ctx.Response.Header.Set(hdrRelay, Version)
	// The link belongs to the session, so to st: its requests are served
	// under st whatever Host they might claim.
	s.links.Accept(ctx, func(ex *link.Exchange) { s.serveLink(st, &id, ex) })
}

// serveLink answers one request on a link of the session id names: the
// same stages 6–9 as a frame over HTTP, with the answer or the relay error
// sent back on the link. The link id must be the frame's counter
// (docs/PROTOCOL.md §10.3).
func (s *Server) serveLink(st *site, id *session.ClientID, ex *link.Exchange) {
	answered := false
	defer func() {
		// As handle() does for HTTP: a request that makes the relay panic
		// is a bug to fix, not the end of every request in flight.
		if p := recover(); p != nil {
			s.log.Error("a link request made the relay panic; refused", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !answered {
				ex.Refuse(errInternal.code, nil)
			}
		}
	}()
	start := time.Now()
	s.metrics.RequestStarted()
	frame := ex.Request()
	if h, err := codec.ParseHeader(frame); err != nil || h.Counter != ex.ID() {
		a := s.refuse(metrics.RefusedMalformed)
		ex.Refuse(errFrameRejected.code, nil)
		s.inboundDone(start, &a, a.err)
		return
	}
	out := bytebufferpool.ByteBuffer{B: ex.Buffer()}
	a := s.serveFrameOf(st, id, frame, &out)
	e := a.err
	if e == nil {
		e = a.sealed
	}
	// Recorded before the answer goes out: a's method, path and id point
	// into the request frame, which the link may reuse after.
	s.inboundDone(start, &a, e)
	answered = true
	switch {
	case a.err == nil:
		ex.Respond(out.B)
	case a.hasProof:
		ex.Refuse(a.err.code, a.proof[:])
	default:
		ex.Refuse(a.err.code, nil)
	}
}

// storeCtx is the context of store calls. Not the fasthttp.RequestCtx: its
// Done closes when a graceful shutdown begins, which would cancel the Redis
// commands of the very requests the shutdown waits for. Stores bound their
// own calls with timeouts.
var storeCtx = context.Background()

// lookup finds the session a client id names (stage 6) and checks that id
// is the one it was issued under: a local map read
// on the hot path; on a miss the id's MAC is checked before the store may
// ask a shared backend, so that junk ids cost no network round trip.
func (s *Server) lookup(st *site, id *session.ClientID) (*session.Session, *relayError) {
	if sess, e := s.lookupLocal(st, id); e != errSessionUnknown {
		return sess, e
	}
	// A copy, so that only this path's id escapes to the HMAC's heap and the
	// hit path stays allocation-free.
	unknown := *id
	if st.secrets.VerifyClientID(&unknown) != nil {
		return nil, errClientIDInvalid
	}
	sess, err := st.store.Get(storeCtx, unknown.ID())
	switch {
	case errors.Is(err, session.ErrUnknownSession):
		return nil, errSessionUnknown
	case err != nil:
		// The store logs an outage once; nothing per request here.
		s.metrics.StoreCommandError()
		return nil, errStoreUnavailable
	case !sess.ClientID.Equal(id):
		return nil, errClientIDInvalid
	}
	return sess, nil
}

// lookupLocal finds a session this process serves without I/O and checks,
// in constant time, that id is the one it was issued under.
func (s *Server) lookupLocal(st *site, id *session.ClientID) (*session.Session, *relayError) {
	sess, ok := st.store.GetLocal(id.ID())
	if !ok {
		return nil, errSessionUnknown
	}
	if !sess.ClientID.Equal(id) {
		return nil, errClientIDInvalid
	}
	return sess, nil
}

// fresh bounds a frame's age and future-dating (docs/PROTOCOL.md §6.1).
func (s *Server) fresh(ms int64) bool {
	d := s.now().UnixMilli() - ms
	limit := session.MaxClockSkew.Milliseconds()
	return d <= limit && d >= -limit
}

// forward sends the opened request to UPSTREAM and seals the answer into
// out (stages 8 and 9). This relay's own limits apply to what the outbound
// relay sent as much as to what the upstream answers. It notes in a what it
// sealed: the upstream's status, or the relay error sent instead.
func (s *Server) forward(st *site, sess *session.Session, h codec.Header, tag []byte, r *codec.Request, out *bytebufferpool.ByteBuffer, a *frameAnswer) {
	if e := s.checkUpstreamTarget(len(r.Body), r.URI); e != nil {
		a.sealed = e
		s.sealResponse(sess, h, tag, nil, e, out)
		return
	}
	ureq, uresp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(ureq)
	defer fasthttp.ReleaseResponse(uresp)
	s.beginUpstream(st, ureq, out, r.Method, r.URI)
	for name, value, ok := r.Headers.Next(); ok; name, value, ok = r.Headers.Next() {
		if bytes.EqualFold(name, strRequestID) {
			a.requestID = value
		}
		if bytes.EqualFold(name, strContentLength) || bytes.EqualFold(name, strTransferEncoding) {
			// A relay never sends these: the body's length is in the
			// envelope. Refuse rather than guess (request smuggling).
			a.sealed = errForbiddenHeader
			s.sealResponse(sess, h, tag, nil, errForbiddenHeader, out)
			return
		}
		s.addUpstreamField(st, ureq, name, value, nil)
	}
	if e := s.finishUpstream(st, ureq, r.Method, r.Body); e != nil {
		a.sealed = e
		s.sealResponse(sess, h, tag, nil, e, out)
		return
	}
	if e := s.sendUpstream(st, ureq, uresp); e != nil {
		a.sealed = e
		s.sealResponse(sess, h, tag, nil, e, out)
		return
	}
	a.status, a.bytesOut = uresp.StatusCode(), len(uresp.Body())
	uresp.SkipBody = bytes.Equal(r.Method, strHead) // remember for sealResponse
	s.sealResponse(sess, h, tag, uresp, nil, out)
}

// The request to the upstream is built by one builder for both paths that
// send one, a sealed request opened by forward and an unsealed one
// passThrough lets through: beginUpstream, addUpstreamField for each of the
// app's fields, finishUpstream, then sendUpstream.

// beginUpstream starts ureq as method on UPSTREAM's base path followed by
// target (origin-form, checked by checkUpstreamTarget), with scratch holding
// the URI. fasthttp's own handling of Host, Content-Type, Cookie and the
// like is off: it would rewrite Cookie (quotes dropped, a pair without a
// name lost), and the upstream must get the app's fields byte for byte. So
// the relay writes Host and Content-Length itself.
func (s *Server) beginUpstream(st *site, ureq *fasthttp.Request, scratch *bytebufferpool.ByteBuffer, method, target []byte) {
	ureq.Header.DisableSpecialHeader()
	scratch.B = append(append(scratch.B[:0], st.upstreamPrefix...), target...)
	ureq.SetRequestURIBytes(scratch.B)
	ureq.Header.SetMethodBytes(method)
	ureq.Header.AddBytesKV(strHost, st.upstreamHost)
}

// checkUpstreamTarget refuses what no request to the upstream may carry: a
// body over MAX_BODY_BYTES, a target that is not a path or holds a dot
// segment.
func (s *Server) checkUpstreamTarget(bodyLen int, target []byte) *relayError {
	switch {
	case bodyLen > s.cfg.MaxBodyBytes:
		return errBodyTooLarge
	case len(target) == 0 || target[0] != '/' || hasDotSegment(target):
		return errBadTarget
	}
	return nil
}

// addUpstreamField adds one of the app's header fields to ureq, unless it
// is a control or hop-by-hop field (also one connection, the request's
// Connection value, names), one the relay derives (Host, Content-Length),
// Expect, or one HEADERS replaces.
func (s *Server) addUpstreamField(st *site, ureq *fasthttp.Request, name, value, connection []byte) {
	// Expect: 100-continue asked whether to send the body; the relay has it
	// whole and sends it whole: an interim 100 from the upstream would only
	// be a response the relay does not pass on.
	if !forwardable(name, connection) || bytes.EqualFold(name, strExpect) || st.extraHeader(name) {
		return
	}
	ureq.Header.AddBytesKV(name, value)
}

// finishUpstream adds HEADERS, the length and the body to ureq, and signs
// it when UPSTREAM_SIGNING is set.
func (s *Server) finishUpstream(st *site, ureq *fasthttp.Request, method, body []byte) *relayError {
	for _, x := range st.extraHeaders {
		ureq.Header.AddBytesKV(x[0], x[1])
	}
	// As fasthttp does with special headers on: a length for every request
	// but a GET or HEAD without a body.
	if len(body) > 0 || !(bytes.Equal(method, strGet) || bytes.Equal(method, strHead)) {
		var length [20]byte
		ureq.Header.AddBytesKV(strContentLength, strconv.AppendInt(length[:0], int64(len(body)), 10))
	}
	ureq.SetBodyRaw(body)
	if s.signer != nil {
		// The upstream client sends the path as it came (it sets the same
		// flag before writing); the signer must read it the same way.
		ureq.URI().DisablePathNormalizing = true
		if err := s.signer.Sign(ureq, s.now()); err != nil {
			// Only an asymmetric key can fail here; an unsigned request
			// would be refused by the upstream anyway.
			s.log.Warn("upstream request signing failed", "err", err)
			return errUpstreamUnreachable
		}
	}
	return nil
}

// sendUpstream sends ureq with UPSTREAM_TIMEOUT and returns the relay
// error to answer instead of uresp, if any.
func (s *Server) sendUpstream(st *site, ureq *fasthttp.Request, uresp *fasthttp.Response) *relayError {
	sent := time.Now()
	err := st.upstream.DoTimeout(ureq, uresp, s.cfg.UpstreamTimeout)
	s.metrics.UpstreamDone(time.Since(sent))
	// Set after the call, which resets the response: a response without a
	// Content-Type must reach the app without one, not with fasthttp's
	// text/plain.
	uresp.Header.SetNoDefaultContentType(true)
	switch {
	case err != nil:
		return s.upstreamFailure(st, err)
	case !relayable(uresp):
		return errUpstreamBadResponse
	}
	return nil
}

var (
	strExpect = []byte("Expect")
	strGet    = []byte(fasthttp.MethodGet)
	strHead   = []byte(fasthttp.MethodHead)
)

// extraHeader reports whether st's HEADERS set a field called name, or one
// the upstream may read as name: servers that map field names to CGI-style
// variables (Rack, WSGI, PHP) read "X_Tenant" as "X-Tenant", and the
// client's copy must not stand beside, or override, the relay's.
func (st *site) extraHeader(name []byte) bool {
	for _, x := range st.extraHeaders {
		if sameCGIName(name, x[0]) {
			return true
		}
	}
	return false
}

// sameCGIName reports whether a and b are the same field name once case
// is ignored and "_" read as "-".
func sameCGIName(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if cgiFold(a[i]) != cgiFold(b[i]) {
			return false
		}
	}
	return true
}

func cgiFold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// hasDotSegment reports whether the path of uri holds a "." or ".." segment,
// also percent-encoded (%2e): the upstream, or something in front of it,
// would resolve it (RFC 3986 §5.2.4) and the request could leave UPSTREAM's
// base path. Clients remove dot segments before they send a request, so a
// target that still has one is refused rather than normalised.
func hasDotSegment(uri []byte) bool {
	if q := bytes.IndexByte(uri, '?'); q >= 0 {
		uri = uri[:q]
	}
	for len(uri) > 0 {
		uri = uri[1:] // the '/' before the segment
		end := bytes.IndexByte(uri, '/')
		if end < 0 {
			end = len(uri)
		}
		if isDotSegment(uri[:end]) {
			return true
		}
		uri = uri[end:]
	}
	return false
}

func isDotSegment(seg []byte) bool {
	dots := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// relayable reports whether an upstream response can be relayed as it is:
// a final status the envelope carries (a 101 is never one, since the relay
// does not forward Upgrade) and header fields valid on the wire.
func relayable(up *fasthttp.Response) bool {
	if st := up.StatusCode(); st < 200 || st > 999 {
		return false
	}
	for name, value := range up.Header.All() {
		if !codec.ValidHeaderName(name) || !codec.ValidHeaderValue(value) {
			return false
		}
	}
	return true
}

// upstreamFailure is upstreamError with TLS failures told apart, each
// logged with the verification error at most once per tlsLogEvery.
func (s *Server) upstreamFailure(st *site, err error) *relayError {
	if st.upstream.IsTLS && tlsconf.Classify(err) == tlsconf.NotTLS && upstreamError(err) == errUpstreamUnreachable {
		// Perhaps a TLS 1.3 API refusing our client certificate, which
		// fasthttp reports as a closed or reset connection.
		if terr := s.cfg.TLS.Upstream.Diagnose(st.upstream.Addr, st.upstreamName, diagnoseTimeout); terr != nil {
			err = terr
		}
	}
	if f := tlsconf.Classify(err); f != tlsconf.NotTLS {
		if s.upstreamTLSLog.allow(s.now()) {
			s.log.Warn("TLS to UPSTREAM failed", "failure", f.String(), "err", err.Error())
		}
		return errUpstreamTLSFailures[f]
	}
	return upstreamError(err)
}

// upstreamError classifies a failed call to the upstream: no answer in
// time, an answer over this relay's limits, one that is not HTTP, or no
// connection at all.
func upstreamError(err error) *relayError {
	var small *fasthttp.ErrSmallBuffer
	var op *net.OpError
	switch {
	case isTimeout(err):
		return errUpstreamTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge), errors.As(err, &small):
		return errUpstreamTooLarge
	case errors.As(err, &op), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, fasthttp.ErrNoFreeConns):
		return errUpstreamUnreachable
	}
	return errUpstreamBadResponse
}

// sealResponse seals either the upstream's response or a relay error as the
// answer to the request with header h and tag, into out.B. The upstream's
// x-mte-* fields are dropped: the app must be able to trust that those come
// from the relays.
func (s *Server) sealResponse(sess *session.Session, h codec.Header, tag []byte, up *fasthttp.Response, e *relayError, out *bytebufferpool.ByteBuffer) {
	frame := codec.AppendHeader(out.B[:0], codec.Header{
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
			if isHopByHop(name, connection) || isControl(name) || (!head && bytes.EqualFold(name, strContentLength)) {
				continue
			}
			env.AddHeader(name, value)
		}
		frame = env.Finish(up.Body(), h.Mode)
	}
	out.B = codec.Seal(frame, sess.Response, sess.ClientID[:], tag)
}

var errPairReplayed = fmt.Errorf("%w: a request this relay already answered (replayed)", session.ErrPair)

// acceptPairing is the inbound relay's side of pairing (docs/PROTOCOL.md
// §3.2): verify, answer, store the session.
func (s *Server) acceptPairing(ctx *fasthttp.RequestCtx, st *site) {
	now := s.now()
	resp, sess, err := st.secrets.ConsumePairRequest(ctx.Request.Body(), now, s.cfg.SessionLifetime)
	if err == nil && !s.pairSeen.FirstTime(ctx.Request.Body(), now) {
		err = errPairReplayed // answering it again would store a useless session
	}
	if err != nil {
		// Why, for the operator; the peer only learns MTE_PAIR_REJECTED.
		s.log.Info("pairing refused", "remote", ctx.RemoteAddr().String(), "reason", err.Error())
		s.metrics.Pairing(metrics.Inbound, metrics.ResultRefused)
		writeError(ctx, errPairRejected)
		return
	}
	if err := st.store.Put(storeCtx, sess); err != nil {
		s.log.Warn("pairing: store unavailable", "err", err)
		s.metrics.StoreCommandError()
		s.metrics.Pairing(metrics.Inbound, metrics.ResultFailed)
		writeError(ctx, errStoreUnavailable)
		return
	}
	s.metrics.Pairing(metrics.Inbound, metrics.ResultOK)
	s.log.Info("paired", "remote", ctx.RemoteAddr().String(), "suite", sess.Suite.String())
	ctx.Response.Header.Set(hdrRelay, Version)
	ctx.Response.Header.SetContentType(pairContentType)
	ctx.Response.SetBody(resp)
}
