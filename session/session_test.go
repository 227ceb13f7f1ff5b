package session

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/session/replay"
)

// testSession is a session with fixed keys, built without pairing.
func testSession(t testing.TB, id ID, created, expires time.Time) *Session {
	t.Helper()
	var keys [numKeys][32]byte
	for i := range keys {
		for j := range keys[i] {
			keys[i][j] = byte(0x40*i + j)
		}
	}
	s := mustSecrets(t, katSecret)
	return sessionFromKeys(SuiteMLKEM768P256, s.NewClientID(id, created), keys, created, expires)
}

// TestNextCounter is docs/PROTOCOL.md §6.2: counters start at 1 and the session
// refuses to seal once RejectAfterMessages is reached.
func TestNextCounter(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	if c, ok := s.NextCounter(); c != 1 || !ok {
		t.Fatalf("first NextCounter = %d, %v; want 1, true", c, ok)
	}
	if s.Sealed() != 1 {
		t.Errorf("Sealed = %d, want 1", s.Sealed())
	}
	s.counter.Store(RekeyAfterMessages - 1)
	if c, ok := s.NextCounter(); c != RekeyAfterMessages || !ok {
		t.Errorf("NextCounter at the rekey mark = %d, %v", c, ok)
	}
	s.counter.Store(RejectAfterMessages - 2)
	if c, ok := s.NextCounter(); c != RejectAfterMessages-1 || !ok {
		t.Errorf("last NextCounter = %d, %v; want 2^32-1, true", c, ok)
	}
	for range 3 {
		if c, ok := s.NextCounter(); ok {
			t.Errorf("NextCounter past the limit = %d, true", c)
		}
	}
}

// TestNextCounterConcurrent: concurrent callers never get the same counter
// (the nonce of every request, docs/PROTOCOL.md §4.1).
func TestNextCounterConcurrent(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	const workers, each = 8, 2000
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				c, _ := s.NextCounter()
				got[w] = append(got[w], c)
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool, workers*each)
	for _, cs := range got {
		for _, c := range cs {
			if seen[c] || c == 0 || c > workers*each {
				t.Fatalf("counter %d handed out twice or out of range", c)
			}
			seen[c] = true
		}
	}
}

// TestAccept is docs/PROTOCOL.md §6.1 at the session: each counter once, never 0,
// never at or past RejectAfterMessages, within the window.
func TestAccept(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	steps := []struct {
		counter uint64
		want    bool
	}{
		{0, false},
		{1, true}, {1, false},
		{3, true}, {2, true}, {3, false},
		{RejectAfterMessages, false},
		{RejectAfterMessages + 1, false},
		{1<<64 - 1, false},
		{RejectAfterMessages - 1, true},
		{RejectAfterMessages - 1, false},
		{RejectAfterMessages - 1 - replay.WindowSize, true},      // oldest still inside
		{RejectAfterMessages - 1 - replay.WindowSize - 1, false}, // just outside
	}
	for i, st := range steps {
		if got := s.Accept(st.counter); got != st.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, st.counter, got, st.want)
		}
	}
}

// TestAcceptConcurrent: under concurrency each counter is accepted exactly
// once, however many receivers race for it (the property that keeps
// response nonces unique, docs/PROTOCOL.md §6.2).
func TestAcceptConcurrent(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	const counters, racers = 5000, 4
	var mu sync.Mutex
	wins := make(map[uint64]int, counters)
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			for c := uint64(1); c <= counters; c++ {
				if s.Accept(c) {
					mu.Lock()
					wins[c]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for c := uint64(1); c <= counters; c++ {
		if wins[c] != 1 {
			t.Fatalf("counter %d accepted %d times", c, wins[c])
		}
	}
}

func TestLifetime(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	if want := katNow.Add(45 * time.Minute); !s.RekeyAt().Equal(want) {
		t.Errorf("RekeyAt = %v, want %v (75%% of an hour)", s.RekeyAt(), want)
	}
	day := testSession(t, katID, katNow, katNow.Add(MaxLifetime))
	if want := katNow.Add(18 * time.Hour); !day.RekeyAt().Equal(want) {
		t.Errorf("RekeyAt of a day = %v, want %v", day.RekeyAt(), want)
	}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{katNow, false},
		{katNow.Add(time.Hour - time.Nanosecond), false},
		{katNow.Add(time.Hour), true},
		{katNow.Add(2 * time.Hour), true},
	} {
		if got := s.Expired(tt.at); got != tt.want {
			t.Errorf("Expired(+%v) = %v, want %v", tt.at.Sub(katNow), got, tt.want)
		}
	}
	if !(DefaultLifetime >= MinLifetime && DefaultLifetime <= MaxLifetime && RekeyAfterMessages < RejectAfterMessages) {
		t.Error("protocol constants are inconsistent")
	}
}

// TestSessionRedacted: a session prints its suite and a prefix of its
// client id, never keys and never the whole id (a bearer token).
func TestSessionRedacted(t *testing.T) {
	t.Parallel()
	s := testSession(t, katID, katNow, katNow.Add(time.Hour))
	full := string(s.ClientID.AppendText(nil))
	for _, verb := range []string{"%v", "%+v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, full) {
			t.Errorf("fmt %s of Session shows the whole client id: %s", verb, out)
		}
		for _, k := range s.keys {
			if leaks(out, k[:]) {
				t.Errorf("fmt %s of Session shows key material: %s", verb, out)
			}
		}
		for _, k := range []any{s.Request, s.Response} {
			o := fmt.Sprintf(verb, k)
			for _, key := range s.keys {
				if leaks(o, key[:]) {
					t.Errorf("fmt %s of a Session's codec.Keys shows key material: %s", verb, o)
				}
			}
		}
	}
	if !strings.Contains(s.String(), "MLKEM768-P256") {
		t.Errorf("String = %q, want the suite named", s.String())
	}
}
