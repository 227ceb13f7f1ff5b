package proxy_test

// Attacks on the relays by hostile apps, peers and upstreams, each through
// real relays on 127.0.0.1. Every test here failed on the relay before the
// hardening it pins down.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// appRequest is a raw HTTP/1.1 request to relay A with a valid token and
// peer; head is the request line, extra the rest of the header section
// (CRLF-terminated lines), body what follows the empty line.
func appRequest(p *relaytest.Pair, head, extra, body string) string {
	return head + "\r\nHost: app\r\nx-mte-outbound-token: " + relaytest.Token +
		"\r\nx-mte-upstream: " + p.PeerURL + "\r\n" + extra + "\r\n" + body
}

// answer parses the first response in raw.
func answer(t *testing.T, raw string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("no HTTP answer in %q: %v", raw, err)
	}
	return resp
}

// TestHostileRequestLines: what the envelope cannot carry, or relay B would
// refuse, is a clear 400 at relay A, never a panic (a 33-character method
// used to kill the process) and never a frame B rejects.
func TestHostileRequestLines(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	for _, c := range []struct {
		name, head, extra, code string
	}{
		{"method of 33 characters", "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM /x HTTP/1.1", "", "MTE_BAD_METHOD"},
		{"method of 300 characters", strings.Repeat("M", 300) + " /x HTTP/1.1", "", "MTE_BAD_METHOD"},
		{"method not a token", "GE(T /x HTTP/1.1", "", "MTE_BAD_REQUEST"}, // refused by the HTTP parser itself
		{"asterisk-form with GET", "GET * HTTP/1.1", "", "MTE_BAD_TARGET"},
		{"authority-form", "CONNECT example.com:443 HTTP/1.1", "", "MTE_BAD_TARGET"},
		{"absolute-form with another scheme", "GET ftp://example.com/x HTTP/1.1", "", "MTE_BAD_TARGET"},
		{"header name with a space", "GET /x HTTP/1.1", "Bad Name: y\r\n", "MTE_BAD_HEADER"},
		{"folded header line", "GET /x HTTP/1.1", "X-A: one\r\n two\r\n", "MTE_BAD_HEADER"},
	} {
		resp := answer(t, rawExchange(t, p.A.Addr, appRequest(p, c.head, c.extra+"Connection: close\r\n", ""), 5*time.Second))
		if resp.StatusCode != 400 || resp.Header.Get("x-mte-relay-error") != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.name, resp.StatusCode, resp.Header.Get("x-mte-relay-error"), c.code)
		}
	}
	if n := p.Upstream.Calls(); n != 0 {
		t.Errorf("the upstream was called %d times", n)
	}
	// Both relays are still alive and serving.
	if r := do(t, p.Request(t, "POST", "/after", strings.NewReader("ok"))); r.status != 200 {
		t.Fatalf("after the hostile requests: %d %s", r.status, r.body)
	}
}

// TestAbsoluteFormTarget: RFC 9112 §3.2.2 has servers accept absolute-form
// targets; the upstream gets the path and query (UPSTREAM picks the host).
func TestAbsoluteFormTarget(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	for target, want := range map[string]string{
		"http://elsewhere.example/a/b?c=1": "/a/b?c=1",
		"HTTPS://elsewhere.example":        "/",
		"http://elsewhere.example?q=1":     "/?q=1",
	} {
		resp := answer(t, rawExchange(t, p.A.Addr, appRequest(p, "GET "+target+" HTTP/1.1", "Connection: close\r\n", ""), 5*time.Second))
		if resp.StatusCode != 200 || p.Upstream.Last(t).RequestURI != want {
			t.Errorf("%s: %d, upstream got %q, want %q", target, resp.StatusCode, p.Upstream.Last(t).RequestURI, want)
		}
	}
}

