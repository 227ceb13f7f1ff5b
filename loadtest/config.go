package loadtest

import (
	"bytes"
	"crypto/tls"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Defaults applied by Run to zero-valued Config fields.
const (
	DefaultMethod           = "POST"
	DefaultTimeout          = 5 * time.Second
	DefaultProgressInterval = time.Second

	// defaultRequestsPerSecond sizes the safety bound on requests when
	// Config.MaxRequests is zero: far above what one loader reaches on
	// loopback, so it only ever stops a loop whose clock check failed.
	defaultRequestsPerSecond = 5_000_000

	// maxRate keeps the open-loop interval of one connection above a
	// nanosecond, where time.Duration arithmetic stops meaning anything.
	maxRate = 1e8
)

// Config describes one load run against one target: a fixed number of
// connections for a fixed time. The zero value of every optional field is
// usable; Run validates the whole struct once before it opens a connection.
type Config struct {
	// URL is the full target, "http://host:port/path?query" or https.
	// Required.
	URL string

	// Method is the request method; zero value: DefaultMethod (POST).
	Method string

	// Headers are added to every request in order; a name given twice is
	// sent twice. Host, Content-Type and User-Agent given here replace
	// the defaults instead. Content-Length is ignored: the length comes
	// from Body, and a contradicting one would desynchronise the stream.
	Headers []Header

	// Body is sent with every request; nil sends an empty body.
	Body []byte

	// Connections is the number of concurrent workers, each holding one
	// keep-alive connection (in users mode, one user). Required, at
	// least 1.
	Connections int

	// Duration is the length of the measured phase. Required.
	Duration time.Duration

	// Warmup runs the same load on the same connections before the
	// measured phase and counts nothing; zero value: no warm-up.
	Warmup time.Duration

	// Timeout bounds one request from the moment it is written (and the
	// connect before it); zero value: DefaultTimeout. To keep timer
	// updates off the per-request path a request may time out up to
	// Timeout/64 early.
	Timeout time.Duration

	// Rate, in requests per second summed over all connections, selects
	// open-loop mode: request k of a connection is due at a fixed time,
	// and latency is measured from that time even when the connection was
	// still busy, which corrects coordinated omission. Zero value: closed
	// loop, each connection sends its next request when the last answer
	// arrives.
	Rate float64

	// Think selects users mode: every connection is a user who sends a
	// request, reads the whole answer, waits Think (± ThinkJitter, drawn
	// uniformly) and sends again, as people using an app do. Latency
	// counts from the send. Zero value: no think time (closed or open
	// loop). Think and Rate exclude each other.
	Think, ThinkJitter time.Duration

	// Ramp spreads the users' (connections') first requests evenly over
	// this long, so that N users do not arrive in one burst; it comes
	// before the warm-up and is not measured. Zero value: all start at
	// once (open loop staggers its connections over one interval anyway).
	Ramp time.Duration

	// CPUPIDs are processes (the target's, on this machine) whose CPU
	// time during the measured phase Run reads from /proc and reports in
	// Result.CPU; zero value: none. Linux only.
	CPUPIDs []int

	// ExpectSize is the response body length a response needs to count as
	// a success; zero value: any length.
	ExpectSize int

	// Verify, when set, also requires the response body's Checksum to
	// equal VerifyChecksum.
	Verify         bool
	VerifyChecksum uint32

	// TLS is used for https URLs; zero value: system roots, server name
	// from the URL.
	TLS *tls.Config

	// MaxRequests bounds the requests sent by the whole run, warm-up
	// included, as a safety net beside the clock; zero value: 5,000,000
	// per second of Warmup+Duration.
	MaxRequests int64

	// Progress, if set, is called from one goroutine every
	// ProgressInterval (zero value: DefaultProgressInterval) while the
	// run lasts. It must return quickly; it does not slow the workers.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a snapshot passed to Config.Progress.
type Progress struct {
	// Warmup is true during the warm-up phase; Elapsed then counts from
	// the start of the warm-up, and the counters are zero.
	Warmup bool
	// Elapsed is the time spent in the current phase; Total its length.
	Elapsed, Total time.Duration
	// Requests and Failed count measured-phase responses so far:
	// successes, and errors + timeouts + non-2xx + bad bodies.
	Requests, Failed int64
}

// RPS is the success rate of the measured phase so far.
func (p Progress) RPS() float64 {
	if p.Warmup || p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Requests) / p.Elapsed.Seconds()
}

// Validate reports the first problem Run would refuse the Config for,
// without opening a connection; the error wraps ErrBadConfig.
func (c *Config) Validate() error {
	_, err := c.plan()
	return err
}

// plan is a validated Config turned into what the workers need: the
// address to dial and the request already serialized, so the hot loop
// writes the same bytes every time instead of re-encoding a request.
type plan struct {
	addr       string
	tls        *tls.Config // nil for http
	raw        []byte
	method     string
	head       bool // HEAD: responses have no body
	timeout    time.Duration
	slack      time.Duration // deadline update granularity, Timeout/64
	interval   time.Duration // open loop: per-connection send interval
	think      time.Duration // users mode: pause after each answer
	jitter     time.Duration // users mode: think ± jitter
	perWorker  int64
	expectSize int
	verify     bool
	checksum   uint32
}

func badConfig(input, why string) error {
	return &inputError{kind: ErrBadConfig, input: input, why: why}
}

func (c *Config) plan() (*plan, error) {
	p := &plan{
		method:     c.Method,
		timeout:    c.Timeout,
		expectSize: c.ExpectSize,
		verify:     c.Verify,
		checksum:   c.VerifyChecksum,
	}
	if p.method == "" {
		p.method = DefaultMethod
	}
	for i := 0; i < len(p.method); i++ {
		if !isTokenChar(p.method[i]) {
			return nil, badConfig(p.method, "method is not an HTTP token")
		}
	}
	if up := strings.ToUpper(p.method); up != p.method && standardMethod[up] {
		// RFC 9110 §9.1: methods are case-sensitive, so "head" is an
		// unknown method to a server, not HEAD; almost surely a typo.
		return nil, badConfig(p.method, "methods are case-sensitive; did you mean "+up+"?")
	}
	p.head = p.method == "HEAD"
	if p.head && (c.ExpectSize > 0 || c.Verify) {
		return nil, badConfig(p.method, "a HEAD response has no body to check; drop the expected size and checksum")
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	switch {
	case c.Connections < 1:
		return nil, badConfig(strconv.Itoa(c.Connections), "connections must be at least 1")
	case c.Duration <= 0:
		return nil, badConfig(c.Duration.String(), "duration must be positive")
	case c.Warmup < 0:
		return nil, badConfig(c.Warmup.String(), "warm-up must not be negative")
	case p.timeout < 0:
		return nil, badConfig(c.Timeout.String(), "timeout must not be negative")
	case c.Rate < 0 || c.Rate > maxRate || math.IsNaN(c.Rate):
		return nil, badConfig(strconv.FormatFloat(c.Rate, 'g', -1, 64), "rate must be 0 (closed loop) up to 1e8 req/s")
	case c.ExpectSize < 0:
		return nil, badConfig(strconv.Itoa(c.ExpectSize), "expected size must not be negative (0 = any)")
	case c.Think < 0 || c.ThinkJitter < 0:
		return nil, badConfig((c.Think + c.ThinkJitter).String(), "think time and its jitter must not be negative")
	case c.ThinkJitter > c.Think:
		return nil, badConfig(c.ThinkJitter.String(), "think jitter must not exceed the think time")
	case c.Think > 0 && c.Rate > 0:
		return nil, badConfig(c.Think.String(), "think time (users mode) and rate (open loop) exclude each other")
	case c.Ramp < 0:
		return nil, badConfig(c.Ramp.String(), "ramp must not be negative")
	case c.MaxRequests < 0:
		return nil, badConfig(strconv.FormatInt(c.MaxRequests, 10), "max requests must not be negative")
	}
	p.slack = p.timeout / 64
	if c.Rate > 0 {
		p.interval = time.Duration(float64(c.Connections) / c.Rate * float64(time.Second))
		if p.interval <= 0 {
			p.interval = 1
		}
	}
	p.think, p.jitter = c.Think, c.ThinkJitter
	for _, pid := range c.CPUPIDs {
		if pid <= 0 {
			return nil, badConfig(strconv.Itoa(pid), "a process id is a positive number")
		}
	}
	total := c.MaxRequests
	if total == 0 {
		secs := int64((c.Ramp + c.Warmup + c.Duration + time.Second - 1) / time.Second)
		total = secs * defaultRequestsPerSecond
	}
	p.perWorker = (total + int64(c.Connections) - 1) / int64(c.Connections)

	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, badConfig(c.URL, "not a URL")
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		p.tls = c.TLS
		if p.tls == nil {
			p.tls = &tls.Config{}
		}
		if p.tls.ServerName == "" {
			p.tls = p.tls.Clone()
			p.tls.ServerName = u.Hostname()
		}
	default:
		return nil, badConfig(c.URL, "URL must start with http:// or https://")
	}
	if u.Hostname() == "" {
		return nil, badConfig(c.URL, "URL has no host")
	}
	if u.User != nil {
		return nil, badConfig(c.URL, "credentials in the URL are not supported; send an Authorization header")
	}
	p.addr = net.JoinHostPort(u.Hostname(), port)
	p.raw, err = c.serialize(p.method, u)
	if err != nil {
		return nil, badConfig(c.URL, err.Error())
	}
	return p, nil
}

// serialize renders the request once with fasthttp, in origin form
// (RFC 9112 §3.2.1), so every request on the wire is byte-identical.
func (c *Config) serialize(method string, u *url.URL) ([]byte, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.DisableNormalizing()
	req.SetRequestURI(u.String())
	req.Header.SetMethod(method)
	req.Header.SetUserAgent("pqrelay-loadtest")
	if len(c.Body) > 0 || MethodHasBody(method) {
		req.Header.SetContentType("application/octet-stream")
	}
	for _, h := range c.Headers {
		switch {
		case strings.EqualFold(h.Name, "Content-Length"):
			// The length comes from Body; a contradicting header would
			// make the target read the wrong number of bytes.
		case strings.EqualFold(h.Name, "Host"), strings.EqualFold(h.Name, "Content-Type"),
			strings.EqualFold(h.Name, "User-Agent"):
			req.Header.Set(h.Name, h.Value) // replaces the default
		default:
			req.Header.Add(h.Name, h.Value)
		}
	}
	req.SetBodyRaw(c.Body)
	var buf bytes.Buffer
	if _, err := req.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MethodHasBody reports whether requests of method m carry a body by
// convention (POST, PUT, PATCH): the loader sends its default body with
// these only.
func MethodHasBody(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" }

// standardMethod holds the methods of RFC 9110 §9 and PATCH (RFC 5789).
var standardMethod = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}
