//go:build !race

package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/valyala/fasthttp"
)

// TestIdleConnectionAllocatedMemory: a keep-alive app connection to relay
// A that sits idle after a relayed 1 KiB request costs the process (heap
// and stacks, after garbage collection) less than idleConnectionBound
// bytes, so that 10,000 such users fit the 128 MiB a relay is given. The
// figure includes the test's own client socket. Built without -race, whose
// bookkeeping would count, and named for make test-alloc, which runs it.
func TestIdleConnectionAllocatedMemory(t *testing.T) {
	up := fastUpstream(t)
	b := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	a := relaytest.StartRelay(t, relaytest.BaseConfig(up), nil, "")
	raw := []byte(fmt.Sprintf("POST /api/items HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n"+
		"x-mte-outbound-token: %s\r\nx-mte-upstream: %s\r\nContent-Length: 1024\r\n\r\n%s",
		relaytest.Token, b.URL, make([]byte, 1024)))
	br := bufio.NewReader(nil)
	var resp fasthttp.Response
	open := func(n int) []net.Conn {
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", a.Addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if _, err := c.Write(raw); err != nil {
				t.Fatal(err)
			}
			br.Reset(c)
			if err := resp.Read(br); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
				t.Fatalf("%v %d %q", err, resp.StatusCode(), resp.Body())
			}
			conns = append(conns, c)
		}
		return conns
	}
	open(200) // pair, open links, let pools and stacks settle
	before := inUse()
	const n = 2000
	conns := open(n)
	perConn := (inUse() - before) / n
	runtime.KeepAlive(conns)
	t.Logf("%d bytes per idle keep-alive connection", perConn)
	if perConn > idleConnectionBound {
		t.Errorf("%d bytes per idle keep-alive connection, want at most %d", perConn, idleConnectionBound)
	}
}

// idleConnectionBound leaves headroom under 128 MiB ÷ 10,000 users (13.4
// KB) for what serves the requests in flight.
const idleConnectionBound = 8 << 10

// inUse is the live heap and the goroutine stacks. Stacks are read before
// collecting: a collection shrinks stacks that grew, and in a relay that
// allocates nothing per request collections are rare, so the stacks as they
// are is what idle connections hold.
func inUse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	stacks := m.StackInuse
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + stacks)
}
