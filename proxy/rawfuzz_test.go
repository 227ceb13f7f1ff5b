package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// peerPlaceholder in a fuzz input stands for the pair's x-mte-upstream
// value, whose port changes from run to run.
const peerPlaceholder = "PEERURL"

// rawFuzzPair is one pair per fuzzing process: starting one per input would
// measure pairing, not the request path.
// A mutated x-mte-upstream must not send anything off this machine, so A
// takes only B (ALLOWED_PEERS).
var rawFuzzPair = sync.OnceValue(func() *relaytest.Pair {
	t := onceT{}
	short := func(c proxy.Config) proxy.Config {
		c.ReadTimeout, c.PeerTimeout, c.UpstreamTimeout = time.Second, 2*time.Second, time.Second
		return c
	}
	up := relaytest.StartUpstream(t)
	b := relaytest.StartRelay(t, short(relaytest.BaseConfig(up.URL)), nil, "")
	cfgA := short(relaytest.BaseConfig(up.URL))
	cfgA.AllowedPeers = []string{b.URL}
	a := relaytest.StartRelay(t, cfgA, nil, "")
	return &relaytest.Pair{Upstream: up, A: a, B: b, PeerURL: b.URL}
})

// FuzzRawRequest drives arbitrary bytes from an app through a real pair
// (A → B → upstream, real TCP on 127.0.0.1). Nothing may panic, not even
// recovered; every answer is either a relay error or the upstream's echo of
// exactly the request fasthttp (relay A's parser) reads from the bytes.
//
// Seeds: testdata/fuzz/FuzzRawRequest, written from rawRequestSeeds.
func FuzzRawRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, input []byte) {
		p := rawFuzzPair()
		input = bytes.ReplaceAll(input, []byte(peerPlaceholder), []byte(p.PeerURL))
		c, err := net.Dial("tcp", p.A.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(input)
		c.(*net.TCPConn).CloseWrite() // the app sent all it will send
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)

		if logs := p.A.Logs() + p.B.Logs(); strings.Contains(logs, "panic") {
			t.Fatalf("a relay panicked on %q:\n%s", input, logs)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		if err != nil {
			return // no answer: A closed the connection on bytes it could not frame
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("x-mte-relay-error") != "" || resp.Header.Get("X-Echo-Method") == "" {
			return // a relay error, or one of the relay's own endpoints
		}
		// The upstream echoed a request: it must be the first one A read.
		var want fasthttp.Request
		if err := want.Read(bufio.NewReader(bytes.NewReader(input))); err != nil {
			t.Fatalf("the upstream got a request from bytes fasthttp does not parse: %q", input)
		}
		if m := resp.Header.Get("X-Echo-Method"); m != string(want.Header.Method()) {
			t.Fatalf("method %q reached the upstream as %q", want.Header.Method(), m)
		}
		// fasthttp's client writes the target from the URI it parsed, which
		// keeps no empty query: "/items?" arrives as "/items" (docs/SECURITY.md).
		if target := bytes.TrimSuffix(want.Header.RequestURI(), []byte("?")); target[0] == '/' && resp.Header.Get("X-Echo-URI") != string(target) {
			t.Fatalf("target %q reached the upstream as %q", target, resp.Header.Get("X-Echo-URI"))
		}
		if !want.Header.IsHead() && !bytes.Equal(body, want.Body()) {
			t.Fatalf("body %q reached the upstream as %q", want.Body(), body)
		}
	})
}

func rawRequestSeeds() []string {
	const ctl = "x-mte-outbound-token: " + relaytest.Token + "\r\nx-mte-upstream: " + peerPlaceholder + "\r\n"
	return []string{
		"GET /x HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"POST /items? HTTP/1.1\r\nHost: a\r\n" + ctl + "Content-Length: 2\r\n\r\n{}",
		"POST /items?id=1 HTTP/1.1\r\nHost: a\r\n" + ctl + "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		strings.Repeat("M", 33) + " /x HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"GET http://h/abs?q HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n" + ctl + "Bad Name: v\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n" + ctl + "X-A: one\r\n two\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\n" + ctl + "Transfer-Encoding: chunked\r\nTrailer: x-mte-upstream\r\n\r\n3\r\nabc\r\n0\r\nx-mte-upstream: http://evil\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\n" + ctl + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n" + ctl + "Cookie: a=\"q\"; =b; json={\"a\":1}\r\n\r\n",
		"GET /../admin HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"HEAD /x HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\nGET /y HTTP/1.1\r\nHost: a\r\n" + ctl + "\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /api/mte-echo/hello HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\nHost: a\n" + strings.ReplaceAll(ctl, "\r\n", "\n") + "\n",
		"POST /x HTTP/1.1\r\nHost: a\r\n" + ctl + "x-mte-encode-type: MTE\r\nx-mte-encode-headers: false\r\nx-mte-encode-url: false\r\nContent-Length: 2\r\n\r\nhi",
		"POST /x HTTP/1.1\r\nHost: a\r\n" + ctl + "x-mte-encode-headers: authorization, COOKIE\r\nAuthorization: Bearer a\r\nCookie: c=1\r\nX-Route: r\r\nContent-Length: 2\r\n\r\nhi",
	}
}

// TestWriteRawRequestSeeds rewrites testdata/fuzz/FuzzRawRequest:
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteRawRequestSeeds ./proxy
func TestWriteRawRequestSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	for i, seed := range rawRequestSeeds() {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", "FuzzRawRequest", fmt.Sprintf("seed-%02d", i)), []byte(seed))
	}
}

// onceT lets the fuzz target's shared pair outlive any one input: its
// servers stop after every test has run (TestMain).
type onceT struct{ testing.TB }

func (onceT) Helper()                         {}
func (onceT) Cleanup(f func())                { sharedCleanups = append(sharedCleanups, f) }
func (onceT) Fatalf(format string, a ...any)  { panic(fmt.Sprintf(format, a...)) }
func (onceT) Fatal(a ...any)                  { panic(fmt.Sprint(a...)) }
func (onceT) Errorf(format string, a ...any)  { panic(fmt.Sprintf(format, a...)) }
func (onceT) Logf(format string, args ...any) {}
