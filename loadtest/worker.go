package loadtest

// A worker owns one keep-alive connection and walks it through the run:
//
//	connect (lazily, and again after any error that leaves the stream in
//	an unknown state) → wait for the next send time (open loop only) →
//	write the pre-serialized request → read the response into a reused
//	fasthttp.Response → classify it → record its latency in the worker's
//	own histogram (measured phase only) → repeat until the window ends,
//	the run is cancelled, or the per-worker request bound is reached.
//
// In users mode a worker is one user: after each answer it thinks (waits)
// and goes again, and while it thinks its read buffer goes back to a pool,
// so memory follows the requests in flight rather than the users.
//
// Nothing on that path allocates in steady state (see alloc_test.go): the
// request bytes are shared and read-only, the bufio.Reader and Response
// are the worker's own while a request is in flight, and latencies are
// buffered per worker and enter a histogram shared by a few workers, under
// its lock, a burst at a time.
//
// On Linux, a plain-TCP request is written from inside the first read of
// its response, which spares the read that would find nothing yet
// (connReader, rawconn_linux.go).

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// outcome classifies one request.
type outcome uint8

const (
	outcomeOK      outcome = iota
	outcomeError           // connect, write, read or parse failure
	outcomeTimeout         // Timeout elapsed before the full response
	outcomeNon2xx          // complete response, status outside 200-299
	outcomeBadBody         // 2xx with the wrong length or checksum
	outcomeDiscard         // cut short by the end of the run, not counted
)

const (
	// readBufferSize holds a response header block in one read; the body
	// of a large response streams through it.
	readBufferSize = 16 << 10

	// maxResponseBody bounds what one response may make a worker buffer.
	maxResponseBody = MaxSize + 1<<20

	// connectBackoff spaces out reconnects after a failed connect, so a
	// target that refuses connections yields a steady error count rather
	// than a spinning CPU.
	connectBackoff = 10 * time.Millisecond

	// pendingLen is how many latencies a worker buffers before it
	// records them (see worker.pending); a user, who sends about once a
	// second, buffers usersPendingLen.
	pendingLen      = 256
	usersPendingLen = 16

	// maxHistShards bounds the histograms of a run: each is ~150 KiB
	// (twice that in open loop), so one per connection would put 10,000
	// users at 1.5-3 GiB. With at most this many, workers share them.
	maxHistShards = 64

	// histogram range in microseconds: 1 µs to 100 s, 3 significant
	// digits (0.1 % error). Larger values are clamped to the top.
	histLowest  = 1
	histHighest = 100_000_000
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// histShard is a histogram pair shared by the workers i ≡ k mod shards.
// A worker takes its lock once per burst of pending latencies, so with
// 64 shards it is nearly never contended.
type histShard struct {
	mu      sync.Mutex
	hist    *hdrhistogram.Histogram // latency, from the intended send time
	service *hdrhistogram.Histogram // open loop: from the actual send time
}

func newHistShard(openLoop bool) *histShard {
	h := &histShard{hist: newHistogram()}
	if openLoop {
		h.service = newHistogram()
	}
	return h
}

// readerPool holds the read buffers of users who are thinking.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

type worker struct {
	p    *plan
	stop <-chan struct{}
	// runCtx is the run's context: a connect in progress when the run is
	// cancelled ends at once, not at its deadline.
	runCtx context.Context
	dialer net.Dialer

	conn net.Conn
	// deadline is the one set on conn (zero on a new connection).
	deadline time.Time
	// cur mirrors conn for the cancel watcher, which unblocks a worker
	// stuck in a read by moving its deadline into the past.
	cur atomic.Pointer[net.Conn]
	// rd sends the requests and is what br reads from: on Linux it
	// writes each request as part of reading its answer, which saves a
	// syscall per request (rawconn_linux.go).
	rd   connReader
	br   *bufio.Reader
	resp fasthttp.Response // headers only: SkipBody is set
	body []byte            // the last response's body

	// Window of the measured phase.
	measureStart, end time.Time

	shard *histShard

	// Latencies wait here and enter the histograms in bursts. A histogram
	// is ~150 KiB; touched once per request, between the kernel's network
	// stack and other workers doing the same, it misses the caches and TLB;
	// a burst of nearby values shares the misses (benchmarks/loadgen).
	pending    []int64
	pendingSvc []int64 // open loop only

	// Users mode: the think timer and the jitter's random source.
	timer *time.Timer
	rng   *rand.Rand

	// ok and failed are read by the progress goroutine while the worker
	// runs; the breakdown below is read only after it returns.
	ok, failed                        atomic.Int64
	errors, timeouts, non2xx, badBody int64
}

// newWorker makes worker number id; shard nil gives it a histogram pair of
// its own.
func newWorker(ctx context.Context, p *plan, stop <-chan struct{}, measureStart, end time.Time, id int, shard *histShard) *worker {
	if shard == nil {
		shard = newHistShard(p.interval > 0)
	}
	w := &worker{
		p:            p,
		stop:         stop,
		runCtx:       ctx,
		measureStart: measureStart,
		end:          end,
		shard:        shard,
	}
	w.resp.SkipBody = true
	n := pendingLen
	if p.think > 0 {
		n = usersPendingLen
		w.timer = time.NewTimer(time.Hour)
		w.timer.Stop()
		w.rng = rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	}
	w.pending = make([]int64, 0, n)
	if p.interval > 0 {
		w.pendingSvc = make([]int64, 0, n)
	}
	return w
}

func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// runClosed sends each request as soon as the previous answer is in. The
// completion time of one request is the send time of the next, which
// saves a clock read per request.
func (w *worker) runClosed(first time.Time) {
	defer w.finish()
	if d := time.Until(first); d > 0 {
		w.pause(d) // the ramp
	}
	now := time.Now()
	for i := int64(0); i < w.p.perWorker && now.Before(w.end) && !w.stopped(); i++ {
		now = w.step(now, now)
	}
}

// runOpen sends request k at first + k·interval whether or not the
// previous one is done, the way a population of independent users would;
// a late connection sends immediately and its latency still counts from
// the due time (wrk2's correction of coordinated omission).
func (w *worker) runOpen(first time.Time) {
	defer w.finish()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	due := first
	for i := int64(0); i < w.p.perWorker && due.Before(w.end); i++ {
		now := time.Now()
		if d := due.Sub(now); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
				now = time.Now()
			case <-w.stop:
				return
			}
		} else if w.stopped() {
			return
		}
		w.step(due, now)
		due = due.Add(w.p.interval)
	}
}

