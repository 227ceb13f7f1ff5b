package proxy_test

import (
	"io"
	"net"
	"testing"
	"time"

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

// rawServer accepts connections on 127.0.0.1 and hands each to serve in its
// own goroutine: an upstream or peer that misbehaves in exactly the way a
// test needs. It returns the address.
func rawServer(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// rawExchange writes raw to addr and returns everything read back until the
// peer closes or wait passes.
func rawExchange(t testing.TB, addr, raw string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	got, _ := io.ReadAll(c)
	return string(got)
}
