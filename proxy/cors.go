package proxy

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/valyala/fasthttp"
)

// corsPolicy answers browsers for CORS_ORIGINS, following the Fetch
// standard's CORS protocol (fetch.spec.whatwg.org, "CORS protocol"). With
// no origins configured it does nothing at all: the upstream's own CORS
// headers pass through. With origins configured the relay's policy is the
// only one: every Access-Control-* header of a relayed response is replaced,
// so an upstream cannot widen it (an Access-Control-Allow-Credentials: true
// of its own would otherwise reach the browser).
type corsPolicy struct {
	enabled bool
	// anyOrigin is CORS_ORIGINS=*: answered with the literal "*", which
	// browsers honour for requests without credentials only.
	anyOrigin bool
	// origins holds the listed origins as browsers serialize them; "null"
	// only if listed.
	origins     map[string]bool
	credentials bool
	methods     []byte
	expose      []byte // Access-Control-Expose-Headers
}

// alwaysExposed are the headers a browser script needs to read a relay
// error (docs/PROTOCOL.md §8).
var alwaysExposed = []string{hdrRelayError, hdrPeerError}

func newCORSPolicy(c Config) corsPolicy {
	p := corsPolicy{
		enabled:     len(c.CORSOrigins) > 0,
		origins:     map[string]bool{},
		credentials: c.CORSCredentials,
		methods:     []byte(strings.Join(c.CORSMethods, ", ")),
		expose:      []byte(strings.Join(append(append([]string(nil), alwaysExposed...), c.CORSExposeHeaders...), ", ")),
	}
	for _, o := range c.CORSOrigins {
		canonical, _ := corsOrigin(o) // Validate has checked it
		if canonical == "*" {
			p.anyOrigin = true
		}
		p.origins[canonical] = true
	}
	return p
}

// CORS header names.
const (
	acAllowOrigin      = "Access-Control-Allow-Origin"
	acAllowCredentials = "Access-Control-Allow-Credentials"
	acAllowMethods     = "Access-Control-Allow-Methods"
	acAllowHeaders     = "Access-Control-Allow-Headers"
	acExposeHeaders    = "Access-Control-Expose-Headers"
	acMaxAge           = "Access-Control-Max-Age"
	acRequestMethod    = "Access-Control-Request-Method"
	acRequestHeaders   = "Access-Control-Request-Headers"
)

var accessControlPrefix = []byte("Access-Control-")

func (c *corsPolicy) allows(origin []byte) bool {
	return len(origin) > 0 && (c.anyOrigin || c.origins[string(origin)])
}

func (c *corsPolicy) isPreflight(ctx *fasthttp.RequestCtx) bool {
	return c.enabled && ctx.IsOptions() && len(ctx.Request.Header.Peek("Origin")) > 0 &&
		len(ctx.Request.Header.Peek(acRequestMethod)) > 0
}

func (c *corsPolicy) preflight(ctx *fasthttp.RequestCtx) {
	if !c.allows(ctx.Request.Header.Peek("Origin")) {
		writeError(ctx, errCORSOrigin)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	c.decorate(ctx)
	ctx.Response.Header.SetBytesV(acAllowMethods, c.methods)
	// Reflected only as the list of field names it must be: anything else
	// did not come from a browser and could inject into the answer.
	if h := ctx.Request.Header.Peek(acRequestHeaders); validTokenList(h) {
		ctx.Response.Header.SetBytesV(acAllowHeaders, h)
	}
	ctx.Response.Header.Set(acMaxAge, strconv.Itoa(corsMaxAge))
}

const corsMaxAge = 600

// decorate replaces whatever CORS headers the response has with the
// policy's answer to the request's Origin.
func (c *corsPolicy) decorate(ctx *fasthttp.RequestCtx) {
	if !c.enabled {
		return
	}
	h := &ctx.Response.Header
	stripAccessControl(h)
	if c.anyOrigin {
		// The same answer for every origin: nothing for caches to vary on.
		h.Set(acAllowOrigin, "*")
		h.SetBytesV(acExposeHeaders, c.expose)
		return
	}
	h.Add("Vary", "Origin")
	origin := ctx.Request.Header.Peek("Origin")
	if !c.allows(origin) {
		return
	}
	h.SetBytesV(acAllowOrigin, origin)
	if c.credentials {
		h.Set(acAllowCredentials, "true")
	}
	h.SetBytesV(acExposeHeaders, c.expose)
}

// stripAccessControl deletes every Access-Control-* header. A response
// rarely has any, so the usual cost is one scan of the header block.
func stripAccessControl(h *fasthttp.ResponseHeader) {
	for {
		var found []byte
		for name := range h.All() {
			if hasPrefixFold(name, accessControlPrefix) {
				found = name
				break
			}
		}
		if found == nil {
			return
		}
		h.DelBytes(found) // copies the name before it deletes
	}
}

func hasPrefixFold(s, prefix []byte) bool {
	return len(s) >= len(prefix) && bytes.EqualFold(s[:len(prefix)], prefix)
}

// validTokenList reports whether b is a comma-separated list of header
// field names (RFC 9110 §5.6.1 list, §5.6.2 tokens), as browsers send in
// Access-Control-Request-Headers, without allocating. An empty list is not.
func validTokenList(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		item := b
		if i := bytes.IndexByte(b, ','); i >= 0 {
			item, b = b[:i], b[i+1:]
			if len(b) == 0 {
				return false // a trailing comma
			}
		} else {
			b = nil
		}
		item = bytes.Trim(item, " \t")
		if len(item) == 0 || !codec.ValidHeaderName(item) {
			return false
		}
	}
	return true
}
