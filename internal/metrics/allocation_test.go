//go:build !race

package metrics

import (
	"testing"
	"time"
)

// TestRecordingZeroAlloc: every recording method of both recorders
// allocates nothing, so the relay's hot path stays allocation-free with
// metrics on or off.
func TestRecordingZeroAlloc(t *testing.T) {
	for _, c := range []struct {
		name string
		rec  Recorder
	}{{"Relay", New(testOpts)}, {"Nop", Nop}} {
		allocs := testing.AllocsPerRun(1000, func() {
			c.rec.RequestStarted()
			c.rec.RequestDone(Inbound, 2, 3*time.Millisecond)
			c.rec.UpstreamDone(time.Millisecond)
			c.rec.PeerDone(time.Millisecond)
			c.rec.Pairing(Outbound, ResultOK)
			c.rec.Rekey(ResultOK)
			c.rec.FrameRefused(RefusedReplay)
			c.rec.StoreCommandError()
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per round", c.name, allocs)
		}
	}
}
