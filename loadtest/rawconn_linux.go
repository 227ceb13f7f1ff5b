package loadtest

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawPath reports whether this platform sends plain-TCP requests through
// connReader's raw path (tests assert on it).
const rawPath = true

// connReader is what a worker's bufio.Reader reads from. It saves one
// syscall per request on plain TCP connections.
//
// The plain sequence is write(request), read → EAGAIN (the answer is not
// there yet), park in the netpoller, read. The first read is wasted: it
// nearly always fails, since the target has had no time to answer. Here
// the request is written inside a syscall.RawConn.Read callback instead,
// and the first read is made only once the poller says the socket is
// readable: write, park, read.
//
// Why the write must happen inside the callback: RawConn.Read first resets
// the poller's read-ready flag (prepareRead), then calls the callback, and
// parks whenever it returns false, until the next readiness event after
// that reset (the netpoller is edge-triggered). Writing after the reset
// means the answer, and the event it raises, come after it too, so the
// wait cannot miss it. Skipping the first read of a request written
// beforehand would be wrong: an answer that arrived before the reset has
// its event wiped, and the goroutine would sleep until the deadline.
//
// The callback's write and read are raw system calls, which do not tell
// the scheduler that the goroutine is entering a system call. The socket
// is non-blocking (the poller made it so), so neither can sleep, and the
// announcement is pure cost. Worse, a loopback write wakes the target,
// which on a small machine often preempts the loader inside the call; to
// the scheduler that looks like a blocking system call, so its monitor
// thread (sysmon) hands the P to another thread, which must be woken, and
// keeps polling at its shortest period. Dropping the announcement keeps
// sysmon quiet (benchmarks/loadgen has what perf measured).
//
// The callback writes while RawConn.Read holds only the fd's read lock.
// That is safe because the worker is its connection's only writer: the
// cancel watcher only moves deadlines.
//
// Deadlines and the cancel watcher keep working: the wait honors the
// connection's read deadline and ends with os.ErrDeadlineExceeded. TLS
// connections, and any conn that is not a *net.TCPConn, take the plain
// path.
type connReader struct {
	conn net.Conn
	rc   syscall.RawConn // nil: plain path
	// fn is the callback, r.step bound once per worker: a method value
	// made at each RawConn.Read would escape and allocate per request.
	fn func(fd uintptr) bool

	// The request armed by send, written by the next Read; nil if none.
	req   []byte
	wrote int   // bytes of req written so far
	werr  error // the write failed
	// The callback's state between calls within one Read.
	started bool
	p       []byte
	n       int
	err     error

	// For tests: requests sent by the raw path, and those of them that
	// filled the socket's send buffer and were finished by conn.Write.
	rawSends, rawRests int64
}

// reset points r at a new connection (nil after a close) and drops any
// armed request.
func (r *connReader) reset(c net.Conn) {
	r.conn, r.rc = c, nil
	r.req, r.p, r.werr, r.err = nil, nil, nil, nil
	if tc, ok := c.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	if r.fn == nil {
		r.fn = r.step
	}
}

// send sends req, or arms it for the next Read on the raw path. mayDefer
// is false when the reader above already holds unread bytes: the response
// might then be parsed without calling Read, and the request must not wait
// for a Read that may not come.
func (r *connReader) send(req []byte, mayDefer bool) error {
	r.werr = nil
	if r.rc == nil || !mayDefer {
		_, err := r.conn.Write(req)
		return err
	}
	r.req, r.wrote = req, 0
	return nil
}

// writeErr is the error of the last request's deferred write, if it
// failed; the Read that made it reported it too, but the HTTP parser
// above turns any error before the first byte into io.EOF.
func (r *connReader) writeErr() error { return r.werr }

func (r *connReader) Read(p []byte) (int, error) {
	if r.req == nil || len(p) == 0 {
		return r.conn.Read(p)
	}
	r.started, r.p, r.n, r.err = false, p, 0, nil
	err := r.rc.Read(r.fn)
	req, wrote := r.req, r.wrote
	r.req, r.p = nil, nil
	switch {
	case err != nil: // deadline or close, while waiting or before the write
		return 0, err
	case r.werr != nil:
		return 0, r.werr
	case wrote < len(req):
		// The socket's send buffer filled up: finish the request with
		// the poller's blocking write, then read as usual.
		r.rawRests++
		if _, err := r.conn.Write(req[wrote:]); err != nil {
			r.werr = err
			return 0, err
		}
		return r.conn.Read(p)
	}
	return r.n, r.err
}

// step is the RawConn.Read callback. Its first call writes the request
// and returns false to wait for readability (true if the write failed or
// could not finish); later calls read. Errors carry the same types as
// net.Conn's, so that classify and the parser see no difference.
func (r *connReader) step(fd uintptr) bool {
	if !r.started {
		r.started = true
		r.rawSends++
		for r.wrote < len(r.req) {
			n, err := nonblockingIO(syscall.SYS_WRITE, fd, r.req[r.wrote:])
			if n > 0 {
				r.wrote += n
			}
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				return true // buffer full: Read finishes the write
			case err != nil:
				r.werr = r.opError("write", err)
				return true
			case n <= 0:
				return true // cannot happen on a socket; conn.Write sorts it out
			}
		}
		return false
	}
	for {
		n, err := nonblockingIO(syscall.SYS_READ, fd, r.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // a spurious wake-up: wait again
		case err != nil:
			r.err = r.opError("read", err)
		case n == 0:
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}

func (r *connReader) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(),
		Err: os.NewSyscallError(op, err)}
}

// nonblockingIO makes a read or write system call on a non-blocking fd
// without entering the scheduler's system-call state (see connReader). A
// loopback write still does the receiver's TCP work inline, so the call
// holds its P for a few microseconds: ordinary work, as far as the
// scheduler is concerned.
//
// Under the race detector it makes the ordinary calls instead: only
// syscall.Read and Write tell the detector that the kernel touched p, and
// without that, a test whose in-process server wrote a variable before
// answering would see a false race.
func nonblockingIO(trap uintptr, fd uintptr, p []byte) (int, error) {
	if raceEnabled {
		if trap == syscall.SYS_READ {
			return syscall.Read(int(fd), p)
		}
		return syscall.Write(int(fd), p)
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