// TestExpectContinue: A answers the app's Expect: 100-continue itself and
// B sends the upstream the whole body without the expectation, so no
// interim 100 can come back as the upstream's answer.
func TestExpectContinue(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	raw := appRequest(p, "POST /x HTTP/1.1", "Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n", "hello")
	got := rawExchange(t, p.A.Addr, raw, 5*time.Second)
	if !strings.HasSuffix(got, "hello") || !strings.Contains(got, "200 OK") {
		t.Fatalf("got %q", got)
	}
	if e := p.Upstream.Last(t).Header.Get("Expect"); e != "" {
		t.Errorf("the upstream got Expect: %s", e)
	}
}

// TestTrailersCannotSupplyControlHeaders: fasthttp merges a chunked body's
// trailer fields into the header it hands the relay; none of them may act as
// the token, the peer, a client id, or a header for the upstream.
func TestTrailersCannotSupplyControlHeaders(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	chunked := "Transfer-Encoding: chunked\r\nConnection: close\r\n"
	body := "3\r\nabc\r\n0\r\n"

	// The token only in a trailer: refused, also after an empty body
	// (fasthttp then reports a length of 0, not chunked).
	for _, body := range []string{body, "0\r\n"} {
		raw := "POST /x HTTP/1.1\r\nHost: app\r\nx-mte-upstream: " + p.PeerURL + "\r\nTrailer: x-mte-outbound-token\r\n" + chunked +
			"\r\n" + body + "x-mte-outbound-token: " + relaytest.Token + "\r\n\r\n"
		if resp := answer(t, rawExchange(t, p.A.Addr, raw, 5*time.Second)); resp.StatusCode != 401 {
			t.Errorf("token in a trailer after %q: %d, want 401", body, resp.StatusCode)
		}
	}
	// The peer only in a trailer: refused, and nothing is sent anywhere.
	raw := "POST /x HTTP/1.1\r\nHost: app\r\nx-mte-outbound-token: " + relaytest.Token + "\r\n" + chunked +
		"\r\n" + body + "x-mte-upstream: " + p.PeerURL + "\r\n\r\n"
	if resp := answer(t, rawExchange(t, p.A.Addr, raw, 5*time.Second)); resp.StatusCode != 400 || resp.Header.Get("x-mte-relay-error") != "MTE_UPSTREAM_MISSING" {
		t.Errorf("peer in a trailer: %d %s", resp.StatusCode, resp.Header.Get("x-mte-relay-error"))
	}
	// A client id in a trailer does not make a request a relay frame.
	raw = "POST /x HTTP/1.1\r\nHost: b\r\n" + chunked + "\r\n" + body + "x-mte-client-id: " + strings.Repeat("A", 54) + "\r\n\r\n"
	if resp := answer(t, rawExchange(t, p.B.Addr, raw, 5*time.Second)); resp.Header.Get("x-mte-relay-error") != "MTE_TOKEN_MISSING" {
		t.Errorf("client id in a trailer: %d %s, want it treated as an app request", resp.StatusCode, resp.Header.Get("x-mte-relay-error"))
	}
	// A trailer field never reaches the upstream as a header.
	raw = appRequest(p, "POST /x HTTP/1.1", chunked, body+"X-Smuggled: yes\r\n\r\n")
	if resp := answer(t, rawExchange(t, p.A.Addr, raw, 5*time.Second)); resp.StatusCode != 200 {
		t.Fatalf("chunked request with a trailer: %d", resp.StatusCode)
	}
	if got := p.Upstream.Last(t); got.Header.Get("X-Smuggled") != "" || string(got.Body) != "abc" {
		t.Errorf("upstream got trailer %q, body %q", got.Header.Get("X-Smuggled"), got.Body)
	}
}