// runUsers is users mode: the worker is one user who starts at first,
// and after each answer thinks for think ± jitter before sending again.
// Latency counts from the send: a user does not send while waiting.
func (w *worker) runUsers(first time.Time) {
	defer w.finish()
	if !w.sleepUntil(first) {
		return
	}
	now := time.Now()
	for i := int64(0); i < w.p.perWorker && now.Before(w.end) && !w.stopped(); i++ {
		done := w.step(now, now)
		w.releaseReader()
		if !w.sleepUntil(done.Add(w.thinkTime())) {
			return
		}
		now = time.Now()
	}
}

// thinkTime draws one pause, uniform in [think-jitter, think+jitter].
func (w *worker) thinkTime() time.Duration {
	if w.p.jitter <= 0 {
		return w.p.think
	}
	return w.p.think - w.p.jitter + time.Duration(w.rng.Int64N(int64(2*w.p.jitter)+1))
}

// sleepUntil waits for t on the worker's timer; false if the run stopped
// or t is past the end of the window.
func (w *worker) sleepUntil(t time.Time) bool {
	if !t.Before(w.end) {
		return false
	}
	d := time.Until(t)
	if d <= 0 {
		return !w.stopped()
	}
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
		return true
	case <-w.stop:
		w.timer.Stop()
		return false
	}
}

// releaseReader hands a thinking user's read buffer back to the pool; the
// next request takes one again (step). A buffer still holding bytes (a
// server that sent more than one answer) stays with its connection.
func (w *worker) releaseReader() {
	if w.br != nil && w.br.Buffered() == 0 {
		w.br.Reset(nil)
		readerPool.Put(w.br)
		w.br = nil
	}
}

// takeReader gives the worker a read buffer if it has none.
func (w *worker) takeReader() {
	if w.br == nil {
		w.br = readerPool.Get().(*bufio.Reader)
		w.br.Reset(&w.rd)
	}
}

// finish ends a worker's run: its connection closes and its pending
// latencies are recorded.
func (w *worker) finish() {
	w.closeConn()
	w.flush()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.releaseReader()
}

