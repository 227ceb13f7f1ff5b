package link

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// writer is the one goroutine that writes to a connection. Senders queue
// messages; the writer yields once, so that messages finishing at about the
// same time join the batch, then takes everything queued and writes it with
// one write. A message longer than MaxFragment goes one fragment per round,
// after every other queued message's next fragment, so a large body delays
// the small messages behind it by fragments, not by its length.
type writer struct {
	conn    net.Conn
	timeout time.Duration

	mu     sync.Mutex
	queue  []item
	closed bool
	wake   chan struct{} // capacity 1: "the queue may be non-empty"

	// Owned by the writer goroutine.
	batch, carry, finished []item
	buf                    []byte
}

// item is one message queued for writing.
type item struct {
	typ     uint8
	id      uint64
	payload []byte
	off     int
	owner   sender // told when the message left, or never will; may be nil
}

// sender owns a queued message's payload: the writer calls sent once the
// payload is no longer needed, whether it was written or the connection
// failed first.
type sender interface{ sent() }

func newWriter(conn net.Conn, timeout time.Duration) *writer {
	return &writer{conn: conn, timeout: timeout, wake: make(chan struct{}, 1)}
}

// enqueue queues a message. It reports false, and queues nothing, once the
// writer is closed: the caller still owns the payload.
func (w *writer) enqueue(it item) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, it)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// close stops the writer: queued messages are dropped and their owners
// told. It does not close the connection.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	dropped := w.queue
	w.queue = nil
	w.mu.Unlock()
	release(dropped)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func release(items []item) {
	for i := range items {
		if items[i].owner != nil {
			items[i].owner.sent()
		}
		items[i] = item{}
	}
}

// run writes until close or a failed write; it returns the write's error
// (nil after close). Whatever it held when it stopped is released.
func (w *writer) run() error {
	for range w.wake {
		runtime.Gosched()
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil
		}
		w.batch, w.queue = w.queue, w.batch[:0]
		w.mu.Unlock()
		if len(w.batch) == 0 {
			continue
		}
		if err := w.flush(); err != nil {
			w.close()
			return err
		}
	}
	return nil
}

// flush writes w.batch: rounds of one fragment per message until every
// message is out or the batch is full; what is left goes back to the head
// of the queue for the next write.
func (w *writer) flush() error {
	buf := w.buf[:0]
	for len(w.batch) > 0 && len(buf) < maxBatch {
		w.carry = w.carry[:0]
		for i := range w.batch {
			it := &w.batch[i]
			n := min(len(it.payload)-it.off, MaxFragment)
			var flags uint8
			if it.off+n < len(it.payload) {
				flags = FlagMore
			}
			buf = AppendHeader(buf, Header{Type: it.typ, Flags: flags, Length: uint32(n), ID: it.id})
			buf = append(buf, it.payload[it.off:it.off+n]...)
			it.off += n
			if it.off == len(it.payload) {
				w.finished = append(w.finished, *it)
			} else {
				w.carry = append(w.carry, *it)
			}
			*it = item{}
		}
		w.batch, w.carry = w.carry, w.batch
	}
	if len(w.batch) > 0 {
		w.mu.Lock()
		w.queue = append(w.batch, w.queue...)
		w.batch = w.batch[:0:0]
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	w.buf = buf
	if w.timeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	_, err := w.conn.Write(buf)
	release(w.finished)
	w.finished = w.finished[:0]
	if cap(w.buf) > 4*maxBatch {
		w.buf = nil // a burst of large messages: do not keep its buffer
	}
	return err
}