// TestConflictingFramingClosesConnection: Content-Length with
// Transfer-Encoding (RFC 9112 §6.3): the body is framed by the chunks and the
// connection is closed after the answer, so no second request can be
// smuggled behind the first. An empty chunked body too (fasthttp then
// reports a length of 0, not chunked), and on a pass-through request, whose
// body a smuggled prefix could otherwise fill with the next client's request.
func TestConflictingFramingClosesConnection(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.PassThroughRoutes = "^/public/" }})
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: app\r\nx-mte-outbound-token: " + relaytest.Token + "\r\nx-mte-upstream: " + p.PeerURL + "\r\n\r\n"
	plainSmuggled := "GET /public/smuggled HTTP/1.1\r\nHost: b\r\n\r\n"
	for _, c := range []struct {
		name, addr, raw string
	}{
		{"app request", p.A.Addr, appRequest(p, "POST /x HTTP/1.1", "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"+smuggled)},
		{"app request, empty body", p.A.Addr, appRequest(p, "POST /x HTTP/1.1", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+smuggled)},
		{"pass-through", p.B.Addr, "POST /public/x HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + plainSmuggled},
		{"pass-through, empty body", p.B.Addr, "POST /public/x HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + plainSmuggled},
	} {
		got := rawExchange(t, c.addr, c.raw, 5*time.Second)
		resp := answer(t, got)
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("%s: %d, connection kept open after Content-Length with Transfer-Encoding: %q", c.name, resp.StatusCode, got)
		}
		if strings.Count(got, "HTTP/1.1 ") != 1 {
			t.Errorf("%s: more than one answer on the connection: %q", c.name, got)
		}
	}
	for _, r := range p.Upstream.Requests() {
		if strings.HasSuffix(r.RequestURI, "/smuggled") {
			t.Errorf("the smuggled request %s reached the upstream", r.RequestURI)
		}
	}
}

// TestCookieFidelity: the upstream gets the app's Cookie bytes unchanged,
// and the app the upstream's Set-Cookie.
func TestCookieFidelity(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	cookies := []string{`a="quoted value"; =starts-with-equals; json={"a":1}`, `second=line; flag`}
	setCookies := []string{`s="q"; Path=/; HttpOnly`, `j={"x":[1,2]}; SameSite=Strict`, `s=again; Max-Age=0`}
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range setCookies {
			w.Header().Add("Set-Cookie", c)
		}
	})
	req := p.Request(t, "GET", "/c", nil)
	for _, c := range cookies {
		req.Header.Add("Cookie", c)
	}
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := p.Upstream.Last(t).Header.Values("Cookie"); strings.Join(got, "\n") != strings.Join(cookies, "\n") {
		t.Errorf("upstream got Cookie %q, want %q", got, cookies)
	}
	if got := r.header.Values("Set-Cookie"); strings.Join(got, "\n") != strings.Join(setCookies, "\n") {
		t.Errorf("app got Set-Cookie %q, want %q", got, setCookies)
	}
}

// TestEachRelayEnforcesItsOwnBodyLimit: B refuses a request body over its
// MAX_BODY_BYTES even when A allowed it, before the upstream; A refuses a
// response over its own, with a code that says so rather than "tampered".
func TestEachRelayEnforcesItsOwnBodyLimit(t *testing.T) {
	t.Parallel()
	small, large := 64<<10, 1<<20
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.MaxBodyBytes = large },
		ConfigB: func(c *proxy.Config) { c.MaxBodyBytes = small },
	})
	r := do(t, p.Request(t, "POST", "/up", bytes.NewReader(make([]byte, small+1))))
	if r.status != 413 || relayCode(r) != "MTE_BODY_TOO_LARGE" || p.Upstream.Calls() != 0 {
		t.Errorf("request over B's limit: %d %s, upstream calls %d", r.status, relayCode(r), p.Upstream.Calls())
	}

	q := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.MaxBodyBytes = small },
		ConfigB: func(c *proxy.Config) { c.MaxBodyBytes = 4 * large },
	})
	for _, size := range []int{small + 1, 2 * large} { // within A's frame limit, and beyond it
		q.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, size)) })
		r := do(t, q.Request(t, "GET", "/down", nil))
		if r.status != 502 || relayCode(r) != "MTE_RESPONSE_TOO_LARGE" {
			t.Errorf("response of %d bytes over A's limit: %d %s", size, r.status, r.body)
		}
	}
}

