package relaytest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Tap is a TCP forwarder that records every byte sent from its clients to
// its target: what an on-path observer between two relays sees.
type Tap struct {
	Addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	sent   []byte
	wg     sync.WaitGroup
	conns  map[net.Conn]struct{}
	// accepted counts the connections made through the tap.
	accepted atomic.Int64
}

// Accepted is how many connections clients have made through the tap.
func (tp *Tap) Accepted() int64 { return tp.accepted.Load() }

// StartTap forwards connections on a free loopback port to target.
func StartTap(t testing.TB, target string) *Tap {
	t.Helper()
	tp := &Tap{ln: listen(t), target: target, conns: map[net.Conn]struct{}{}}
	tp.Addr = tp.ln.Addr().String()
	tp.wg.Add(1)
	go tp.accept()
	t.Cleanup(tp.Close)
	return tp
}

func (tp *Tap) accept() {
	defer tp.wg.Done()
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		tp.accepted.Add(1)
		up, err := net.Dial("tcp", tp.target)
		if err != nil {
			c.Close()
			continue
		}
		tp.track(c, up)
		tp.wg.Add(2)
		go func() {
			defer tp.wg.Done()
			io.Copy(up, io.TeeReader(c, tapWriter{tp}))
			up.Close()
		}()
		go func() {
			defer tp.wg.Done()
			io.Copy(c, up)
			c.Close()
		}()
	}
}

func (tp *Tap) track(cs ...net.Conn) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, c := range cs {
		tp.conns[c] = struct{}{}
	}
}

type tapWriter struct{ tp *Tap }

func (w tapWriter) Write(p []byte) (int, error) {
	w.tp.mu.Lock()
	w.tp.sent = append(w.tp.sent, p...)
	w.tp.mu.Unlock()
	return len(p), nil
}

// Sent returns a copy of everything clients sent through the tap.
func (tp *Tap) Sent() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]byte(nil), tp.sent...)
}

// Reset forgets what was recorded.
func (tp *Tap) Reset() {
	tp.mu.Lock()
	tp.sent = tp.sent[:0]
	tp.mu.Unlock()
}

// Close stops the tap and every connection through it.
func (tp *Tap) Close() {
	tp.ln.Close()
	tp.mu.Lock()
	for c := range tp.conns {
		c.Close()
	}
	tp.mu.Unlock()
	tp.wg.Wait()
}

// CloseConns closes every connection through the tap, as a middlebox or an
// idle timeout would; the tap keeps accepting new ones.
func (tp *Tap) CloseConns() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for c := range tp.conns {
		c.Close()
		delete(tp.conns, c)
	}
}
