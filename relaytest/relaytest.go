// Package relaytest starts real pqrelay pairs in-process for tests: an
// upstream API (net/http, a different HTTP stack from the relays'), relay B
// in front of it, relay A in front of B, each on its own free port on
// 127.0.0.1, optionally with a TCP tap between A and B that records every
// byte on the wire.
//
// It is test support: it never binds anything but loopback and every server
// it starts stops in t.Cleanup.
package relaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/session"
)

// Secret and Token are the pair's CLIENT_ID_SECRET and OUTBOUND_TOKEN.
const (
	Secret = "relaytest-client-id-secret-0123456789abcdef"
	Token  = "relaytest-outbound-token"
)

// Recorded is one request as the upstream received it.
type Recorded struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Body       []byte
}

// Upstream is the API behind relay B. By default it answers 200 with the
// request body, the request's Content-Type and X-Echo-Method / X-Echo-URI.
type Upstream struct {
	URL   string
	Addr  string
	calls atomic.Int64
	srv   *http.Server

	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []Recorded
}

// StartUpstream starts an upstream on a free loopback port.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	return StartTLSUpstream(t, nil)
}

// StartTLSUpstream starts an upstream serving HTTPS with cfg (plain HTTP
// when cfg is nil) on a free loopback port.
func StartTLSUpstream(t testing.TB, cfg *tls.Config) *Upstream {
	t.Helper()
	u := &Upstream{}
	ln := listen(t)
	u.Addr = ln.Addr().String()
	u.URL = "http://" + u.Addr
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
		u.URL = "https://" + u.Addr
	}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes are what TLS tests make
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.calls.Add(1)
	u.mu.Lock()
	u.requests = append(u.requests, Recorded{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body})
	h := u.handler
	u.mu.Unlock()
	if h != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("X-Echo-Method", r.Method)
	w.Header().Set("X-Echo-URI", r.RequestURI)
	w.Write(body)
}

// Handle replaces the default answer; the request is still recorded.
func (u *Upstream) Handle(h http.HandlerFunc) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// Calls is how many requests the upstream has received.
func (u *Upstream) Calls() int64 { return u.calls.Load() }

// Requests returns the requests received so far.
func (u *Upstream) Requests() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Recorded(nil), u.requests...)
}

// Last returns the last request received; it fails the test if none was.
func (u *Upstream) Last(t testing.TB) Recorded {
	t.Helper()
	rs := u.Requests()
	if len(rs) == 0 {
		t.Fatal("upstream received no request")
	}
	return rs[len(rs)-1]
}

// Relay is one running relay.
type Relay struct {
	URL    string // http://127.0.0.1:port, or https:// with Config.TLS.Listener
	Addr   string
	Config proxy.Config
	// Store is the store of the relay's one site without DOMAIN_MAP; with
	// DOMAIN_MAP, Stores has each entry's by its host.
	Store  session.Store
	Stores map[string]session.Store
	Server *proxy.Server
	logs   *logBuffer
	t      testing.TB
	done   chan struct{}
}

// StartRelay starts a relay with cfg on a free port (or on addr, when not
// empty) with a fresh memory store unless store is given. With
// cfg.Domains, each entry gets a fresh memory store.
func StartRelay(t testing.TB, cfg proxy.Config, store session.Store, addr string) *Relay {
	t.Helper()
	return StartRelayStores(t, cfg, func(namespace string, _ *session.Secrets) (session.Store, error) {
		if namespace == "" && store != nil {
			return store, nil
		}
		return session.NewMemoryStore(0), nil
	}, addr)
}

// StartRelayStores is StartRelay with each site's store from open.
func StartRelayStores(t testing.TB, cfg proxy.Config, open proxy.StoreOpener, addr string) *Relay {
	t.Helper()
	r := &Relay{Config: cfg, Stores: map[string]session.Store{}, t: t, logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var mu sync.Mutex // open runs in New, before the relay serves
	srv, err := proxy.New(cfg, func(namespace string, secrets *session.Secrets) (session.Store, error) {
		st, err := open(namespace, secrets)
		if err == nil {
			mu.Lock()
			r.Stores[namespace] = st
			mu.Unlock()
		}
		return st, err
	}, log)
	if err != nil {
		t.Fatalf("relaytest: proxy.New: %v", err)
	}
	r.Store = r.Stores[""]
	var ln net.Listener
	if addr == "" {
		ln = listen(t)
	} else {
		ln = listenOn(t, addr)
	}
	scheme := "http://"
	if cfg.TLS != nil && cfg.TLS.Listener != nil {
		scheme = "https://"
	}
	r.Server, r.Addr, r.URL = srv, ln.Addr().String(), scheme+ln.Addr().String()
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		srv.Serve(ln)
	}()
	t.Cleanup(r.Stop)
	return r
}