// step performs one request due at intended and sent at sent, records it,
// and returns when it completed.
func (w *worker) step(intended, sent time.Time) time.Time {
	if w.conn == nil {
		err := w.connect()
		now := time.Now()
		if err != nil {
			w.record(w.classify(err, false), intended, intended, now)
			w.pause(connectBackoff)
			return time.Now()
		}
		sent = now // the connect is not part of the request's service time
	}
	w.takeReader()
	oc := w.roundTrip(sent)
	done := time.Now()
	w.record(oc, intended, sent, done)
	return done
}

// roundTrip writes the request on the open connection and reads the
// answer. It is the per-request hot path: no allocation in steady state.
func (w *worker) roundTrip(sent time.Time) outcome {
	// Moving a deadline is a runtime timer update; doing it only when the
	// wanted deadline has moved on by more than the slack makes the
	// effective timeout fall in (Timeout-slack, Timeout] at a fraction of
	// the cost. The end of the window is always set exactly.
	want := sent.Add(w.p.timeout)
	if !want.Before(w.end) {
		want = w.end
	}
	if want.Sub(w.deadline) > w.p.slack || (want.Equal(w.end) && !w.deadline.Equal(w.end)) {
		if err := w.conn.SetDeadline(want); err != nil {
			w.closeConn()
			return w.classify(err, false)
		}
		w.deadline = want
	}
	capped := w.deadline.Equal(w.end)
	// On the raw path the write happens in the first read of the
	// response, so a failed write surfaces from readResponse.
	if err := w.rd.send(w.p.raw, w.br.Buffered() == 0); err != nil {
		w.closeConn()
		return w.classify(err, capped)
	}
	mustClose, err := w.readResponse()
	if err != nil {
		if werr := w.rd.writeErr(); werr != nil {
			err = werr // the parser hid it behind io.EOF
		}
		w.closeConn()
		return w.classify(err, capped)
	}
	if mustClose || w.resp.ConnectionClose() {
		w.closeConn()
	}
	if code := w.resp.StatusCode(); code < 200 || code > 299 {
		return outcomeNon2xx
	}
	if w.p.expectSize > 0 && len(w.body) != w.p.expectSize {
		return outcomeBadBody
	}
	if w.p.verify && Checksum(w.body) != w.p.checksum {
		return outcomeBadBody
	}
	return outcomeOK
}

// readResponse reads one response into w.resp (headers) and w.body.
//
// fasthttp reads only the header block (SkipBody is set): left to itself
// it hands the body buffer back to a process-wide bytebufferpool after
// every response and takes one again, and that pool drops buffers larger
// than the sizes it has mostly seen, so a 1 KiB body among smaller ones
// cost three allocations per request. A Content-Length body, what APIs
// answer, is read straight into the worker's own buffer; chunked and
// read-until-close bodies are rare here and go through fasthttp's decoder.
// mustClose reports a body delimited by the connection closing.
func (w *worker) readResponse() (mustClose bool, err error) {
	if err := w.resp.ReadLimitBody(w.br, 0); err != nil {
		return false, err
	}
	w.body = w.body[:0]
	code := w.resp.StatusCode()
	if w.p.head || code < 200 || code == 204 || code == 304 {
		return false, nil // RFC 9112 §6.3: no body, whatever the headers say
	}
	switch n := w.resp.Header.ContentLength(); {
	case n > maxResponseBody:
		return false, errBodyTooLarge
	case n >= 0:
		if cap(w.body) < n {
			w.body = make([]byte, n) // grows once to the response size
		}
		w.body = w.body[:n]
		_, err := io.ReadFull(w.br, w.body)
		return false, err
	case n == -1: // chunked
		if err := w.resp.ReadBody(w.br, maxResponseBody); err != nil {
			return false, err
		}
		if err := w.resp.Header.ReadTrailer(w.br); err != nil {
			return false, err
		}
	default: // no length: the body ends when the server closes
		if err := w.resp.ReadBody(w.br, maxResponseBody); err != nil {
			return false, err
		}
		mustClose = true
	}
	w.body = append(w.body, w.resp.Body()...)
	w.resp.ResetBody()
	return mustClose, nil
}

var errBodyTooLarge = errors.New("loadtest: response body larger than 257MiB")

