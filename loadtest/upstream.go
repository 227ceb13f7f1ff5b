package loadtest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// upstreamMaxRequestBody bounds what the upstream buffers per request: the
// loader never sends more than MaxSize, and a relay adds framing on top.
const upstreamMaxRequestBody = MaxSize + 1<<20

// upstreamShutdownGrace is how long Close waits for requests in flight (one
// delay's worth at most) before it stops waiting.
const upstreamShutdownGrace = 5 * time.Second

// Upstream is the bundled control API: a fasthttp server that answers every
// request, whatever its method and path, with 200 and the same Body(size),
// after reading the request body in full and sleeping the configured delay.
// It stands in for a real API so that control and relay runs measure the
// relay and nothing else.
type Upstream struct {
	srv      *fasthttp.Server
	ln       net.Listener
	body     []byte
	checksum uint32
	served   chan error
}

// StartUpstream listens on addr ("127.0.0.1:9000"; port 0 picks a free port)
// and serves in the background until Close. size is the response body
// length; delay (zero for none) is slept before each answer to model an API
// that does work. Pass a loopback address unless the server is meant to be
// reached from elsewhere.
func StartUpstream(addr string, size int, delay time.Duration) (*Upstream, error) {
	if size < 0 || size > MaxSize {
		return nil, &inputError{kind: ErrBadConfig, input: strconv.Itoa(size), why: "upstream size must be 0..256MiB"}
	}
	if delay < 0 {
		return nil, &inputError{kind: ErrBadConfig, input: delay.String(), why: "upstream delay must not be negative"}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	u := &Upstream{ln: ln, body: Body(size), served: make(chan error, 1)}
	u.checksum = Checksum(u.body)
	u.srv = &fasthttp.Server{
		Handler:            u.handler(delay),
		Name:               "pqrelay-loadtest-upstream",
		MaxRequestBodySize: upstreamMaxRequestBody,
		// Relays forward sealed headers; give them room beyond the 4 KiB
		// default so a long token is not mistaken for a relay failure.
		ReadBufferSize: 16 << 10,
		// Idle keep-alive connections are closed by Close via Shutdown;
		// the timeout only bounds connections a client abandoned.
		IdleTimeout:     time.Minute,
		CloseOnShutdown: true,
		// A loader closes connections mid-request whenever a run ends;
		// fasthttp would log each as an error and drown real output.
		Logger:                quietLogger{},
		NoDefaultDate:         true,
		NoDefaultServerHeader: true,
	}
	go func() { u.served <- u.srv.Serve(ln) }()
	return u, nil
}

func (u *Upstream) handler(delay time.Duration) fasthttp.RequestHandler {
	body := u.body
	return func(ctx *fasthttp.RequestCtx) {
		// fasthttp has read the whole request body before calling the
		// handler (StreamRequestBody is off), which is what a real API
		// does before it answers; the bytes themselves are not needed.
		if delay > 0 {
			time.Sleep(delay)
		}
		ctx.Response.Header.SetContentTypeBytes(contentTypeOctet)
		// SetBodyRaw shares the immutable body instead of copying it
		// into every response.
		ctx.Response.SetBodyRaw(body)
	}
}

var contentTypeOctet = []byte("application/octet-stream")

// quietLogger discards fasthttp's per-connection error log.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

var _ fasthttp.Logger = quietLogger{}

// Addr is the host:port the upstream listens on.
func (u *Upstream) Addr() string { return u.ln.Addr().String() }

// URL is "http://" + Addr, the base URL to pass as a target.
func (u *Upstream) URL() string { return "http://" + u.Addr() }

// Size is the length of every response body.
func (u *Upstream) Size() int { return len(u.body) }

// Checksum is the CRC-32C of every response body.
func (u *Upstream) Checksum() uint32 { return u.checksum }

// Close stops accepting, lets requests in flight finish (up to a few
// seconds), closes idle keep-alive connections and waits for the server
// goroutine. It is safe to call once.
func (u *Upstream) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), upstreamShutdownGrace)
	defer cancel()
	err := u.srv.ShutdownWithContext(ctx)
	if serr := <-u.served; serr != nil && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
