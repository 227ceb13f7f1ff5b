//go:build !race

package loadtest

import (
	"context"
	"testing"
	"time"
)

// TestRoundTripAllocs asserts that the per-request path (write the
// serialized request, read and check the response, record the latency)
// allocates nothing in steady state, so the loader's garbage collector
// never competes with the target for the CPU. AllocsPerRun counts the
// whole process, the in-process upstream included, which is allocation
// free too. Built without -race, which allocates on its own.
func TestRoundTripAllocs(t *testing.T) {
	up := startUpstream(t, 1024, 0)
	cfg := Config{
		URL:            up.URL() + "/api/echo",
		Body:           Body(1024),
		Headers:        []Header{{"x-mte-upstream", "http://127.0.0.1:1"}},
		Connections:    1,
		Duration:       time.Minute,
		ExpectSize:     1024,
		Verify:         true,
		VerifyChecksum: up.Checksum(),
	}
	p, err := cfg.plan()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w := newWorker(context.Background(), p, make(chan struct{}), now, now.Add(time.Minute), 0, nil)
	defer w.closeConn()
	step := func() {
		sent := time.Now()
		oc := w.roundTrip(sent)
		if oc != outcomeOK {
			t.Fatalf("outcome %d", oc)
		}
		w.record(oc, sent, sent, time.Now())
	}
	if err := w.connect(); err != nil {
		t.Fatal(err)
	}
	step() // first use sizes the buffers
	if n := testing.AllocsPerRun(2000, step); n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
	if w.ok.Load() == 0 {
		t.Fatal("no request was recorded")
	}
}

// TestUsersRoundTripAllocs: in users mode a worker lends its read buffer
// back to the pool while it thinks and takes one again for the next
// request; that cycle allocates nothing either.
func TestUsersRoundTripAllocs(t *testing.T) {
	up := startUpstream(t, 1024, 0)
	cfg := Config{
		URL: up.URL(), Body: Body(1024), Connections: 1, Duration: time.Minute,
		Think: time.Second, ExpectSize: 1024,
	}
	p, err := cfg.plan()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w := newWorker(context.Background(), p, make(chan struct{}), now, now.Add(time.Minute), 0, nil)
	defer w.finish()
	cycle := func() {
		sent := time.Now()
		if done := w.step(sent, sent); w.br == nil || done.Before(sent) {
			t.Fatal("step ran without a read buffer")
		}
		w.releaseReader()
		if w.br != nil {
			t.Fatal("a thinking user kept its read buffer")
		}
		_ = w.thinkTime()
	}
	cycle()
	if n := testing.AllocsPerRun(2000, cycle); n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
	if w.ok.Load() == 0 || w.failed.Load() != 0 {
		t.Fatalf("ok %d, failed %d", w.ok.Load(), w.failed.Load())
	}
}