// TestUpstreamResponsesTheAppCanTrust: an upstream cannot speak for the
// relays (x-mte-* fields), an absent Content-Type stays absent, and what is
// not a relayable response is a clear 502, never "tampered".
func TestUpstreamResponsesTheAppCanTrust(t *testing.T) {
	t.Parallel()
	canned := func(resp string) string {
		return rawServer(t, func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, resp)
		})
	}
	for _, c := range []struct {
		name, resp, code string
		check            func(r result) string
	}{
		{"x-mte-* fields", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Mte-Relay-Error: MTE_FAKE\r\nx-mte-peer-error: fake\r\nX-Mte-Relay: evil\r\n\r\nok", "", func(r result) string {
			for k := range r.header {
				if strings.HasPrefix(strings.ToLower(k), "x-mte-") {
					return "the app got " + k
				}
			}
			return ""
		}},
		{"no Content-Type", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", func(r result) string {
			if ct, ok := r.header["Content-Type"]; ok {
				return fmt.Sprintf("the app got Content-Type %q", ct)
			}
			return ""
		}},
		{"101 without an upgrade asked for", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "MTE_UPSTREAM_BAD_RESPONSE", nil},
		{"status 1000", "HTTP/1.1 1000 Big\r\nContent-Length: 0\r\n\r\n", "MTE_UPSTREAM_BAD_RESPONSE", nil},
		{"status 42", "HTTP/1.1 042 Small\r\nContent-Length: 0\r\n\r\n", "MTE_UPSTREAM_BAD_RESPONSE", nil},
		{"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "MTE_UPSTREAM_BAD_RESPONSE", nil},
		{"header name with a space", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nBad Name: x\r\n\r\n", "MTE_UPSTREAM_BAD_RESPONSE", nil},
	} {
		p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(cfg *proxy.Config) { cfg.Upstream = "http://" + canned(c.resp) }})
		r := do(t, p.Request(t, "GET", "/x", nil))
		switch {
		case c.code != "" && (r.status != 502 || relayCode(r) != c.code):
			t.Errorf("%s: %d %s %s, want 502 %s", c.name, r.status, relayCode(r), r.body, c.code)
		case c.code == "" && r.status != 200:
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		case c.check != nil:
			if msg := c.check(r); msg != "" {
				t.Errorf("%s: %s", c.name, msg)
			}
		}
	}
}

// TestDotSegmentsStayInsideBasePath: with UPSTREAM=http://api/base, no
// request reaches the upstream outside /base.
func TestDotSegmentsStayInsideBasePath(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.Upstream += "/base" }})
	for _, path := range []string{"/../admin", "/%2e%2e/admin", "/a/%2E%2e/../admin", "/./x", "/a/..", "/.%2e/admin?x=1"} {
		resp := answer(t, rawExchange(t, p.A.Addr, appRequest(p, "GET "+path+" HTTP/1.1", "Connection: close\r\n", ""), 5*time.Second))
		if resp.StatusCode != 400 || resp.Header.Get("x-mte-relay-error") != "MTE_BAD_TARGET" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("x-mte-relay-error"))
		}
	}
	if n := p.Upstream.Calls(); n != 0 {
		t.Errorf("the upstream was called %d times: %v", n, p.Upstream.Requests())
	}
	// Dots inside a segment are just names.
	for _, path := range []string{"/base.json", "/a/...", "/a/..b/.c", "/v1/x?next=/../y"} {
		if r := do(t, p.Request(t, "GET", path, nil)); r.status != 200 || p.Upstream.Last(t).RequestURI != "/base"+path {
			t.Errorf("%s: %d, upstream got %q", path, r.status, p.Upstream.Last(t).RequestURI)
		}
	}
}

