package relaytest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/session"
)

// The fleet of docs/REDIS.md end to end: one outbound relay, two inbound
// replicas sharing a real Redis behind a round-robin balancer. Frames
// replayed to the other replica are refused; a replica stopped under load
// and Redis restarted under load cost at most the requests in flight; no
// request ever reaches the upstream twice.
//
// Behind a per-request HTTP balancer, which refuses upgrades, every request
// goes over HTTP; behind a TCP balancer, A's relay links spread over the
// replicas (docs/PROTOCOL.md §10) and carry the requests.
func TestFleet(t *testing.T) {
	for _, mode := range []struct {
		name              string
		outageLocalWindow bool
	}{
		{"RefuseSharedDuringOutage", false},
		{"OutageLocalWindow", true},
	} {
		for _, lb := range []string{"HTTP", "TCP"} {
			t.Run(mode.name+"/"+lb, func(t *testing.T) {
				t.Parallel()
				testFleet(t, mode.outageLocalWindow, lb == "TCP")
			})
		}
	}
}

func testFleet(t *testing.T, outageLocalWindow, tcp bool) {
	srv := redistest.Start(t)
	up := relaytest.StartUpstream(t)
	secrets, err := session.NewSecrets(relaytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var stores []*session.RedisStore
	newStore := func() *session.RedisStore {
		cfg, err := session.ParseRedisURL(srv.URL() + "?dial_timeout=500ms")
		if err != nil {
			t.Fatal(err)
		}
		cfg.OutageLocalWindow = outageLocalWindow
		st, err := session.NewRedisStore(cfg, secrets, nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
		return st
	}
	healthy := func(st *session.RedisStore) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st.Health() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("store not healthy: %v", st.Health())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cfgB := relaytest.BaseConfig(up.URL)
	b1 := relaytest.StartRelay(t, cfgB, newStore(), "")
	b2 := relaytest.StartRelay(t, cfgB, newStore(), "")
	for _, st := range stores {
		healthy(st)
	}
	var lb *balancer
	if tcp {
		lb = startTCPBalancer(t, b1.Addr, b2.Addr)
	} else {
		lb = startBalancer(t, b1.Addr, b2.Addr)
	}
	a := relaytest.StartRelay(t, relaytest.BaseConfig(up.URL), nil, "")
	client := &http.Client{Timeout: 10 * time.Second}

	var sent atomic.Int64
	send := func() error {
		body := "request-" + strconv.FormatInt(sent.Add(1), 10)
		req, err := http.NewRequest("POST", a.URL+"/api/items", bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		req.Header.Set("x-mte-outbound-token", relaytest.Token)
		req.Header.Set("x-mte-upstream", lb.URL)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != body {
			return fmt.Errorf("status %d, peer error %q, body %.60q", resp.StatusCode, resp.Header.Get("x-mte-peer-error"), got)
		}
		return nil
	}
	// load sends from workers until stop is closed, then reports failures.
	load := func(workers int, stop <-chan struct{}) func() []error {
		var mu sync.Mutex
		var failures []error
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := send(); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}
			})
		}
		return func() []error { wg.Wait(); return failures }
	}
	noDuplicates := func() {
		t.Helper()
		seen := make(map[string]bool)
		for _, r := range up.Requests() {
			if seen[string(r.Body)] {
				t.Fatalf("the upstream ran %q twice", r.Body)
			}
			seen[string(r.Body)] = true
		}
	}

	// Both replicas serve one session.
	for range 40 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	if lb.hits[0].Load() == 0 || lb.hits[1].Load() == 0 {
		t.Fatalf("balancer hits %d/%d: a replica served nothing", lb.hits[0].Load(), lb.hits[1].Load())
	}

	if tcp {
		// The links spread over both replicas, and requests go on them.
		deadline := time.Now().Add(5 * time.Second)
		for b1.Server.LinkConnections() == 0 || b2.Server.LinkConnections() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("links at the replicas: %d and %d", b1.Server.LinkConnections(), b2.Server.LinkConnections())
			}
			if err := send(); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		// A frame accepted by one replica is refused by the other, and by
		// itself, before it reaches the upstream.
		rec := lb.lastRelayed()
		calls := up.Calls()
		for k, backend := range lb.backends {
			resp, err := rec.replay(backend)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == 200 || resp.Header.Get("x-mte-relay-error") == "" {
				t.Fatalf("replay to replica %d (the original went to %d): status %d, relay error %q",
					k, rec.backend, resp.StatusCode, resp.Header.Get("x-mte-relay-error"))
			}
		}
		if up.Calls() != calls {
			t.Fatal("a replayed frame reached the upstream")
		}
	}

	// Replica 1 stops under load (SIGTERM: in-flight requests finish): the
	// app sees no error. The balancer answers 502 for connections the
	// stopping replica resets; the outbound relay resends those frames.
	const workers = 8
	stop := make(chan struct{})
	wait := load(workers, stop)
	time.Sleep(200 * time.Millisecond)
	b1.Stop()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if failures := wait(); len(failures) > 0 {
		t.Fatalf("%d requests failed when a replica stopped: %v", len(failures), failures[0])
	}
	noDuplicates()
	// It comes back on the same address with an empty local layer.
	relaytest.StartRelay(t, cfgB, newStore(), b1.Addr)
	healthy(stores[len(stores)-1])
	for range 20 {
		if err := send(); err != nil {
			t.Fatalf("after the replica came back: %v", err)
		}
	}

	// Redis restarts (empty) under load.
	stop = make(chan struct{})
	wait = load(workers, stop)
	time.Sleep(200 * time.Millisecond)
	srv.Kill()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	for _, st := range stores[1:] { // stores[0] belonged to the stopped replica
		healthy(st)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	failures := wait()
	kinds := make(map[string]int)
	for _, f := range failures {
		kinds[f.Error()]++
	}
	t.Logf("Redis outage: %d of %d requests failed: %v", len(failures), sent.Load(), kinds)
	if outageLocalWindow && len(failures) > 0 {
		t.Fatalf("%d requests failed during a Redis outage with OutageLocalWindow: %v", len(failures), failures[0])
	}
	noDuplicates()
	// Recovered: every request succeeds again.
	for range 40 {
		if err := send(); err != nil {
			t.Fatalf("after Redis came back: %v", err)
		}
	}
	noDuplicates()
}

