package proxy_test

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// fastUpstream is a fasthttp upstream that allocates nothing per request, so
// that what AllocsPerRun counts (every goroutine of the process) is the
// relays' own cost plus the client's.
func fastUpstream(t testing.TB) string {
	t.Helper()
	return fastUpstreamAnswering(t, make([]byte, 1024))
}

// fastUpstreamAnswering is fastUpstream answering body.
func fastUpstreamAnswering(t testing.TB, body []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}