// TestUpstreamRetries: after the upstream drops a connection with a request
// on it, B resends a GET once and never a POST (it may have run).
func TestUpstreamRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	up := rawServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		mu.Lock()
		seen[req.Method]++
		mu.Unlock()
		// Close without answering, as an upstream that restarts does.
	})
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.Upstream = "http://" + up }})
	for _, method := range []string{"GET", "POST"} {
		if r := do(t, p.Request(t, method, "/x", nil)); r.status != 502 || relayCode(r) != "MTE_UPSTREAM_UNREACHABLE" {
			t.Errorf("%s: %d %s", method, r.status, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["GET"] != 2 || seen["POST"] != 1 {
		t.Errorf("upstream saw %v, want GET twice (one retry) and POST once", seen)
	}
}

// TestStuckHandshakes: a peer or upstream that accepts TCP and never speaks
// TLS holds nothing beyond the request's own deadline, and a stuck pairing
// does not hold later requests to that peer beyond theirs.
func TestStuckHandshakes(t *testing.T) {
	t.Parallel()
	silent := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.PeerTimeout = time.Second },
	})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			start := time.Now()
			req := p.Request(t, "POST", "/x", strings.NewReader("x"))
			req.Header.Set("x-mte-upstream", "https://"+silent)
			r := do(t, req)
			if took := time.Since(start); r.status != 504 || relayCode(r) != "MTE_PEER_TIMEOUT" || took > 3*time.Second {
				t.Errorf("request %d to a silent TLS peer: %d %s after %v", i, r.status, r.body, took)
			}
		}()
	}
	wg.Wait()

	q := relaytest.NewPair(t, relaytest.Options{
		ConfigB: func(c *proxy.Config) { c.Upstream = "https://" + silent; c.UpstreamTimeout = time.Second },
	})
	start := time.Now()
	r := do(t, q.Request(t, "GET", "/x", nil))
	if took := time.Since(start); r.status != 504 || relayCode(r) != "MTE_UPSTREAM_TIMEOUT" || took > 5*time.Second {
		t.Errorf("silent TLS upstream: %d %s after %v", r.status, r.body, took)
	}
}

// TestUnauthenticatedBodiesAreNotRead: a request without a valid token (at
// A) or a client id this fleet issued (at B) is refused once its header
// section is in, before its body is read: it cannot make a relay buffer
// megabytes. The answer arrives although the body is never sent.
func TestUnauthenticatedBodiesAreNotRead(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	do(t, p.Request(t, "GET", "/pair-first", nil))
	const big = "Content-Length: 6000000\r\n"
	for _, c := range []struct {
		name, addr, head, code string
	}{
		{"no token", p.A.Addr, "POST /x HTTP/1.1\r\nHost: a\r\n" + big, "MTE_TOKEN_MISSING"},
		{"wrong token", p.A.Addr, "POST /x HTTP/1.1\r\nHost: a\r\nx-mte-outbound-token: guess\r\n" + big, "MTE_TOKEN_INVALID"},
		{"malformed client id", p.B.Addr, "POST /api/mte-relay HTTP/1.1\r\nHost: b\r\nx-mte-client-id: junk\r\n" + big, "MTE_CLIENT_ID_INVALID"},
		{"forged client id", p.B.Addr, "POST /api/mte-relay HTTP/1.1\r\nHost: b\r\nx-mte-client-id: " + strings.Repeat("A", 54) + "\r\n" + big, "MTE_CLIENT_ID_INVALID"},
		{"oversized pairing request", p.B.Addr, "POST /api/mte-pair HTTP/1.1\r\nHost: b\r\n" + big, "MTE_BODY_TOO_LARGE"},
	} {
		start := time.Now()
		got := rawExchange(t, c.addr, c.head+"\r\n", 5*time.Second)
		resp := answer(t, got)
		if resp.Header.Get("x-mte-relay-error") != c.code || time.Since(start) > 2*time.Second {
			t.Errorf("%s: %d %s after %v, want %s at once", c.name, resp.StatusCode, resp.Header.Get("x-mte-relay-error"), time.Since(start), c.code)
		}
	}
}