// Stop shuts the relay down, waiting for in-flight requests, and closes its
// stores. Stopping twice is harmless.
func (r *Relay) Stop() {
	select {
	case <-r.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Server.Shutdown(ctx)
	<-r.done
	r.Server.Close()
}

// ServeAlso serves the relay on a further listener at addr (a loopback
// address such as 127.0.0.2:0), so that peers reach it under another Host,
// and returns that listener's URL. Stop closes it with the others.
func (r *Relay) ServeAlso(t testing.TB, addr string) string {
	t.Helper()
	ln := listenOn(t, addr)
	go r.Server.Serve(ln)
	return strings.TrimSuffix(r.URL, r.Addr) + ln.Addr().String()
}

// Logs returns everything the relay logged (at debug level).
func (r *Relay) Logs() string { return r.logs.String() }

// Pair is an upstream, relay B in front of it and relay A in front of B.
type Pair struct {
	Upstream *Upstream
	A, B     *Relay
	// PeerURL is what the app sends in x-mte-upstream: B's URL, or the
	// tap's when the pair has one.
	PeerURL string
	Tap     *Tap
}

// Options changes how NewPair builds the pair.
type Options struct {
	ConfigA, ConfigB func(*proxy.Config) // edit a relay's config
	StoreB           session.Store       // B's store; default a memory store
	Tap              bool                // put a Tap between A and B
	// TLSA and TLSB are the relays' TLS (proxy.Config.TLS): with
	// TLSB.Listener, B serves HTTPS and A reaches it with TLSA.Peer.
	TLSA, TLSB *tlsconf.Set
	// UpstreamTLS, when set, makes the upstream serve HTTPS with it.
	UpstreamTLS *tls.Config
}

// BaseConfig is the config both relays start from.
func BaseConfig(upstream string) proxy.Config {
	return proxy.Config{Upstream: upstream, ClientIDSecret: Secret, OutboundToken: Token}
}

// NewPair starts an upstream and a relay pair.
func NewPair(t testing.TB, o Options) *Pair {
	t.Helper()
	p := &Pair{Upstream: StartTLSUpstream(t, o.UpstreamTLS)}
	cfgB := BaseConfig(p.Upstream.URL)
	cfgB.TLS = o.TLSB
	if o.ConfigB != nil {
		o.ConfigB(&cfgB)
	}
	p.B = StartRelay(t, cfgB, o.StoreB, "")
	p.PeerURL = p.B.URL
	if o.Tap {
		p.Tap = StartTap(t, p.B.Addr)
		p.PeerURL = strings.TrimSuffix(p.B.URL, p.B.Addr) + p.Tap.Addr
	}
	cfgA := BaseConfig(p.Upstream.URL) // unused in the outbound role
	cfgA.TLS = o.TLSA
	if o.ConfigA != nil {
		o.ConfigA(&cfgA)
	}
	p.A = StartRelay(t, cfgA, nil, "")
	return p
}

// RestartB stops relay B and starts a new one on the same port with an
// empty memory store: every session B knew is gone.
func (p *Pair) RestartB(t testing.TB) {
	t.Helper()
	p.B.Stop()
	p.B = StartRelay(t, p.B.Config, nil, p.B.Addr)
}

// Request returns an app request to relay A with the control headers set.
func (p *Pair) Request(t testing.TB, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, p.A.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-mte-outbound-token", Token)
	req.Header.Set("x-mte-upstream", p.PeerURL)
	return req
}

func listen(t testing.TB) net.Listener { return listenOn(t, "127.0.0.1:0") }

func listenOn(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	// A port just released may linger briefly; retry for a moment.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("relaytest: listen %s: %v", addr, err)
	return nil
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