// balancer is a per-request round-robin HTTP load balancer that skips a
// backend it cannot connect to, as real ones do, and records the relayed
// requests it forwarded so that the test can replay one.
type balancer struct {
	URL      string
	backends []string
	hits     []atomic.Int64
	next     atomic.Uint64
	tr       *http.Transport

	mu   sync.Mutex
	last *recorded
}

type recorded struct {
	backend int
	path    string
	header  http.Header
	body    []byte
}

func startBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{
		URL:      "http://" + ln.Addr().String(),
		backends: backends,
		hits:     make([]atomic.Int64, len(backends)),
		// A fresh connection per request: a stopped backend shows as a
		// refused dial, never as a half-used keep-alive connection.
		tr: &http.Transport{DisableKeepAlives: true},
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); b.tr.CloseIdleConnections() })
	return b
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	start := b.next.Add(1)
	for i := range len(b.backends) {
		k := int((start + uint64(i)) % uint64(len(b.backends)))
		out, _ := http.NewRequest(r.Method, "http://"+b.backends[k]+r.URL.RequestURI(), bytes.NewReader(body))
		out.Header = r.Header.Clone()
		resp, err := b.tr.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			continue // down: try the next one
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b.hits[k].Add(1)
		if r.Header.Get("x-mte-client-id") != "" {
			b.mu.Lock()
			b.last = &recorded{k, r.URL.RequestURI(), r.Header.Clone(), body}
			b.mu.Unlock()
		}
		for name, values := range resp.Header {
			w.Header()[name] = values
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no backend", http.StatusBadGateway)
}

// startTCPBalancer is a round-robin TCP balancer: each connection goes to
// the next backend that accepts it, bytes are copied both ways, and hits
// count connections.
func startTCPBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{URL: "http://" + ln.Addr().String(), backends: backends, hits: make([]atomic.Int64, len(backends))}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		for _, c := range cs {
			conns[c] = true
		}
		return true
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				start := b.next.Add(1)
				for i := range len(b.backends) {
					k := int((start + uint64(i)) % uint64(len(b.backends)))
					up, err := net.Dial("tcp", b.backends[k])
					if err != nil {
						continue // down: try the next one
					}
					defer up.Close()
					if !track(c, up) {
						return
					}
					b.hits[k].Add(1)
					go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
					io.Copy(c, up)
					return
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
	})
	return b
}

func (b *balancer) lastRelayed() *recorded {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// replay sends the recorded request again, byte for byte, to backend.
func (r *recorded) replay(backend string) (*http.Response, error) {
	req, err := http.NewRequest("POST", "http://"+backend+r.path, bytes.NewReader(r.body))
	if err != nil {
		return nil, err
	}
	req.Header = r.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}