// classify maps a transport error to an outcome. A deadline that was the
// end of the window (capped) or a cancelled run is not the target's fault
// and is discarded rather than counted as a timeout.
func (w *worker) classify(err error, capped bool) outcome {
	// A cancelled connect can return before the watcher closes stop.
	if w.stopped() || err == errWindowEnded || errors.Is(err, context.Canceled) {
		return outcomeDiscard
	}
	if isTimeout(err) {
		if capped {
			return outcomeDiscard
		}
		return outcomeTimeout
	}
	return outcomeError
}

// isTimeout reports whether err is a deadline passing, in any of the
// forms the layers below report it: fasthttp's, the poller's (which may
// fire a moment before the context's timer) and the context's.
func isTimeout(err error) bool {
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
}

func (w *worker) connect() error {
	deadline := time.Now().Add(w.p.timeout)
	if deadline.After(w.end) {
		deadline = w.end
	}
	ctx, cancel := context.WithDeadline(w.runCtx, deadline)
	defer cancel()
	conn, err := w.dialer.DialContext(ctx, "tcp", w.p.addr)
	if err != nil {
		if !deadline.Before(w.end) && isTimeout(err) {
			return errWindowEnded
		}
		return err
	}
	if w.p.tls != nil {
		tc := tls.Client(conn, w.p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if !deadline.Before(w.end) && isTimeout(err) {
				return errWindowEnded // cut short by the end of the run, as a dial is
			}
			return err
		}
		conn = tc
	}
	w.conn = conn
	shared := conn // the watcher's copy: w.conn itself changes under it
	w.cur.Store(&shared)
	w.rd.reset(conn)
	if w.br != nil {
		w.br.Reset(&w.rd) // drops what the old connection left
	}
	w.takeReader()
	// A run cancelled while this connect was under way would otherwise
	// miss the watcher's deadline nudge.
	if w.stopped() {
		w.closeConn()
		return errWindowEnded
	}
	return nil
}

// errWindowEnded marks a connect cut short by the end of the run.
var errWindowEnded = errors.New("loadtest: run ended")

func (w *worker) closeConn() {
	if w.conn != nil {
		w.cur.Store(nil)
		w.conn.Close()
		w.conn = nil
		w.rd.reset(nil)
		w.deadline = time.Time{}
	}
}

// unblock is called by the cancel watcher from another goroutine.
func (w *worker) unblock() {
	if c := w.cur.Load(); c != nil {
		(*c).SetDeadline(time.Unix(1, 0))
	}
}

// pause sleeps for d or until the run stops or its window ends.
func (w *worker) pause(d time.Duration) {
	if rest := time.Until(w.end); rest < d {
		d = rest
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-w.stop:
		t.Stop()
	}
}

// record counts one outcome. A request belongs to the phase it was due
// in: one due during the ramp or warm-up is dropped even if it completes
// in the measured phase, so a backlog from the warm-up never counts as
// measured work and an open-loop side never exceeds what was scheduled.
func (w *worker) record(oc outcome, intended, sent, done time.Time) {
	if oc == outcomeDiscard || intended.Before(w.measureStart) {
		return
	}
	switch oc {
	case outcomeOK:
		w.ok.Add(1)
		w.pending = append(w.pending, micros(done.Sub(intended)))
		if w.pendingSvc != nil {
			w.pendingSvc = append(w.pendingSvc, micros(done.Sub(sent)))
		}
		if len(w.pending) == cap(w.pending) {
			w.flush()
		}
		return
	case outcomeError:
		w.errors++
	case outcomeTimeout:
		w.timeouts++
	case outcomeNon2xx:
		w.non2xx++
	case outcomeBadBody:
		w.badBody++
	}
	w.failed.Add(1)
}

// flush records the pending latencies. The worker calls it when the
// buffer is full and when it stops.
func (w *worker) flush() {
	if len(w.pending) == 0 {
		return
	}
	w.shard.mu.Lock()
	for _, us := range w.pending {
		_ = w.shard.hist.RecordValue(us)
	}
	if w.shard.service != nil {
		for _, us := range w.pendingSvc {
			_ = w.shard.service.RecordValue(us)
		}
	}
	w.shard.mu.Unlock()
	w.pending = w.pending[:0]
	if w.pendingSvc != nil {
		w.pendingSvc = w.pendingSvc[:0]
	}
}

// micros converts d to whole microseconds clamped to the histogram's
// range, so that RecordValue never takes its allocating error path.
func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histLowest {
		us = histLowest
	} else if us > histHighest {
		us = histHighest
	}
	return us
}
