package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// Relay links (docs/PROTOCOL.md §10) through real relays on loopback.

// send is do for goroutines: an error instead of a fatal.
func send(req *http.Request) (result, error) {
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, body}, err
}

// linkedPair is a pair whose A has opened its links to B: requests from
// here on travel on them.
func linkedPair(t *testing.T, o relaytest.Options) *relaytest.Pair {
	t.Helper()
	p := relaytest.NewPair(t, o)
	deadline := time.Now().Add(5 * time.Second)
	for p.B.Server.LinkConnections() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("B serves %d links after 5s of requests", p.B.Server.LinkConnections())
		}
		if r := do(t, p.Request(t, "GET", "/warm-up", nil)); r.status != 200 {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

// TestLinkOutOfOrder: many requests at once over the links, the upstream
// answering each after a delay that makes later requests finish first;
// every app gets its own answer.
func TestLinkOutOfOrder(t *testing.T) {
	t.Parallel()
	p := linkedPair(t, relaytest.Options{})
	const n = 150
	var order []int
	var mu sync.Mutex
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		i, _ := strconv.Atoi(string(body))
		time.Sleep(time.Duration(n-i) * 2 * time.Millisecond)
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
		w.Header().Set("X-Request", string(body))
		w.Write(body)
	})
	var wg sync.WaitGroup
	start := time.Now()
	defer func() { t.Logf("took %v", time.Since(start)) }()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i)
			r, err := send(p.Request(t, "POST", "/order/"+id, strings.NewReader(id)))
			if err != nil || r.status != 200 || string(r.body) != id || r.header.Get("X-Request") != id {
				t.Errorf("request %s: %v %d %q %q", id, err, r.status, r.body, r.header.Get("X-Request"))
			}
		}()
		time.Sleep(200 * time.Microsecond)
	}
	wg.Wait()
	if p.Upstream.Calls() != n+int64(warmUps(p)) {
		t.Errorf("upstream calls %d", p.Upstream.Calls())
	}
	reordered := 0
	for k := 1; k < len(order); k++ {
		if order[k] < order[k-1] {
			reordered++
		}
	}
	if reordered < n/4 {
		t.Errorf("only %d of %d answers out of order: the test did not exercise reordering", reordered, n)
	}
}

// warmUps counts the warm-up requests linkedPair sent.
func warmUps(p *relaytest.Pair) int {
	n := 0
	for _, r := range p.Upstream.Requests() {
		if r.RequestURI == "/warm-up" {
			n++
		}
	}
	return n
}

