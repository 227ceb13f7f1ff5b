package proxy

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// hdrRequestID names one request across the app, both relays and the
// upstream. It is an ordinary header: relay A seals the app's with the
// others, or adds its own in the envelope, relay B passes it on to the
// upstream, and A returns it to the app.
const hdrRequestID = "x-request-id"

var strRequestID = []byte(hdrRequestID)

// maxRequestIDLen bounds an id taken from the app; a longer one, or one
// with bytes outside visible ASCII, is replaced by a generated one, so that
// logs never carry what an app did not mean as an id.
const maxRequestIDLen = 128

// requestIDBufs hold a request's id while the outbound relay works on it. A
// pool rather than the stack: fasthttp's header setters keep their argument
// as far as escape analysis can tell, which would move a stack buffer to the
// heap on every request.
var requestIDBufs = sync.Pool{New: func() any { return new([maxRequestIDLen]byte) }}

// requestIDs generates ids: a random prefix per process and a counter, 33
// characters, unique without a random read per request.
type requestIDs struct {
	prefix [8]byte
	next   atomic.Uint64
}

func (g *requestIDs) init() {
	var b [8]byte
	for i := range 2 {
		r := randomUint32()
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(r>>24), byte(r>>16), byte(r>>8), byte(r)
	}
	g.prefix = b
}

// appendNew appends a new id to dst.
func (g *requestIDs) appendNew(dst []byte) []byte {
	dst = hex.AppendEncode(dst, g.prefix[:])
	dst = append(dst, '-')
	n := g.next.Add(1)
	var c [8]byte
	for i := range c {
		c[7-i] = byte(n >> (8 * i))
	}
	return hex.AppendEncode(dst, c[:])
}

// validRequestID reports whether an app's id is kept.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// takeRequestID copies the app's x-request-id into dst, or generates one;
// generated reports the latter: then sealRequest puts it in the envelope in
// place of whatever the app sent under that name.
func (s *Server) takeRequestID(h *fasthttp.RequestHeader, dst []byte) (id []byte, generated bool) {
	if id := h.Peek(hdrRequestID); validRequestID(id) {
		return append(dst, id...), false
	}
	return s.requestIDs.appendNew(dst), true
}

// accessEntry is one line of the access log (ACCESS_LOG=true). Paths are
// logged without their query, which is where APIs carry keys; bodies and
// header values never are, the request id aside.
type accessEntry struct {
	role      string
	method    []byte
	uri       []byte // path and query; only the path is logged
	status    int
	code      string // the relay error answered, "" for none
	requestID []byte
	bytesIn   int // request body
	bytesOut  int // response body
	duration  time.Duration
}

func (s *Server) logAccess(e *accessEntry) {
	path := e.uri
	for i, c := range path {
		if c == '?' {
			path = path[:i]
			break
		}
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("role", e.role),
		slog.String("method", string(e.method)),
		slog.String("path", string(path)),
		slog.Int("status", e.status),
		slog.String("code", e.code),
		slog.Duration("duration", e.duration),
		slog.Int("bytes_in", e.bytesIn),
		slog.Int("bytes_out", e.bytesOut),
		slog.String("request_id", string(e.requestID)),
	)
}
