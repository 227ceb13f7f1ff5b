package link

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawDialer dials a test server without the upgrade and counts dials.
type rawDialer struct {
	addr  string
	cfg   ClientConfig
	dials atomic.Int32
	err   error
}

func (d *rawDialer) dial() (*Conn, error) {
	d.dials.Add(1)
	if d.err != nil {
		return nil, d.err
	}
	nc, err := net.Dial("tcp", d.addr)
	if err != nil {
		return nil, err
	}
	return newConn(nc, bufio.NewReaderSize(nc, readBufferSize), d.cfg), nil
}

func closePool(t testing.TB, p *Pool) {
	t.Cleanup(func() {
		for _, c := range *p.conns.Load() {
			c.Abort()
			<-c.Done()
		}
	})
}

// startHoldingServer starts a link server that echoes each request, holding
// the ones that say "hold" until unblock (also called at cleanup).
func startHoldingServer(t *testing.T) (srv *testServer, unblock func()) {
	release := make(chan struct{})
	srv = startServer(t, &Server{}, func(ex *Exchange) {
		if string(ex.Request()) == "hold" {
			<-release
		}
		echo(ex)
	})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	return srv, unblock
}

// TestPoolGrows: no request waits for a dial (ErrNoLink until the first
// connection is up), the set opens MinConns, and more while the least busy
// connection is saturated, up to MaxConns.
func TestPoolGrows(t *testing.T) {
	t.Parallel()
	srv, unblock := startHoldingServer(t)
	d := &rawDialer{addr: srv.addr, cfg: ClientConfig{MaxInFlight: 4}}
	p := NewPool(d.dial, PoolConfig{MinConns: 2, MaxConns: 3, Saturated: 2})
	closePool(t, p)
	if _, err := p.RoundTrip(1, []byte("x"), time.Now().Add(time.Second)); err != ErrNoLink {
		t.Fatalf("first request: %v, want ErrNoLink while the first dial runs", err)
	}
	id := uint64(2)
	waitFor(t, func() bool {
		id++
		got, err := roundTrip(p, id, []byte("x"), time.Second)
		return err == nil && string(got) == "x" && p.Len() == 2
	})

	var wg sync.WaitGroup
	var held atomic.Int32
	for range 40 {
		id++
		id := id
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := roundTrip(p, id, []byte("hold"), 10*time.Second); err == nil {
				held.Add(1)
			}
		}()
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, func() bool { return p.Len() == 3 })
	unblock()
	wg.Wait()
	if held.Load() == 0 || held.Load() > 3*4 {
		t.Errorf("%d held requests answered; want 1 to %d (the rest were ErrNoLink)", held.Load(), 3*4)
	}
	if n := d.dials.Load(); n != 3 {
		t.Errorf("%d dials for 3 connections", n)
	}
}

// TestPoolSurplusIdlesOut: after a burst has opened more than MinConns
// connections, a load that saturates none of the first MinConns stays on
// them, so the surplus goes idle and closes, and no request fails.
func TestPoolSurplusIdlesOut(t *testing.T) {
	t.Parallel()
	srv, unblock := startHoldingServer(t)
	d := &rawDialer{addr: srv.addr, cfg: ClientConfig{MaxInFlight: 4, IdleTimeout: 300 * time.Millisecond}}
	p := NewPool(d.dial, PoolConfig{MinConns: 2, MaxConns: 3, Saturated: 2})
	closePool(t, p)
	var id atomic.Uint64
	waitFor(t, func() bool {
		_, err := roundTrip(p, id.Add(1), []byte("x"), time.Second)
		return err == nil && p.Len() == 2
	})
	var held sync.WaitGroup
	for range 40 {
		held.Add(1)
		go func() {
			defer held.Done()
			roundTrip(p, id.Add(1), []byte("hold"), 10*time.Second)
		}()
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, func() bool { return p.Len() == 3 })
	unblock()
	held.Wait()

	// Three requests at a time: never saturating the less busy of the
	// first two connections, but reaching the third whenever the first
	// two hold one each, if load were spread over every connection.
	stop := time.Now().Add(3 * time.Second)
	var failed atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && p.Len() > 2 {
				got, err := roundTrip(p, id.Add(1), []byte("x"), time.Second)
				if err != nil && err != ErrNoLink || err == nil && string(got) != "x" {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := p.Len(); n != 2 {
		t.Errorf("%d connections after 3 s of a load two connections carry; want the third closed", n)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
}

// TestPoolRefused: a peer that refuses the upgrade is asked again only
// after RetryRefused; meanwhile every request is ErrNoLink at once.
func TestPoolRefused(t *testing.T) {
	t.Parallel()
	d := &rawDialer{err: ErrRefused}
	p := NewPool(d.dial, PoolConfig{RetryRefused: time.Hour})
	for i := range 100 {
		if _, err := p.RoundTrip(uint64(i+1), []byte("x"), time.Now().Add(time.Second)); err != ErrNoLink {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	if n := d.dials.Load(); n != 1 {
		t.Errorf("%d dials to a peer that refuses links", n)
	}
}

// TestPoolClose: a closed set takes nothing new and its connections close
// once their requests are answered.
func TestPoolClose(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := startServer(t, &Server{}, func(ex *Exchange) { <-release; echo(ex) })
	d := &rawDialer{addr: srv.addr}
	p := NewPool(d.dial, PoolConfig{MinConns: 1})
	closePool(t, p)
	p.RoundTrip(1, []byte("x"), time.Now())
	waitFor(t, func() bool { return p.Len() == 1 })
	done := make(chan error, 1)
	go func() { _, err := roundTrip(p, 2, []byte("x"), 5*time.Second); done <- err }()
	waitFor(t, func() bool { return (*p.conns.Load())[0].InFlight() == 1 })
	p.Close()
	if _, err := p.RoundTrip(3, []byte("x"), time.Now().Add(time.Second)); err != ErrNoLink {
		t.Errorf("after Close: %v, want ErrNoLink", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("in flight at Close: %v", err)
	}
	waitFor(t, func() bool { return p.Len() == 0 })
}
