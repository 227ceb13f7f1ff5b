package proxy

import (
	"bytes"

	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/link"
	"github.com/valyala/fasthttp"
)

// refusedByRole answers a request that this relay's RELAY_ROLE does not
// serve and reports whether it did. With RoleBoth it costs one comparison.
func (s *Server) refusedByRole(ctx *fasthttp.RequestCtx) bool {
	switch s.cfg.Role {
	case RoleOutbound:
		if controlValue(&ctx.Request.Header, hdrClientID) != nil || bytes.Equal(ctx.Path(), pathPair) ||
			link.IsUpgrade(&ctx.Request.Header) {
			writeError(ctx, errOutboundOnly)
			s.countRefusal(metrics.Inbound, errOutboundOnly)
			return true
		}
	case RoleInbound:
		// With routes set, routeUnsealed refuses what it does not pass
		// through.
		if controlValue(&ctx.Request.Header, hdrClientID) == nil && !s.ownEndpoint(ctx) && !s.anyRoutes {
			s.fail(ctx, s.appSite(ctx.Request.Header.Host()), errInboundOnly)
			s.countRefusal(metrics.Outbound, errInboundOnly)
			return true
		}
	}
	return false
}

// countRefusal counts a request refused before either role's handler ran,
// under the role it asked for.
func (s *Server) countRefusal(role metrics.Role, e *relayError) {
	s.metrics.RequestStarted()
	s.metrics.RequestDone(role, e.outcome, 0)
}

// ownEndpoint reports a request that handle answers itself rather than
// passing to the outbound role: it lists handle's cases before the last.
func (s *Server) ownEndpoint(ctx *fasthttp.RequestCtx) bool {
	path := ctx.Path()
	switch {
	case bytes.Equal(path, pathPair):
		return ctx.IsPost()
	case link.IsUpgrade(&ctx.Request.Header):
		return true
	case bytes.Equal(path, pathRelay):
		return ctx.IsHead() || ctx.IsGet()
	case bytes.Equal(path, pathEcho), bytes.HasPrefix(path, pathEchoMsg), bytes.Equal(path, pathErrors),
		bytes.Equal(path, pathHealth), bytes.Equal(path, pathReady):
		return ctx.IsGet()
	}
	return s.appSite(ctx.Request.Header.Host()).cors.isPreflight(ctx) || ctx.IsOptions() && bytes.Equal(ctx.Request.Header.RequestURI(), []byte("*"))
}