// TestLinkRestartMidBurst: B stops (SIGTERM: it answers what its links
// carry, then closes them) and comes back with no sessions while 20
// clients send over links. No app sees an error, and the upstream runs
// every request exactly once: nothing a link carried is lost or run twice.
//
// The requests are PUTs. A request sealed less than a round trip before B
// came back cannot be proven never to have run (docs/PROTOCOL.md §2.3), so
// A resends it only if it is idempotent; with POSTs a few of those would
// be refused as MTE_PEER_LOST_SESSION, which TestRestartUnderLoad covers.
// Counting at the upstream shows that none of them had in fact run.
func TestLinkRestartMidBurst(t *testing.T) {
	t.Parallel()
	p := linkedPair(t, relaytest.Options{})
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	for c := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("burst-%d-%d", c, i)
				sent.Add(1)
				r, err := send(p.Request(t, "PUT", "/x", strings.NewReader(id)))
				if err != nil || r.status != 200 || string(r.body) != id {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %v %d %s", id, err, r.status, r.body))
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	// A restart as a process manager does it: stop, then start a moment
	// later. (Rebinding the port within microseconds would let a request
	// sealed before the stop reach the new B with no failed attempt in
	// between; A could not then prove it never ran, and rightly refuses to
	// resend a POST: TestRestartUnderLoad covers that case.)
	p.B.Stop()
	time.Sleep(50 * time.Millisecond)
	p.B = relaytest.StartRelay(t, p.B.Config, nil, p.B.Addr)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	runs := map[string]int{}
	for _, r := range p.Upstream.Requests() {
		if strings.HasPrefix(string(r.Body), "burst-") {
			runs[string(r.Body)]++
		}
	}
	for id, n := range runs {
		if n != 1 {
			t.Errorf("the upstream ran %s %d times", id, n)
		}
	}
	if int64(len(runs)) != sent.Load() {
		t.Errorf("the upstream ran %d distinct requests of %d sent", len(runs), sent.Load())
	}
	if p.B.Server.LinkConnections() == 0 {
		t.Error("A did not open links to the restarted B")
	}
	t.Logf("%d requests, B restarted in the middle", sent.Load())
}

// TestLinkRefusedByBalancer: between A and B, an HTTP balancer that
// forwards each request on its own and refuses upgrades. A falls back to
// per-request HTTP: every request succeeds, and A asks for a link once,
// not once per request.
func TestLinkRefusedByBalancer(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	lb := startRefusingBalancer(t, p.B.Addr)
	for i := range 50 {
		id := strconv.Itoa(i)
		req := p.Request(t, "POST", "/x", strings.NewReader(id))
		req.Header.Set("x-mte-upstream", "http://"+lb.addr)
		if r := do(t, req); r.status != 200 || string(r.body) != id {
			t.Fatalf("request %d through the balancer: %d %s", i, r.status, r.body)
		}
	}
	if n := lb.upgrades.Load(); n != 1 {
		t.Errorf("A asked the balancer for a link %d times, want 1 (then it waits before asking again)", n)
	}
	if lb.forwarded.Load() < 50 {
		t.Errorf("the balancer forwarded %d requests", lb.forwarded.Load())
	}
	if n := p.B.Server.LinkConnections(); n != 0 {
		t.Errorf("B serves %d links behind a balancer that refuses them", n)
	}
}

// refusingBalancer forwards each HTTP/1.1 request on a new connection to
// its backend and answers 400 to any request that asks for an upgrade, as
// an L7 balancer configured without upgrade support does.
type refusingBalancer struct {
	addr      string
	upgrades  atomic.Int64
	forwarded atomic.Int64
}

func startRefusingBalancer(t *testing.T, backend string) *refusingBalancer {
	lb := &refusingBalancer{}
	lb.addr = rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			if req.Header.Get("Upgrade") != "" {
				lb.upgrades.Add(1)
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				continue
			}
			lb.forwarded.Add(1)
			out, _ := http.NewRequest(req.Method, "http://"+backend+req.URL.RequestURI(), bytes.NewReader(body))
			out.Header = req.Header
			resp, err := http.DefaultTransport.RoundTrip(out)
			if err != nil {
				io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				continue
			}
			resp.Write(c)
			resp.Body.Close()
		}
	})
	return lb
}

