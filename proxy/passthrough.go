package proxy

import (
	"bytes"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// routeUnsealed answers a plain request as the route settings say, when
// either PASS_THROUGH_ROUTES or MTE_ROUTES is set, and reports whether it
// did: passed through to the upstream, refused MTE_ROUTE_NOT_FOUND, or, on
// an inbound-only relay, refused MTE_INBOUND_ONLY as refusedByRole would.
// false leaves the request to the outbound role.
func (s *Server) routeUnsealed(ctx *fasthttp.RequestCtx) bool {
	scratch := bytebufferpool.Get()
	defer bytebufferpool.Put(scratch)
	if route, st := s.routePlain(&ctx.Request.Header, &scratch.B); route != plainOther {
		s.passThrough(ctx, st, route, scratch)
		return true
	}
	if !s.cfg.Role.outbound() {
		s.fail(ctx, s.appSite(ctx.Request.Header.Host()), errInboundOnly)
		s.countRefusal(metrics.Outbound, errInboundOnly)
		return true
	}
	return false
}

// passThrough answers a plain request to st as route says: plainNotFound is
// refused MTE_ROUTE_NOT_FOUND; plainPassThrough is proxied to the upstream
// as an ordinary reverse proxy would, built as forward builds a sealed one
// (the same limits, HEADERS, signing and upstream errors), and the
// upstream's answer, hop-by-hop and x-mte-* fields dropped, goes to ctx in
// clear. Both are counted and logged under their own role. scratch holds
// the upstream URI.
func (s *Server) passThrough(ctx *fasthttp.RequestCtx, st *site, route plainRoute, scratch *bytebufferpool.ByteBuffer) {
	start := time.Now()
	s.metrics.RequestStarted()
	status, bytesOut := 0, 0
	e := errRouteNotFound
	if route == plainPassThrough {
		e = s.passThroughAnswer(ctx, st, scratch, &status, &bytesOut)
	}
	if e != nil {
		writeError(ctx, e)
		status = e.status
	}
	st.addExtraHeaders(ctx)
	d := time.Since(start)
	s.metrics.RequestDone(metrics.PassThrough, e.outcomeOrOK(), d)
	if s.cfg.AccessLog {
		entry := accessEntry{role: "pass_through", method: ctx.Method(), uri: ctx.Request.Header.RequestURI(),
			status: status, requestID: ctx.Request.Header.PeekBytes(strRequestID),
			bytesIn: len(ctx.Request.Body()), bytesOut: bytesOut, duration: d}
		if e != nil {
			entry.code = e.code
		}
		s.logAccess(&entry)
	}
}

func (s *Server) passThroughAnswer(ctx *fasthttp.RequestCtx, st *site, scratch *bytebufferpool.ByteBuffer, status, bytesOut *int) *relayError {
	h := &ctx.Request.Header
	method := h.Method()
	if !codec.ValidMethod(method) {
		return errBadMethod
	}
	target, e := originForm(h.RequestURI())
	if e != nil {
		return e
	}
	body := ctx.Request.Body()
	if e := s.checkUpstreamTarget(len(body), target); e != nil {
		return e
	}
	// The header section as received: fasthttp's parsed view rewrites
	// Cookie and, after a chunked body, holds the trailers.
	raw := h.RawHeaders()
	connection, _ := findField(raw, strConnection)
	var media bodyMedia
	ureq, uresp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(ureq)
	defer fasthttp.ReleaseResponse(uresp)
	s.beginUpstream(st, ureq, scratch, method, target)
	for {
		name, value, rest, ok, bad := nextField(raw)
		if bad {
			return errBadHeader
		}
		if !ok {
			break
		}
		media.add(name, value)
		s.addUpstreamField(st, ureq, name, value, connection)
		raw = rest
	}
	if e := s.requestLimits.checkMedia(media, body, requestJSONErrors, requestXMLErrors); e != nil {
		return e
	}
	if e := s.finishUpstream(st, ureq, method, body); e != nil {
		return e
	}
	if e := s.sendUpstream(st, ureq, uresp); e != nil {
		return e
	}
	*status, *bytesOut = uresp.StatusCode(), len(uresp.Body())
	out := &ctx.Response
	out.SetStatusCode(uresp.StatusCode())
	upConnection := uresp.Header.Peek(fasthttp.HeaderConnection)
	head := ctx.IsHead()
	for name, value := range uresp.Header.All() {
		// Content-Length only matters without a body: a HEAD must see the
		// length a GET would have. x-mte-* fields come from relays only.
		if isHopByHop(name, upConnection) || isControl(name) || (!head && bytes.EqualFold(name, strContentLength)) {
			continue
		}
		out.Header.AddBytesKV(name, value)
	}
	if !head {
		out.SetBody(uresp.Body())
	}
	return nil
}

var strConnection = []byte(fasthttp.HeaderConnection)
