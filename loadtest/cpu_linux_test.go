package loadtest

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRunMeasuresCPU: with this process as the target (the upstream runs
// in it), the measured phase's CPU is read from /proc for the target, the
// loader and the machine, and the machine's busy time covers the others.
func TestRunMeasuresCPU(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024, 0)
	res, err := Run(context.Background(), Config{
		URL: up.URL(), Body: Body(64), Connections: 4, Warmup: 100 * time.Millisecond,
		Duration: 700 * time.Millisecond, CPUPIDs: []int{os.Getpid()},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.CPU
	if !c.Measured || c.Target <= 0 || c.Loader <= 0 || c.CPUs < 1 {
		t.Fatalf("CPU not measured: %+v", c)
	}
	// /proc counts in 10 ms ticks, getrusage finer: allow two ticks.
	if c.Machine+2*clockTick < c.Loader || c.Target+2*clockTick < c.Loader {
		t.Fatalf("machine %v and target %v (this process) must cover the loader %v", c.Machine, c.Target, c.Loader)
	}
	if c.Wall < 500*time.Millisecond || c.Wall > 10*time.Second {
		t.Fatalf("CPU read over %v for a 700 ms phase", c.Wall)
	}
	if limit := time.Duration(c.CPUs) * (c.Wall + 2*clockTick); c.Machine > limit {
		t.Fatalf("machine busy %v in %v on %d CPUs", c.Machine, c.Wall, c.CPUs)
	}
}

// TestUsersCPUExcludesRamp: in users mode the CPU clocks are read around
// the measured phase only, so the ramp (where every user connects) and the
// warm-up are never charged to the measured requests. A window that took
// them in would last at least ramp+warmup+duration (2.3 s), not ~0.5 s.
func TestUsersCPUExcludesRamp(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024, 0)
	const ramp, warmup, duration = 1500 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond
	res, err := Run(context.Background(), Config{
		URL: up.URL(), Body: Body(64), Connections: 50, Think: 50 * time.Millisecond,
		Ramp: ramp, Warmup: warmup, Duration: duration, CPUPIDs: []int{os.Getpid()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Failed() != 0 {
		t.Fatalf("result %+v", res)
	}
	c := res.CPU
	if !c.Measured || c.Loader <= 0 {
		t.Fatalf("CPU not measured: %+v", c)
	}
	if c.Wall < duration/2 || c.Wall >= ramp+warmup {
		t.Fatalf("CPU read over %v; the measured phase is %v, after %v of ramp and %v of warm-up", c.Wall, duration, ramp, warmup)
	}
}
