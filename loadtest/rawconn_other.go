//go:build !linux

package loadtest

import "net"

// rawPath reports whether this platform sends plain-TCP requests through
// connReader's raw path: only Linux does (see rawconn_linux.go).
const rawPath = false

// connReader is what a worker's bufio.Reader reads from. Here it is the
// connection itself: send writes the request and Read reads the conn.
type connReader struct {
	conn net.Conn

	// Always zero here; see rawconn_linux.go.
	rawSends, rawRests int64
}

func (r *connReader) reset(c net.Conn) { r.conn = c }

func (r *connReader) send(req []byte, _ bool) error {
	_, err := r.conn.Write(req)
	return err
}

func (r *connReader) writeErr() error { return nil }

func (r *connReader) Read(p []byte) (int, error) { return r.conn.Read(p) }
