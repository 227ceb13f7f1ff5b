package proxy

import (
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// corsPolicy answers browsers for CORS_ORIGINS. With no origins configured
// it does nothing at all.
type corsPolicy struct {
	anyOrigin bool
	origins   map[string]bool
	methods   []byte
}

func newCORSPolicy(origins, methods []string) corsPolicy {
	c := corsPolicy{origins: map[string]bool{}, methods: []byte(strings.Join(methods, ", "))}
	for _, o := range origins {
		if o == "*" {
			c.anyOrigin = true
		}
		c.origins[strings.TrimSuffix(o, "/")] = true
	}
	return c
}

func (c *corsPolicy) enabled() bool { return len(c.origins) > 0 }

func (c *corsPolicy) allows(origin []byte) bool {
	return len(origin) > 0 && (c.anyOrigin || c.origins[string(origin)])
}

func (c *corsPolicy) isPreflight(ctx *fasthttp.RequestCtx) bool {
	return c.enabled() && ctx.IsOptions() && len(ctx.Request.Header.Peek("Origin")) > 0 &&
		len(ctx.Request.Header.Peek("Access-Control-Request-Method")) > 0
}

func (c *corsPolicy) preflight(ctx *fasthttp.RequestCtx) {
	if !c.allows(ctx.Request.Header.Peek("Origin")) {
		writeError(ctx, errCORSOrigin)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	c.decorate(ctx)
	ctx.Response.Header.SetBytesV("Access-Control-Allow-Methods", c.methods)
	if h := ctx.Request.Header.Peek("Access-Control-Request-Headers"); len(h) > 0 {
		ctx.Response.Header.SetBytesV("Access-Control-Allow-Headers", h)
	}
	ctx.Response.Header.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
}

const corsMaxAge = 600

func (c *corsPolicy) decorate(ctx *fasthttp.RequestCtx) {
	if !c.enabled() {
		return
	}
	if origin := ctx.Request.Header.Peek("Origin"); c.allows(origin) {
		ctx.Response.Header.SetBytesV("Access-Control-Allow-Origin", origin)
		ctx.Response.Header.Add("Vary", "Origin")
	}
}
