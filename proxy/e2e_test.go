package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
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

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/session"
)

// client talks to relay A like an app would. Redirects are not followed, so
// the test sees what the relay answered.
var client = &http.Client{
	Timeout:       60 * time.Second,
	Transport:     &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

// relayCode is the relay error code of an answer ("" if it is not one).
func relayCode(r result) string { return r.header.Get("x-mte-relay-error") }

func TestReferenceExample(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", "session=abc; Path=/")
		w.Header().Add("Set-Cookie", "theme=dark; Path=/")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"token":"t-123"}`)
	})
	body := `{"email":"jim.halpert@example.com","password":"P@ssw0rd!"}`
	req := p.Request(t, "POST", "/api/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "Cookie_1=value")
	r := do(t, req)

	if r.status != http.StatusCreated || string(r.body) != `{"token":"t-123"}` {
		t.Fatalf("app got %d %q", r.status, r.body)
	}
	if got := r.header.Values("Set-Cookie"); len(got) != 2 || got[0] != "session=abc; Path=/" || got[1] != "theme=dark; Path=/" {
		t.Errorf("Set-Cookie = %q", got)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Upstream") != "yes" {
		t.Errorf("response headers = %v", r.header)
	}
	up := p.Upstream.Last(t)
	if up.Method != "POST" || up.RequestURI != "/api/login" || string(up.Body) != body {
		t.Errorf("upstream got %s %s %q", up.Method, up.RequestURI, up.Body)
	}
	if up.Header.Get("Content-Type") != "application/json" || up.Header.Get("Cookie") != "Cookie_1=value" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	for name := range up.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-mte-") {
			t.Errorf("control header %s reached the upstream", name)
		}
	}
	if want := strings.TrimPrefix(p.Upstream.URL, "http://"); up.Host != want {
		t.Errorf("upstream Host = %q, want %q", up.Host, want)
	}
}

// TestFaithful sends every method, encoded query strings, repeated headers,
// binary and empty bodies through every combination of options.
func TestFaithful(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	binary := make([]byte, 256*4)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []struct {
		method, uri string
		body        []byte
	}{
		{"GET", "/items?q=caf%C3%A9&sort=-date&x=%2F%3F%26%3D&empty=&flag", nil},
		{"HEAD", "/items/42", nil},
		{"POST", "/upload/a%2Fb/c", binary},
		{"PUT", "/items/42", []byte(`{"name":"x"}`)},
		{"PATCH", "/items/42?dry_run=1", []byte(`[{"op":"replace"}]`)},
		{"DELETE", "/items/42", nil},
		{"OPTIONS", "/items", nil},
		{"POST", "/empty", []byte{}},
	}
	options := []map[string]string{
		{},
		{"x-mte-encode-type": "MTE"},
		{"x-mte-encode-type": "mke", "x-mte-encode-headers": "false"},
		{"x-mte-encode-url": "false"},
		{"x-mte-encode-type": "MTE", "x-mte-encode-headers": "FALSE", "x-mte-encode-url": "false"},
		{"x-mte-encode-headers": "x-multi, Content-Type"},
		{"x-mte-encode-type": "MTE", "x-mte-encode-headers": "authorization", "x-mte-encode-url": "false"},
	}
	for _, opt := range options {
		for _, c := range cases {
			req := p.Request(t, c.method, c.uri, bytes.NewReader(c.body))
			for k, v := range opt {
				req.Header.Set(k, v)
			}
			req.Header.Add("X-Multi", "one")
			req.Header.Add("X-Multi", "two, three")
			req.Header.Set("Content-Type", "application/octet-stream")
			r := do(t, req)
			name := fmt.Sprintf("%v %s %s", opt, c.method, c.uri)
			if r.status != 200 {
				t.Fatalf("%s: status %d %s", name, r.status, r.body)
			}
			up := p.Upstream.Last(t)
			if up.Method != c.method || up.RequestURI != c.uri {
				t.Errorf("%s: upstream got %s %s", name, up.Method, up.RequestURI)
			}
			if !bytes.Equal(up.Body, c.body) {
				t.Errorf("%s: upstream body %d bytes, want %d", name, len(up.Body), len(c.body))
			}
			if got := up.Header.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two, three" {
				t.Errorf("%s: repeated header arrived as %q", name, got)
			}
			if c.method == "HEAD" {
				if len(r.body) != 0 {
					t.Errorf("%s: HEAD answered with a body", name)
				}
				continue
			}
			if !bytes.Equal(r.body, c.body) || r.header.Get("X-Echo-Method") != c.method {
				t.Errorf("%s: app got %d bytes, echo method %q", name, len(r.body), r.header.Get("X-Echo-Method"))
			}
		}
	}
}

func TestUpstreamStatusesPassThrough(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		var status int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/status/"), &status)
		if status == 302 || status == 301 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.Header().Set("X-Status", fmt.Sprint(status))
		w.WriteHeader(status)
		if status != 204 && status != 304 {
			fmt.Fprintf(w, "status %d", status)
		}
	})
	for _, status := range []int{200, 201, 204, 301, 302, 304, 400, 401, 404, 418, 500, 502, 503} {
		r := do(t, p.Request(t, "GET", fmt.Sprintf("/status/%d", status), nil))
		if r.status != status || r.header.Get("X-Status") != fmt.Sprint(status) {
			t.Errorf("status %d arrived as %d (%v)", status, r.status, r.header)
		}
		if status == 302 && r.header.Get("Location") != "/elsewhere" {
			t.Errorf("redirect Location = %q", r.header.Get("Location"))
		}
		if status != 204 && status != 304 && string(r.body) != fmt.Sprintf("status %d", status) {
			t.Errorf("status %d body %q", status, r.body)
		}
		if relayCode(r) != "" {
			t.Errorf("status %d looked like a relay error", status)
		}
	}
	// Redirects are passed on, never followed: the upstream saw one request
	// per status, none to /elsewhere.
	for _, rec := range p.Upstream.Requests() {
		if rec.RequestURI == "/elsewhere" {
			t.Fatal("a relay followed a redirect")
		}
	}
}

func TestHeadKeepsContentLength(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "12345")
		w.WriteHeader(200)
	})
	resp, err := client.Do(p.Request(t, "HEAD", "/file", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 12345 {
		t.Fatalf("HEAD: status %d, Content-Length %d; want 200, 12345", resp.StatusCode, resp.ContentLength)
	}
}

func TestBadOptionsNameTheHeader(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	for _, c := range []struct{ header, value, code string }{
		{"x-mte-encode-type", "AES", "MTE_BAD_ENCODE_TYPE"},
		// Anything but true and false is a list of header names: an item
		// that is empty or not a token refuses the request.
		{"x-mte-encode-headers", "yes please", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "authorization,", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", ",authorization", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "authorization,,cookie", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "authorization, ,cookie", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "authorization;q=1", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "x-caf\u00e9", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-headers", "\"cookie\"", "MTE_BAD_ENCODE_HEADERS"},
		{"x-mte-encode-url", "0", "MTE_BAD_ENCODE_URL"},
	} {
		req := p.Request(t, "GET", "/x", nil)
		req.Header.Set(c.header, c.value)
		r := do(t, req)
		var body struct{ Error, Code string }
		json.Unmarshal(r.body, &body)
		if r.status != 400 || body.Code != c.code || !strings.Contains(body.Error, c.header) {
			t.Errorf("%s: %s: got %d %s", c.header, c.value, r.status, r.body)
		}
	}
	if n := p.Upstream.Calls(); n != 0 {
		t.Errorf("upstream called %d times for refused requests", n)
	}
}

func TestAppFacingErrors(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	cases := []struct {
		name   string
		edit   func(*http.Request)
		status int
		code   string
	}{
		{"no token", func(r *http.Request) { r.Header.Del("x-mte-outbound-token") }, 401, "MTE_TOKEN_MISSING"},
		{"wrong token", func(r *http.Request) { r.Header.Set("x-mte-outbound-token", "nope") }, 401, "MTE_TOKEN_INVALID"},
		{"token prefix", func(r *http.Request) { r.Header.Set("x-mte-outbound-token", relaytest.Token[:5]) }, 401, "MTE_TOKEN_INVALID"},
		{"no upstream", func(r *http.Request) { r.Header.Del("x-mte-upstream") }, 400, "MTE_UPSTREAM_MISSING"},
		{"upstream with path", func(r *http.Request) { r.Header.Set("x-mte-upstream", p.PeerURL+"/api") }, 400, "MTE_UPSTREAM_INVALID"},
		{"upstream not a URL", func(r *http.Request) { r.Header.Set("x-mte-upstream", "relay-b:8081") }, 400, "MTE_UPSTREAM_INVALID"},
		{"upstream ftp", func(r *http.Request) { r.Header.Set("x-mte-upstream", "ftp://127.0.0.1") }, 400, "MTE_UPSTREAM_INVALID"},
		{"upstream credentials", func(r *http.Request) { r.Header.Set("x-mte-upstream", "http://u:p@127.0.0.1:1") }, 400, "MTE_UPSTREAM_INVALID"},
	}
	for _, c := range cases {
		req := p.Request(t, "POST", "/x", strings.NewReader("payload"))
		c.edit(req)
		r := do(t, req)
		var body struct{ Error, Code string }
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != c.status || body.Code != c.code || body.Error == "" {
			t.Errorf("%s: got %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if n := p.Upstream.Calls(); n != 0 {
		t.Errorf("upstream called %d times for refused requests", n)
	}
}

func TestAllowedPeers(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) {
		c.AllowedPeers = []string{"http://127.0.0.1:1"} // B is not in it
	}})
	r := do(t, p.Request(t, "GET", "/x", nil))
	if r.status != 403 || relayCode(r) != "MTE_UPSTREAM_NOT_ALLOWED" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	q := relaytest.NewPair(t, relaytest.Options{})
	cfg := q.A.Config
	cfg.AllowedPeers = []string{strings.ToUpper(q.PeerURL) + "/"} // canonical form matches
	a := relaytest.StartRelay(t, cfg, nil, "")
	req := q.Request(t, "GET", "/x", nil)
	req.URL.Host = strings.TrimPrefix(a.URL, "http://")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("allowed peer refused: %d %s", r.status, r.body)
	}
}

func TestRelayEndpoints(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	get := func(path, method string) result {
		req, _ := http.NewRequest(method, p.A.URL+path, nil)
		return do(t, req)
	}
	before := time.Now().UnixMilli()
	var echo struct {
		Echo any   `json:"echo"`
		Time int64 `json:"time"`
	}
	r := get("/api/mte-echo", "GET")
	if err := json.Unmarshal(r.body, &echo); err != nil || echo.Echo != true || echo.Time < before || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("echo: %d %s", r.status, r.body)
	}
	r = get("/api/mte-echo/hello", "GET")
	if err := json.Unmarshal(r.body, &echo); err != nil || echo.Echo != "hello" {
		t.Errorf("echo/hello: %s", r.body)
	}
	r = get("/api/mte-echo/%22quoted%22", "GET")
	if err := json.Unmarshal(r.body, &echo); err != nil || echo.Echo != `"quoted"` {
		t.Errorf("echo with quotes: %s", r.body)
	}
	if r = get("/api/mte-relay", "HEAD"); r.status != 200 || r.header.Get("x-mte-relay") != proxy.Version {
		t.Errorf("HEAD /api/mte-relay: %d %v", r.status, r.header)
	}
	r = get("/api/mte-errors", "GET")
	var table struct {
		Errors []struct {
			Code    string
			Status  int
			Message string
		}
	}
	if err := json.Unmarshal(r.body, &table); err != nil || len(table.Errors) < 20 {
		t.Fatalf("errors table: %v %s", err, r.body)
	}
	seen := map[string]bool{}
	for _, e := range table.Errors {
		if e.Code == "" || e.Status < 400 || e.Message == "" || seen[e.Code] {
			t.Errorf("bad or duplicate row %+v", e)
		}
		seen[e.Code] = true
	}
	if r = get("/api/mte-health", "GET"); r.status != 200 {
		t.Errorf("health: %d %s", r.status, r.body)
	}
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	big := make([]byte, proxy.DefaultMaxBodyBytes)
	rand.Read(big)
	for _, mode := range []string{"MKE", "MTE"} {
		req := p.Request(t, "POST", "/big", bytes.NewReader(big))
		req.Header.Set("x-mte-encode-type", mode)
		r := do(t, req)
		if r.status != 200 || !bytes.Equal(r.body, big) || !bytes.Equal(p.Upstream.Last(t).Body, big) {
			t.Fatalf("%s: 5 MiB round trip: status %d, %d bytes back", mode, r.status, len(r.body))
		}
	}
	calls := p.Upstream.Calls()
	r := do(t, p.Request(t, "POST", "/big", bytes.NewReader(append(big, 0))))
	if r.status != 413 || relayCode(r) != "MTE_BODY_TOO_LARGE" {
		t.Fatalf("5 MiB + 1: got %d %s", r.status, r.body)
	}
	if p.Upstream.Calls() != calls {
		t.Fatal("an oversized body reached the upstream")
	}

	// A smaller configured limit, and a response over it.
	small := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.MaxBodyBytes = 1000 },
		ConfigB: func(c *proxy.Config) { c.MaxBodyBytes = 1000 },
	})
	if r := do(t, small.Request(t, "POST", "/x", bytes.NewReader(make([]byte, 1001)))); r.status != 413 {
		t.Errorf("1001 bytes over a 1000 limit: %d", r.status)
	}
	small.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 5000)) })
	if r := do(t, small.Request(t, "GET", "/x", nil)); r.status != 502 || relayCode(r) != "MTE_UPSTREAM_RESPONSE_TOO_LARGE" {
		t.Errorf("oversized upstream response: %d %s", r.status, r.body)
	}
}

func TestHeadersTooLarge(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	req := p.Request(t, "GET", "/x", nil)
	req.Header.Set("X-Huge", strings.Repeat("a", proxy.DefaultMaxHeaderBytes))
	r := do(t, req)
	if r.status != 431 || relayCode(r) != "MTE_HEADERS_TOO_LARGE" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

// TestConcurrentClients: 200 clients at once, each response must be the
// answer to its own request.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	const clients, perClient = 200, 5
	var wg sync.WaitGroup
	errs := make(chan string, clients*perClient)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				id := fmt.Sprintf("client-%d-req-%d", c, i)
				req := p.Request(t, "POST", "/echo/"+id, strings.NewReader(id))
				if i%2 == 1 {
					req.Header.Set("x-mte-encode-type", "MTE")
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != id || resp.Header.Get("X-Echo-URI") != "/echo/"+id {
					errs <- fmt.Sprintf("%s: got %d %q %q", id, resp.StatusCode, body, resp.Header.Get("X-Echo-URI"))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := p.Upstream.Calls(); n != clients*perClient {
		t.Errorf("upstream saw %d requests, want %d", n, clients*perClient)
	}
}

// TestWireConfidentiality looks at every byte between A and B, over
// per-request HTTP and over a relay link.
func TestWireConfidentiality(t *testing.T) {
	t.Parallel()
	for _, carriage := range []struct {
		name  string
		links bool
	}{{"HTTP", false}, {"link", true}} {
		t.Run(carriage.name, func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{Tap: true, ConfigA: func(c *proxy.Config) { c.NoPeerLinks = !carriage.links }})
			if carriage.links {
				untilLinked(t, p)
			}
			wireConfidentiality(t, p, carriage.links)
		})
	}
}

func wireConfidentiality(t *testing.T, p *relaytest.Pair, linked bool) {
	const (
		path   = "/patients/secret-path-7781"
		query  = "diagnosis=secret-query-5521"
		header = "secret-header-3390"
		body   = `{"ssn":"secret-body-1234"}`
	)
	send := func(opts map[string]string) []byte {
		p.Tap.Reset()
		req := p.Request(t, "POST", path+"?"+query, strings.NewReader(body))
		req.Header.Set("X-Patient", header)
		req.Header.Set("Cookie", "sid="+header)
		for k, v := range opts {
			req.Header.Set(k, v)
		}
		if r := do(t, req); r.status != 200 || string(r.body) != body {
			t.Fatalf("%v: %d %s", opts, r.status, r.body)
		}
		return p.Tap.Sent()
	}
	for _, opts := range []map[string]string{{}, {"x-mte-encode-type": "MTE"}} {
		wire := send(opts)
		if overHTTP := bytes.Contains(bytes.ToLower(wire), []byte("x-mte-client-id")); overHTTP == linked {
			t.Fatalf("%v: over HTTP %v on a pair with links %v: %q", opts, overHTTP, linked, wire)
		}
		if len(wire) < codec.Overhead+len(path+query+header+body) {
			t.Fatalf("%v: the tap saw %d bytes, too few for the frame", opts, len(wire))
		}
		for _, secret := range []string{"secret-path", "secret-query", "secret-header", "secret-body", "patients", "POST /patients"} {
			if bytes.Contains(wire, []byte(secret)) {
				t.Errorf("%v: %q in clear on the wire", opts, secret)
			}
		}
	}
	// What travels in clear for L7 balancers goes per request over HTTP,
	// links or not.
	wire := send(map[string]string{"x-mte-encode-url": "false"})
	if !bytes.Contains(wire, []byte("POST "+path+"?"+query+" HTTP/1.1")) {
		t.Error("x-mte-encode-url: false: path and query not in clear on an HTTP request line")
	}
	if bytes.Contains(wire, []byte("secret-header")) || bytes.Contains(wire, []byte("secret-body")) {
		t.Error("x-mte-encode-url: false leaked headers or body")
	}
	wire = send(map[string]string{"x-mte-encode-headers": "false"})
	if !bytes.Contains(wire, []byte(header)) || !bytes.Contains(bytes.ToLower(wire), []byte("x-mte-client-id")) {
		t.Error("x-mte-encode-headers: false: header not in clear on an HTTP request")
	}
	if bytes.Contains(wire, []byte("secret-body")) || bytes.Contains(wire, []byte("secret-path")) {
		t.Error("x-mte-encode-headers: false leaked the body or path")
	}
}

// untilLinked sends requests through p until one travels on a relay link
// (the tap sees no HTTP relay frame for it), so that what follows does.
func untilLinked(t *testing.T, p *relaytest.Pair) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.Tap.Reset()
		if r := do(t, p.Request(t, "GET", "/warm-up", nil)); r.status != 200 {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
		if !bytes.Contains(bytes.ToLower(p.Tap.Sent()), []byte("x-mte-client-id")) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no request went over a relay link in 5s")
}

// httpOnly makes an outbound relay send every request over per-request
// HTTP, never a relay link.
func httpOnly(c *proxy.Config) { c.NoPeerLinks = true }

// capturedFrame is a relay request read back from the tap.
type capturedFrame struct {
	path     string
	header   http.Header
	clientID string
	body     []byte
}

func lastFrame(t *testing.T, wire []byte) capturedFrame {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(wire))
	var last *capturedFrame
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			break
		}
		body, _ := io.ReadAll(req.Body)
		if id := req.Header.Get("x-mte-client-id"); id != "" {
			last = &capturedFrame{req.URL.RequestURI(), req.Header, id, body}
		}
	}
	if last == nil {
		t.Fatal("no relay frame on the wire")
	}
	return *last
}

func (f capturedFrame) sendTo(t *testing.T, relayURL string, body []byte) result {
	t.Helper()
	req, _ := http.NewRequest("POST", relayURL+f.path, bytes.NewReader(body))
	req.Header.Set("x-mte-client-id", f.clientID)
	req.Header.Set("Content-Type", f.header.Get("Content-Type"))
	return do(t, req)
}

func TestTamperAndReplay(t *testing.T) {
	t.Parallel()
	// Per-request HTTP, so that the frames can be read off the wire: B
	// opens a frame the same way whichever way it came.
	p := relaytest.NewPair(t, relaytest.Options{Tap: true, ConfigA: httpOnly})
	for _, mode := range []string{"MKE", "MTE"} {
		p.Tap.Reset()
		req := p.Request(t, "POST", "/transfer?amount=100", strings.NewReader(`{"to":"alice"}`))
		req.Header.Set("x-mte-encode-type", mode)
		if r := do(t, req); r.status != 200 {
			t.Fatalf("%s: %d %s", mode, r.status, r.body)
		}
		f := lastFrame(t, p.Tap.Sent())
		calls := p.Upstream.Calls()

		// Replay the captured frame as is: refused, the upstream saw it once.
		if r := f.sendTo(t, p.B.URL, f.body); r.status != 400 || relayCode(r) != "MTE_FRAME_REJECTED" {
			t.Fatalf("%s: replay: %d %s", mode, r.status, r.body)
		}
		// Flip every byte of the frame, one at a time.
		for i := range f.body {
			bad := bytes.Clone(f.body)
			bad[i] ^= 0x01 << (i % 8)
			if r := f.sendTo(t, p.B.URL, bad); r.status != 400 || relayCode(r) != "MTE_FRAME_REJECTED" {
				t.Fatalf("%s: byte %d flipped: %d %s", mode, i, r.status, r.body)
			}
		}
		// Truncated and extended frames.
		for _, bad := range [][]byte{f.body[:len(f.body)-1], f.body[:10], nil, append(bytes.Clone(f.body), 0)} {
			if r := f.sendTo(t, p.B.URL, bad); r.status != 400 {
				t.Fatalf("%s: %d-byte frame: %d %s", mode, len(bad), r.status, r.body)
			}
		}
		if n := p.Upstream.Calls(); n != calls {
			t.Fatalf("%s: the upstream was called %d more times by tampered or replayed frames", mode, n-calls)
		}
	}
}

// TestFrameForAnotherClientID: two outbound relays paired with the same B;
// a frame of one sent under the other's client id does not open.
func TestFrameForAnotherClientID(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true})
	do(t, p.Request(t, "GET", "/one", nil))
	first := lastFrame(t, p.Tap.Sent())

	a2 := relaytest.StartRelay(t, p.A.Config, nil, "")
	p.Tap.Reset()
	req := p.Request(t, "GET", "/two", nil)
	req.URL.Host = strings.TrimPrefix(a2.URL, "http://")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("second outbound relay: %d %s", r.status, r.body)
	}
	second := lastFrame(t, p.Tap.Sent())
	if first.clientID == second.clientID {
		t.Fatal("two outbound relays share a client id")
	}
	calls := p.Upstream.Calls()
	swapped := first
	swapped.clientID = second.clientID
	if r := swapped.sendTo(t, p.B.URL, first.body); r.status != 400 || relayCode(r) != "MTE_FRAME_REJECTED" {
		t.Fatalf("frame under another client id: %d %s", r.status, r.body)
	}
	forged := first
	forged.clientID = first.clientID[:40] + strings.Repeat("A", len(first.clientID)-40)
	if r := forged.sendTo(t, p.B.URL, first.body); r.status != 401 || relayCode(r) != "MTE_CLIENT_ID_INVALID" {
		t.Fatalf("forged client id: %d %s", r.status, r.body)
	}
	if p.Upstream.Calls() != calls {
		t.Fatal("upstream called by a misdirected frame")
	}
}

func TestDifferentSecretsCannotPair(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) {
		c.ClientIDSecret = "another-secret-of-enough-length-0123456789"
	}})
	r := do(t, p.Request(t, "GET", "/x", nil))
	if r.status != 502 || relayCode(r) != "MTE_PAIR_REFUSED" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if p.Upstream.Calls() != 0 {
		t.Fatal("upstream called without a pairing")
	}
}

func TestPeerFailures(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) { c.PeerTimeout = 500 * time.Millisecond },
	})
	// Nothing listening.
	dead := freePort(t)
	req := p.Request(t, "GET", "/x", nil)
	req.Header.Set("x-mte-upstream", "http://"+dead)
	if r := do(t, req); r.status != 502 || relayCode(r) != "MTE_PEER_UNREACHABLE" {
		t.Errorf("dead peer: %d %s", r.status, r.body)
	}
	// A peer that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
		}
	}()
	req = p.Request(t, "GET", "/x", nil)
	req.Header.Set("x-mte-upstream", "http://"+ln.Addr().String())
	if r := do(t, req); r.status != 504 || relayCode(r) != "MTE_PEER_TIMEOUT" {
		t.Errorf("silent peer: %d %s", r.status, r.body)
	}
	// x-mte-upstream pointing at the API itself instead of a relay.
	req = p.Request(t, "GET", "/x", nil)
	req.Header.Set("x-mte-upstream", p.Upstream.URL)
	if r := do(t, req); r.status != 502 || relayCode(r) != "MTE_PEER_NOT_RELAY" {
		t.Errorf("peer is not a relay: %d %s", r.status, r.body)
	}
}

// TestSlowUpstream: B gives up on the upstream and seals a 504 back; A,
// with a longer PEER_TIMEOUT, passes it on.
func TestSlowUpstream(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigB: func(c *proxy.Config) { c.UpstreamTimeout = 200 * time.Millisecond },
	})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) })
	for _, method := range []string{"GET", "POST"} {
		if r := do(t, p.Request(t, method, "/slow", nil)); r.status != 504 || relayCode(r) != "MTE_UPSTREAM_TIMEOUT" {
			t.Errorf("%s to a slow upstream: %d %s", method, r.status, r.body)
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) { c.Upstream = "http://" + freePort(t) }})
	if r := do(t, p.Request(t, "POST", "/x", strings.NewReader("x"))); r.status != 502 || relayCode(r) != "MTE_UPSTREAM_UNREACHABLE" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

// TestRestartB: B loses every session; requests sealed after that keep
// succeeding: A pairs anew and resends on B's proof.
func TestRestartB(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			id := fmt.Sprintf("round-%d-%d", round, i)
			r := do(t, p.Request(t, "POST", "/x", strings.NewReader(id)))
			if r.status != 200 || string(r.body) != id {
				t.Fatalf("%s: %d %s", id, r.status, r.body)
			}
		}
		p.RestartB(t)
		// B's proof covers requests sealed after it lost the session by
		// more than its answer takes to travel back (docs/PROTOCOL.md
		// §2.3); a request sealed in the same instant is one whose fate A
		// cannot tell, and this test is not about those.
		time.Sleep(50 * time.Millisecond)
	}
	if n := p.Upstream.Calls(); n != 15 {
		t.Fatalf("upstream saw %d requests, want 15 (none lost, none doubled)", n)
	}
}

// TestRestartUnderLoad restarts B (memory store: every session lost) while
// 20 clients are sending. No request runs twice. Idempotent requests never
// fail: A resends them. A POST in flight as B went away may have run there,
// so A does not resend it and says so (MTE_PEER_LOST_SESSION); any other
// failure is a bug.
func TestRestartUnderLoad(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"PUT", "POST"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			p := relaytest.NewPair(t, relaytest.Options{})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			lost, ok := 0, 0
			for c := 0; c < 20; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := fmt.Sprintf("%d-%d", c, i)
						resp, err := client.Do(p.Request(t, method, "/x", strings.NewReader(id)))
						if err != nil {
							// Only B's listener restarts; A must keep answering.
							mu.Lock()
							failures = append(failures, err.Error())
							mu.Unlock()
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						mu.Lock()
						switch {
						case resp.StatusCode == 200 && string(body) == id:
							ok++
						case method == "POST" && resp.Header.Get("x-mte-relay-error") == "MTE_PEER_LOST_SESSION":
							lost++
						default:
							failures = append(failures, fmt.Sprintf("%s: %d %s", id, resp.StatusCode, body))
						}
						mu.Unlock()
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			p.RestartB(t)
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d app-visible failures, first: %s", len(failures), failures[0])
			}
			seen := map[string]int{}
			for _, r := range p.Upstream.Requests() {
				seen[string(r.Body)]++
			}
			for id, n := range seen {
				if n > 1 && method == "POST" {
					t.Errorf("the upstream ran %s %d times", id, n)
				}
			}
			// At most one request per client can be in flight at the restart.
			if lost > 20 {
				t.Errorf("%d requests lost, more than were in flight", lost)
			}
			t.Logf("%s: %d succeeded, %d refused as possibly run (in flight at the restart)", method, ok, lost)
		})
	}
}

// TestIdleConnectionClosedByPeer: the connections between A and B die
// while idle (a middlebox, or B's idle timeout); the next POST still works.
func TestIdleConnectionClosedByPeer(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true})
	for i := 0; i < 3; i++ {
		if r := do(t, p.Request(t, "POST", "/x", strings.NewReader("before"))); r.status != 200 {
			t.Fatal(r.status)
		}
		p.Tap.CloseConns()
		if r := do(t, p.Request(t, "POST", "/x", strings.NewReader("after"))); r.status != 200 || string(r.body) != "after" {
			t.Fatalf("POST after the peer closed idle connections: %d %s", r.status, r.body)
		}
	}
	if n := p.Upstream.Calls(); n != 6 {
		t.Fatalf("upstream saw %d requests, want 6", n)
	}
}

func TestHeadersAndCORS(t *testing.T) {
	t.Parallel()
	extra := []proxy.Header{{Name: "X-Relay-Env", Value: "test"}}
	p := relaytest.NewPair(t, relaytest.Options{
		ConfigA: func(c *proxy.Config) {
			c.Headers = extra
			c.CORSOrigins = []string{"https://app.example.com"}
			c.CORSMethods = []string{"GET", "POST"}
		},
		ConfigB: func(c *proxy.Config) { c.Headers = extra },
	})
	req := p.Request(t, "GET", "/x", nil)
	req.Header.Set("Origin", "https://app.example.com")
	r := do(t, req)
	if r.header.Get("X-Relay-Env") != "test" || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("response headers: %v", r.header)
	}
	if p.Upstream.Last(t).Header.Get("X-Relay-Env") != "test" {
		t.Error("HEADERS not added to the upstream request")
	}
	pre, _ := http.NewRequest("OPTIONS", p.A.URL+"/x", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "x-mte-outbound-token, content-type")
	r = do(t, pre)
	if r.status != 204 || r.header.Get("Access-Control-Allow-Methods") != "GET, POST" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "x-mte-outbound-token") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	pre.Header.Set("Origin", "https://evil.example.com")
	if r = do(t, pre); r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.status, r.header)
	}
}

// TestSecretsNeverLogged runs a pair at debug level through pairing,
// requests, errors and a restart and searches the logs for every secret.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	debug := func(c *proxy.Config) { c.Debug = true }
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: debug, ConfigB: debug, Tap: true})
	do(t, p.Request(t, "POST", "/x", strings.NewReader("hello")))
	bad := p.Request(t, "POST", "/x", nil)
	bad.Header.Set("x-mte-outbound-token", "wrong-"+relaytest.Token)
	do(t, bad)
	f := lastFrame(t, p.Tap.Sent())
	f.sendTo(t, p.B.URL, f.body) // a replay, logged at debug level
	p.RestartB(t)
	do(t, p.Request(t, "POST", "/x", strings.NewReader("again")))
	logs := p.A.Logs() + p.B.Logs()
	if !strings.Contains(logs, "paired") {
		t.Fatalf("expected pairing logs, got:\n%s", logs)
	}
	for _, secret := range []string{relaytest.Secret, relaytest.Token, f.clientID, f.clientID[:20]} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the logs: %q", secret)
		}
	}
}

// TestGracefulShutdown: Shutdown waits for a request in flight.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	started := make(chan struct{})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	done := make(chan result)
	go func() { done <- do(t, p.Request(t, "GET", "/slow", nil)) }()
	<-started
	p.B.Stop()
	p.A.Stop()
	if r := <-done; r.status != 200 || string(r.body) != "finished" {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestForgedUnknownSessionNotResent: an on-path attacker lets a request
// through to B (the upstream runs it), drops B's sealed answer and returns a
// forged MTE_SESSION_UNKNOWN. A must not resend: the upstream would run the
// request twice. Genuine unknown-session answers carry B's proof and are
// resent (TestRestartB).
func TestForgedUnknownSessionNotResent(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	target, _ := url.Parse(p.B.URL)
	mitm := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Header.Get("x-mte-client-id") == "" {
				return nil // let pairing through
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			body := `{"error":"forged","code":"MTE_SESSION_UNKNOWN"}`
			resp.StatusCode = 401
			resp.Header = http.Header{"X-Mte-Relay-Error": {"MTE_SESSION_UNKNOWN"}, "Content-Type": {"application/json"}}
			resp.Header.Set("X-Mte-Relay-Proof", strings.Repeat("A", 43)) // well-formed, not valid
			resp.Body = io.NopCloser(strings.NewReader(body))
			resp.ContentLength = int64(len(body))
			return nil
		},
	})
	defer mitm.Close()
	req := p.Request(t, "POST", "/transfer", strings.NewReader(`{"amount":100}`))
	req.Header.Set("x-mte-upstream", mitm.URL)
	r := do(t, req)
	if r.status != 502 || relayCode(r) != "MTE_PEER_REFUSED" || r.header.Get("x-mte-peer-error") != "MTE_SESSION_UNKNOWN" {
		t.Fatalf("got %d %v %s", r.status, r.header, r.body)
	}
	if n := p.Upstream.Calls(); n != 1 {
		t.Fatalf("the upstream ran the request %d times", n)
	}
}

// TestPairRequestReplayRefused: a PairRequest captured on the wire and sent
// again is refused, and B stores no second session.
func TestPairRequestReplayRefused(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{Tap: true})
	if r := do(t, p.Request(t, "GET", "/x", nil)); r.status != 200 {
		t.Fatal(r.status)
	}
	var pairBody []byte
	br := bufio.NewReader(bytes.NewReader(p.Tap.Sent()))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			break
		}
		body, _ := io.ReadAll(req.Body)
		if req.URL.Path == "/api/mte-pair" {
			pairBody = body
		}
	}
	if pairBody == nil {
		t.Fatal("no pairing request on the wire")
	}
	sessions := p.B.Store.(*session.MemoryStore).Len()
	resp, err := client.Post(p.B.URL+"/api/mte-pair", "application/x-mte-pair", bytes.NewReader(pairBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("x-mte-relay-error") != "MTE_PAIR_REJECTED" {
		t.Fatalf("replayed PairRequest: %d %v", resp.StatusCode, resp.Header)
	}
	if n := p.B.Store.(*session.MemoryStore).Len(); n != sessions {
		t.Fatalf("B stored %d sessions after the replay, had %d", n, sessions)
	}
}

// TestOptionsAsterisk: OPTIONS * is about the server the app talks to, relay A
// (RFC 9110 §9.3.7); it is answered there, never relayed.
func TestOptionsAsterisk(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	c, err := net.Dial("tcp", p.A.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: a\r\nx-mte-outbound-token: "+relaytest.Token+
		"\r\nx-mte-upstream: "+p.PeerURL+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Allow"), "OPTIONS") {
		t.Fatalf("OPTIONS *: %d %v", resp.StatusCode, resp.Header)
	}
	if p.Upstream.Calls() != 0 {
		t.Fatal("OPTIONS * was relayed")
	}
}

// TestSlowClient: a client that stops sending halfway through its request
// is answered 408 and disconnected after READ_TIMEOUT, and the relay keeps
// serving everyone else meanwhile.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) { c.ReadTimeout = 300 * time.Millisecond }})
	for _, partial := range []string{
		"POST /x HTTP/1.1\r\nHost: a\r\nx-mte-outbound-token: ",                                                                            // stalls in the headers
		"POST /x HTTP/1.1\r\nHost: a\r\nx-mte-outbound-token: " + relaytest.Token + "\r\nContent-Length: 100\r\n\r\nonly part of the body", // stalls in the body
	} {
		c, err := net.Dial("tcp", p.A.Addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, partial)
		if r := do(t, p.Request(t, "GET", "/meanwhile", nil)); r.status != 200 {
			t.Fatalf("a slow client blocked others: %d", r.status)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		answer, _ := io.ReadAll(c)
		c.Close()
		if waited := time.Since(start); waited > 3*time.Second {
			t.Fatalf("slow client kept for %v", waited)
		}
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 408")) || !bytes.Contains(answer, []byte("MTE_CLIENT_TIMEOUT")) {
			t.Fatalf("slow client got %q", answer)
		}
	}
}