// TestLinkPeerStopsReading: the connection a link runs on stops being
// read (a stalled peer or network). Requests on it end at PEER_TIMEOUT
// with 504, A's memory and goroutines stay bounded, the link ends at its
// write deadline, and later requests succeed.
//
// Not parallel: it measures the process's heap.
func TestLinkPeerStopsReading(t *testing.T) {
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) { c.PeerTimeout = time.Second }})
	staller := startStaller(t, p.B.Addr)
	peer := "http://" + staller.addr
	request := func(body string) (result, error) {
		req := p.Request(t, "POST", "/x", strings.NewReader(body))
		req.Header.Set("x-mte-upstream", peer)
		return send(req)
	}
	deadline := time.Now().Add(5 * time.Second)
	for staller.links.Load() < 2 && time.Now().Before(deadline) {
		if r, err := request("warm-up"); err != nil || r.status != 200 {
			t.Fatalf("warm-up: %v %d %s", err, r.status, r.body)
		}
	}
	if staller.links.Load() < 2 {
		t.Fatal("no links through the staller")
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	staller.stall.Store(true)

	big := strings.Repeat("x", 256<<10)
	var wg sync.WaitGroup
	var ok, timedOut atomic.Int64
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := request(big)
			switch {
			case err == nil && r.status == 200 && len(r.body) == len(big):
				ok.Add(1)
			case err == nil && r.status == 504:
				timedOut.Add(1)
			default:
				t.Errorf("%v %d %.80s", err, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	// Loose: uploading 16 MiB to A takes its own time on a busy machine;
	// what matters is that nobody waits on the stalled link for ever.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("requests took %v with a 1s PEER_TIMEOUT", d)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapInuse) - int64(heapBefore); grown > 64<<20 {
		t.Errorf("the heap grew by %d MiB", grown>>20)
	}
	t.Logf("%d answered, %d timed out", ok.Load(), timedOut.Load())
	// A reader and a writer per link, and at most 8 links to a peer.
	if n := linkGoroutines(); n > 2*8 {
		t.Errorf("%d link goroutines", n)
	}
	staller.stall.Store(false)
	// The stalled links end at their write deadline; A carries on.
	waitUntil(t, 5*time.Second, func() bool {
		r, err := request("after")
		return err == nil && r.status == 200
	})
	// Whatever ended left nothing behind: still at most a reader and a
	// writer per link (TestMain checks that nothing at all is left once
	// the relays stop).
	if n := linkGoroutines(); n > 2*8 {
		t.Errorf("%d link goroutines after the stall", n)
	}
}

// linkGoroutines counts the goroutines of A's link connections.
func linkGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "pqrelay/link.(*Conn)") || strings.Contains(g, "pqrelay/link.newConn") {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// staller forwards TCP to a backend; once stall is set, it stops reading
// from A on every connection that became a link, and holds it open.
type staller struct {
	addr  string
	links atomic.Int64
	stall atomic.Bool
}

func startStaller(t *testing.T, backend string) *staller {
	s := &staller{}
	s.addr = rawServer(t, func(a net.Conn) {
		b, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer b.Close()
		linked := make(chan struct{})
		go func() {
			// B to A: watch for the 101 that makes this a link.
			buf := make([]byte, 64<<10)
			seen := false
			for {
				n, err := b.Read(buf)
				if n > 0 {
					if !seen && bytes.Contains(buf[:n], []byte("101 Switching Protocols")) {
						seen = true
						s.links.Add(1)
						close(linked)
					}
					a.Write(buf[:n])
				}
				if err != nil {
					a.Close()
					return
				}
			}
		}()
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-linked:
				for s.stall.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			default:
			}
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := a.Read(buf)
			if n > 0 {
				b.Write(buf[:n])
			}
			if err != nil && !isNetTimeout(err) {
				return
			}
		}
	})
	return s
}

func isNetTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestLinkClosedWithA: relay A's shutdown, once its app requests are done,
// closes its links, and B stops serving them.
func TestLinkClosedWithA(t *testing.T) {
	t.Parallel()
	p := linkedPair(t, relaytest.Options{})
	p.A.Stop()
	waitUntil(t, 5*time.Second, func() bool { return p.B.Server.LinkConnections() == 0 })
}

// TestLinkLargeBodies: bodies of megabytes, in both directions, cross a
// link in fragments while small requests share it, each intact.
func TestLinkLargeBodies(t *testing.T) {
	t.Parallel()
	p := linkedPair(t, relaytest.Options{})
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := 100 + i
			if i%6 == 0 {
				size = 1<<20 + i
			}
			body := make([]byte, size)
			for k := range body {
				body[k] = byte(k*31 + i)
			}
			r, err := send(p.Request(t, "POST", "/large/"+strconv.Itoa(i), bytes.NewReader(body)))
			if err != nil || r.status != 200 || !bytes.Equal(r.body, body) {
				t.Errorf("request %d (%d bytes): %v %d, %d bytes back", i, size, err, r.status, len(r.body))
			}
		}()
	}
	wg.Wait()
	if p.B.Server.LinkConnections() == 0 {
		t.Error("no links")
	}
}
