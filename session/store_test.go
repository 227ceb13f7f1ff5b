package session

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
)

// The Store contract, run against every implementation from one table.
// Redis-only behaviour (replicas, invalidation, outages) is in redis_test.go.

const testStoreSecret = "store-test-client-id-secret-0123456789abcdef"

func testSecrets(t testing.TB) *Secrets {
	t.Helper()
	s, err := NewSecrets(testStoreSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestSession makes a session with random keys, as pairing would.
func newTestSession(t testing.TB, sec *Secrets, life time.Duration) *Session {
	t.Helper()
	var id ID
	rand.Read(id[:])
	now := time.Now()
	return sessionWithID(sec, id, now, now.Add(life))
}

func sessionWithID(sec *Secrets, id ID, created, expires time.Time) *Session {
	var keys [numKeys][32]byte
	for i := range keys {
		rand.Read(keys[i][:])
	}
	return sessionFromKeys(SuiteMLKEM768X25519, sec.NewClientID(id, created), keys, created, expires)
}

type storeImpl struct {
	name string
	open func(t *testing.T, sec *Secrets) Store
}

// storeImpls starts what the implementations need (a redis-server) once per
// test and returns a constructor per implementation; each store closes in
// t.Cleanup.
func storeImpls(t *testing.T) []storeImpl {
	srv := redistest.Start(t)
	return []storeImpl{
		{"memory", func(t *testing.T, _ *Secrets) Store {
			m := NewMemoryStore(0)
			t.Cleanup(func() { m.Close() })
			return m
		}},
		{"redis", func(t *testing.T, sec *Secrets) Store {
			r := openTestRedis(t, srv, sec)
			waitHealthy(t, r)
			return r
		}},
	}
}

func TestStoreContract(t *testing.T) {
	sec := testSecrets(t)
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, st Store)
	}{
		{"GetUnknown", func(t *testing.T, st Store) {
			var id ID
			rand.Read(id[:])
			if _, err := st.Get(ctx, id); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("Get(unknown) = %v, want ErrUnknownSession", err)
			}
		}},
		{"PutGet", func(t *testing.T, st Store) {
			s := newTestSession(t, sec, time.Hour)
			mustPut(t, st, s)
			got, err := st.Get(ctx, s.ClientID.ID())
			if err != nil {
				t.Fatalf("Get after Put: %v", err)
			}
			if !sameSession(got, s) {
				t.Fatal("Get returned another session")
			}
		}},
		{"PutReplaces", func(t *testing.T, st Store) {
			s1 := newTestSession(t, sec, time.Hour)
			s2 := sessionWithID(sec, s1.ClientID.ID(), s1.Created.Add(time.Second), s1.Expires.Add(time.Second))
			for _, s := range []*Session{s1, s2} {
				mustPut(t, st, s)
			}
			got, err := st.Get(ctx, s1.ClientID.ID())
			if err != nil || !sameSession(got, s2) {
				t.Fatalf("Get after replacing Put: %v, same as the new one: %v", err, err == nil && sameSession(got, s2))
			}
		}},
		{"Delete", func(t *testing.T, st Store) {
			s := newTestSession(t, sec, time.Hour)
			mustPut(t, st, s)
			for range 2 { // deleting an unknown id is no error
				if err := st.Delete(ctx, s.ClientID.ID()); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.Get(ctx, s.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("Get after Delete = %v, want ErrUnknownSession", err)
			}
		}},
		{"Expiry", func(t *testing.T, st Store) {
			old := newTestSession(t, sec, -time.Second)
			mustPut(t, st, old)
			if _, err := st.Get(ctx, old.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("Get(expired at Put) = %v, want ErrUnknownSession", err)
			}
			s := newTestSession(t, sec, 300*time.Millisecond)
			mustPut(t, st, s)
			if _, err := st.Get(ctx, s.ClientID.ID()); err != nil {
				t.Fatalf("Get before expiry: %v", err)
			}
			time.Sleep(time.Until(s.Expires) + 50*time.Millisecond)
			if _, err := st.Get(ctx, s.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("Get after expiry = %v, want ErrUnknownSession", err)
			}
		}},
		{"AcceptOnce", func(t *testing.T, st Store) {
			s := newTestSession(t, sec, time.Hour)
			mustPut(t, st, s)
			// In order, out of order within the window, replays, the
			// window's edge, and counters no session may use.
			steps := []struct {
				counter uint64
				want    error
			}{
				{1, nil}, {1, ErrReplay}, {3, nil}, {2, nil}, {2, ErrReplay},
				{20000, nil}, {20000 - 16320, nil}, {20000 - 16321, ErrReplay},
				{19999, nil}, {3, ErrReplay},
				{0, ErrReplay}, {RejectAfterMessages, ErrReplay}, {RejectAfterMessages - 1, nil},
				{19998, ErrReplay}, // now far behind the newest
			}
			for i, step := range steps {
				if err := st.Accept(ctx, s, step.counter); !errors.Is(err, step.want) && err != step.want {
					t.Fatalf("step %d: Accept(%d) = %v, want %v", i, step.counter, err, step.want)
				}
			}
		}},
		{"AcceptConcurrent", func(t *testing.T, st Store) {
			s := newTestSession(t, sec, time.Hour)
			mustPut(t, st, s)
			// Every counter offered by several goroutines at once is
			// accepted exactly once.
			const counters, workers = 400, 6
			var accepted [counters + 1]atomic.Int32
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for c := uint64(1); c <= counters; c++ {
						if err := st.Accept(ctx, s, c); err == nil {
							accepted[c].Add(1)
						} else if !errors.Is(err, ErrReplay) {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			for c := 1; c <= counters; c++ {
				if n := accepted[c].Load(); n != 1 {
					t.Fatalf("counter %d accepted %d times", c, n)
				}
			}
		}},
		{"Concurrent", func(t *testing.T, st Store) {
			// Gets, Puts and Deletes of overlapping sessions at once; run
			// with -race this is the data-race check.
			sessions := make([]*Session, 8)
			for i := range sessions {
				sessions[i] = newTestSession(t, sec, time.Hour)
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 200 {
						s := sessions[(i+w)%len(sessions)]
						switch i % 4 {
						case 0:
							_ = st.Delete(ctx, s.ClientID.ID())
						case 1:
							_ = st.Put(ctx, s)
						default:
							if got, err := st.Get(ctx, s.ClientID.ID()); err == nil && got.ClientID != s.ClientID {
								t.Error("Get returned another id's session")
							}
						}
					}
				})
			}
			wg.Wait()
		}},
		{"CloseTwice", func(t *testing.T, st Store) {
			for range 2 {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, impl := range storeImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, impl.open(t, sec))
				})
			}
		})
	}
}