// TestForgedResendAfterRestart is the attack of a duplicate execution
// through a forged resend: an on-path attacker lets a POST through to B,
// holds B's answer back, waits for B to lose the session (here: a restart),
// replays the frame to the new B to draw a genuine MTE_SESSION_UNKNOWN with
// B's proof, and hands that to A in place of the answer. A must not pair
// anew and resend: the upstream would run the POST twice.
func TestForgedResendAfterRestart(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	target, _ := url.Parse(p.B.URL)
	var once sync.Once
	mitm := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Header.Get("x-mte-client-id") == "" {
				return http.DefaultTransport.RoundTrip(req) // pairing passes
			}
			frame, _ := io.ReadAll(req.Body)
			replay := func() (*http.Response, error) {
				r := req.Clone(req.Context())
				r.Body = io.NopCloser(bytes.NewReader(frame))
				r.ContentLength = int64(len(frame))
				return http.DefaultTransport.RoundTrip(r)
			}
			resp, err := replay()
			if err != nil {
				return nil, err
			}
			attacked := false
			once.Do(func() { attacked = true })
			if !attacked {
				return resp, nil
			}
			io.Copy(io.Discard, resp.Body) // B ran it; its answer is held back
			resp.Body.Close()
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			p.RestartB(t)
			time.Sleep(100 * time.Millisecond) // as long as the attacker likes
			return replay()                    // MTE_SESSION_UNKNOWN, with a valid proof
		}),
	})
	defer mitm.Close()
	req := p.Request(t, "POST", "/transfer", strings.NewReader(`{"amount":100}`))
	req.Header.Set("x-mte-upstream", mitm.URL)
	r := do(t, req)
	if r.status != 502 || relayCode(r) != "MTE_PEER_LOST_SESSION" {
		t.Errorf("got %d %s %s, want 502 MTE_PEER_LOST_SESSION", r.status, relayCode(r), r.body)
	}
	if n := p.Upstream.Calls(); n != 1 {
		t.Fatalf("the upstream ran the POST %d times", n)
	}
	// The same attack on an idempotent request is answered by a resend: it
	// may run twice, which RFC 9110 §9.2.2 says has the effect of once.
	once = sync.Once{}
	req = p.Request(t, "PUT", "/item", strings.NewReader(`{"v":1}`))
	req.Header.Set("x-mte-upstream", mitm.URL)
	if r := do(t, req); r.status != 200 {
		t.Errorf("PUT: %d %s", r.status, r.body)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRefusalsAreLogged: an operator learns why B refused a pairing and why
// A answers 502, once, without a secret in the line.
func TestRefusalsAreLogged(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) {
		c.ClientIDSecret = "another-client-id-secret-0123456789abcdef"
	}})
	do(t, p.Request(t, "GET", "/x", nil))
	if logs := p.B.Logs(); !strings.Contains(logs, "pairing refused") || !strings.Contains(logs, "CLIENT_ID_SECRET differ") {
		t.Errorf("B's log does not say why it refused:\n%s", logs)
	}
	dead := freePort(t)
	for range 5 {
		req := p.Request(t, "GET", "/x", nil)
		req.Header.Set("x-mte-upstream", "http://"+dead)
		do(t, req)
	}
	if n := strings.Count(p.A.Logs(), "peer relay unreachable"); n != 1 {
		t.Errorf("A logged an unreachable peer %d times for 5 requests, want 1:\n%s", n, p.A.Logs())
	}
	for _, secret := range []string{relaytest.Secret, relaytest.Token, "another-client-id-secret"} {
		if strings.Contains(p.A.Logs()+p.B.Logs(), secret) {
			t.Errorf("a secret is in the logs: %q", secret)
		}
	}
}
