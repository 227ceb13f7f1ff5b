package session

import (
	"context"
	"sync"
	"testing"
	"time"
)

// stoppedMemoryStore returns a MemoryStore whose sweeper has stopped, so that
// the test may replace its clock.
func stoppedMemoryStore(t *testing.T, now time.Time) *MemoryStore {
	m := NewMemoryStore(time.Hour)
	m.Close()
	m.now = func() time.Time { return now }
	return m
}

func TestMemoryStoreGetPutDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := stoppedMemoryStore(t, katNow)
	a := testSession(t, ID{1}, katNow, katNow.Add(time.Hour))
	b := testSession(t, ID{1 + memoryShards}, katNow, katNow.Add(time.Hour)) // same shard as a
	if _, err := m.Get(ctx, a.ClientID.ID()); err != ErrUnknownSession {
		t.Errorf("Get of an empty store = %v, want ErrUnknownSession", err)
	}
	for _, s := range []*Session{a, b} {
		mustPut(t, m, s)
	}
	for _, s := range []*Session{a, b} {
		if got, err := m.Get(ctx, s.ClientID.ID()); err != nil || got != s {
			t.Errorf("Get = %v, %v; want %v", got, err, s)
		}
	}
	replacement := testSession(t, ID{1}, katNow, katNow.Add(2*time.Hour))
	m.Put(ctx, replacement)
	if got, _ := m.Get(ctx, a.ClientID.ID()); got != replacement {
		t.Error("Put did not replace the session with the same id")
	}
	if err := m.Delete(ctx, a.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, a.ClientID.ID()); err != ErrUnknownSession {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := m.Delete(ctx, ID{0xee}); err != nil {
		t.Errorf("Delete of an unknown id = %v", err)
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d, want 1", m.Len())
	}
}

func TestMemoryStoreAccept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := stoppedMemoryStore(t, katNow)
	s := testSession(t, ID{2}, katNow, katNow.Add(time.Hour))
	m.Put(ctx, s)
	for _, st := range []struct {
		counter uint64
		want    error
	}{{1, nil}, {1, ErrReplay}, {0, ErrReplay}, {2, nil}, {RejectAfterMessages, ErrReplay}} {
		if err := m.Accept(ctx, s, st.counter); err != st.want {
			t.Errorf("Accept(%d) = %v, want %v", st.counter, err, st.want)
		}
	}
}

// TestMemoryStoreExpiry: an expired session is unknown at once and dropped
// by the next sweep; live ones stay.
func TestMemoryStoreExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := stoppedMemoryStore(t, katNow)
	live := testSession(t, ID{3}, katNow, katNow.Add(time.Hour))
	edge := testSession(t, ID{4}, katNow.Add(-time.Hour), katNow) // expires exactly now
	old := testSession(t, ID{5}, katNow.Add(-2*time.Hour), katNow.Add(-time.Hour))
	for _, s := range []*Session{live, edge, old} {
		m.Put(ctx, s)
	}
	for _, s := range []*Session{edge, old} {
		if _, err := m.Get(ctx, s.ClientID.ID()); err != ErrUnknownSession {
			t.Errorf("Get of an expired session = %v, want ErrUnknownSession", err)
		}
	}
	if m.Len() != 3 {
		t.Errorf("Len before the sweep = %d, want 3", m.Len())
	}
	m.Sweep()
	if m.Len() != 1 {
		t.Errorf("Len after the sweep = %d, want 1", m.Len())
	}
	if got, err := m.Get(ctx, live.ClientID.ID()); err != nil || got != live {
		t.Errorf("the live session is gone: %v", err)
	}
}

// TestMemoryStoreSweeper: the background sweeper runs on its own, and Close
// stops it (twice is fine).
func TestMemoryStoreSweeper(t *testing.T) {
	t.Parallel()
	m := NewMemoryStore(5 * time.Millisecond)
	now := time.Now()
	m.Put(context.Background(), testSession(t, ID{6}, now.Add(-time.Hour), now.Add(-time.Minute)))
	m.Put(context.Background(), testSession(t, ID{7}, now, now.Add(time.Hour)))
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper did not drop the expired session (Len %d)", m.Len())
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(context.Background(), ID{7}); err != ErrUnknownSession && err != nil {
		t.Errorf("store unreadable after Close: %v", err)
	}
}

// TestMemoryStoreConcurrent runs Get, Put, Delete, Accept and Sweep from many
// goroutines at once; run under -race.
func TestMemoryStoreConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryStore(time.Millisecond)
	defer m.Close()
	now := time.Now()
	sessions := make([]*Session, 64)
	for i := range sessions {
		sessions[i] = testSession(t, ID{byte(i), byte(i >> 8), 1}, now, now.Add(time.Hour))
		m.Put(ctx, sessions[i])
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				s := sessions[(i*7+w)%len(sessions)]
				switch i % 5 {
				case 0:
					m.Put(ctx, s)
				case 1:
					if w == 0 && i%50 == 1 {
						m.Delete(ctx, s.ClientID.ID())
					}
				case 2:
					m.Accept(ctx, s, uint64(i*8+w+1))
				case 3:
					m.Len()
				default:
					if got, err := m.Get(ctx, s.ClientID.ID()); err == nil && got != s {
						t.Errorf("Get returned another session")
					}
				}
			}
		})
	}
	wg.Wait()
}
