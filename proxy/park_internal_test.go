package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestParkedConnectionIdleTimeout: a parked connection is closed once it
// has been idle for the server's IdleTimeout (the read deadline fasthttp
// set before it left), not kept forever, whether its goroutine waits or
// hands it to a new one. Relays refuse an IDLE_TIMEOUT this short, so a
// bare fasthttp server serves through the parking listener.
func TestParkedConnectionIdleTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		handOffAbove int
	}{{"waits", relayHandOffAbove}, {"hands off", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &fasthttp.Server{
				Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
				ConnState:   trackIdle,
				IdleTimeout: 300 * time.Millisecond,
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(newParkingListener(ln, srv, tc.handOffAbove))
			defer srv.Shutdown()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			var resp fasthttp.Response
			for i := range 3 { // the later requests come from a parked connection
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: relay\r\n\r\n")
				if err := resp.Read(br); err != nil || string(resp.Body()) != "ok" {
					t.Fatalf("request %d: %v %q", i+1, err, resp.Body())
				}
				time.Sleep(100 * time.Millisecond)
			}
			start := time.Now()
			c.SetReadDeadline(start.Add(10 * time.Second))
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("idle connection: read %v, want EOF when the server closes it", err)
			}
			if idle := time.Since(start); idle > 5*time.Second {
				t.Errorf("closed after %v idle, want about 300ms", idle)
			}
		})
	}
}

// TestParkingListenerLimit: parked connections count against the server's
// Concurrency like served ones, so a connection beyond it is closed at
// once, and one closing makes room again.
func TestParkingListenerLimit(t *testing.T) {
	t.Parallel()
	srv := &fasthttp.Server{
		Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
		ConnState:   trackIdle,
		Concurrency: 2,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(newParkingListener(ln, srv, 0)) // every parked connection handed off
	defer srv.Shutdown()
	exchange := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: relay\r\n\r\n"); err != nil {
			return err
		}
		var resp fasthttp.Response
		return resp.Read(bufio.NewReader(c))
	}
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = exchange(c)
		if i < 2 && err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		if i == 2 && err == nil {
			t.Fatal("a third connection was served with Concurrency 2")
		}
		conns = append(conns, c)
	}
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		err = exchange(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestParkedConnectionsHandedOff: many connections at once, each parked
// and handed to a new goroutine after every request, all get every answer.
func TestParkedConnectionsHandedOff(t *testing.T) {
	t.Parallel()
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetBody(append([]byte("echo "), ctx.QueryArgs().Peek("n")...))
		},
		ConnState: trackIdle,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(newParkingListener(ln, srv, 0))
	defer srv.Shutdown()
	const conns, requests = 50, 20
	errs := make(chan error, conns)
	for i := range conns {
		go func() {
			errs <- func() error {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				var resp fasthttp.Response
				for j := range requests {
					n := fmt.Sprint(i*requests + j)
					io.WriteString(c, "GET /?n="+n+" HTTP/1.1\r\nHost: relay\r\n\r\n")
					if err := resp.Read(br); err != nil {
						return err
					}
					if got := string(resp.Body()); got != "echo "+n {
						return fmt.Errorf("answer %q to request %s", got, n)
					}
				}
				return nil
			}()
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
