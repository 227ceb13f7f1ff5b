package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/certtest"
	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/pqrelay/pqrelay/internal/syncbuf"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
)

// testRedisConfig points at srv with back-off and timeouts short enough for
// outage tests to finish in a second or two.
func testRedisConfig(t testing.TB, url string) RedisConfig {
	t.Helper()
	cfg, err := ParseRedisURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialTimeout = 500 * time.Millisecond
	cfg.retryMin = 10 * time.Millisecond
	cfg.retryMax = 100 * time.Millisecond
	return cfg
}

// localWindowConfig is testRedisConfig with RedisConfig.OutageLocalWindow
// (REDIS_OUTAGE=local-window).
func localWindowConfig(t testing.TB, srv *redistest.Server) RedisConfig {
	t.Helper()
	cfg := testRedisConfig(t, srv.URL())
	cfg.OutageLocalWindow = true
	return cfg
}

func openTestRedis(t testing.TB, srv *redistest.Server, sec *Secrets) *RedisStore {
	t.Helper()
	return openTestRedisConfig(t, testRedisConfig(t, srv.URL()), sec, nil)
}

func openTestRedisConfig(t testing.TB, cfg RedisConfig, sec *Secrets, log *slog.Logger) *RedisStore {
	t.Helper()
	r, err := NewRedisStore(cfg, sec, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// twoReplicas opens two stores on cfg, as two inbound replicas would, and
// waits until both are connected.
func twoReplicas(t testing.TB, cfg RedisConfig, sec *Secrets) (a, b *RedisStore) {
	t.Helper()
	a, b = openTestRedisConfig(t, cfg, sec, nil), openTestRedisConfig(t, cfg, sec, nil)
	waitHealthy(t, a)
	waitHealthy(t, b)
	return a, b
}

func waitHealthy(t testing.TB, r *RedisStore) {
	t.Helper()
	eventually(t, 5*time.Second, "redis store healthy", func() bool { return r.Health() == nil })
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	good := []struct {
		url  string
		want RedisConfig
		str  string
	}{
		{"redis://localhost:6379", RedisConfig{Addrs: []string{"localhost:6379"}}, "redis://localhost:6379"},
		{"redis://10.0.0.7", RedisConfig{Addrs: []string{"10.0.0.7:6379"}}, "redis://10.0.0.7:6379"},
		{"redis://:s3cret@cache:6380/2", RedisConfig{Addrs: []string{"cache:6380"}, DB: 2, password: "s3cret"}, "redis://:xxxxx@cache:6380/2"},
		{"rediss://relay:p%40ss@cache.example.com:6380/0", RedisConfig{TLS: true, Addrs: []string{"cache.example.com:6380"}, Username: "relay", password: "p@ss"}, "rediss://relay:xxxxx@cache.example.com:6380"},
		{"redis://[::1]:7000", RedisConfig{Addrs: []string{"[::1]:7000"}}, "redis://[::1]:7000"},
		{"redis://[::1]", RedisConfig{Addrs: []string{"[::1]:6379"}}, "redis://[::1]:6379"},
		{"redis://n1:7000?addr=n2:7001&addr=n3:7002", RedisConfig{Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}}, "redis://n1:7000?addr=n2%3A7001&addr=n3%3A7002"},
		{"redis://:pw@s1:26379/1?addr=s2:26379&master_set=mymaster", RedisConfig{Addrs: []string{"s1:26379", "s2:26379"}, DB: 1, MasterSet: "mymaster", password: "pw"}, "redis://:xxxxx@s1:26379/1?addr=s2%3A26379&master_set=mymaster"},
		{"redis://h:1?dial_timeout=3s", RedisConfig{Addrs: []string{"h:1"}, DialTimeout: 3 * time.Second}, "redis://h:1?dial_timeout=3s"},
	}
	for _, g := range good {
		got, err := ParseRedisURL(g.url)
		if err != nil {
			t.Errorf("ParseRedisURL(%q): %v", g.url, err)
			continue
		}
		if fmt.Sprint(got.Addrs) != fmt.Sprint(g.want.Addrs) || got.TLS != g.want.TLS || got.Username != g.want.Username ||
			got.password != g.want.password || got.DB != g.want.DB || got.MasterSet != g.want.MasterSet || got.DialTimeout != g.want.DialTimeout {
			t.Errorf("ParseRedisURL(%q) = %s, want %s", g.url, got, g.want)
		}
		if s := got.String(); s != g.str {
			t.Errorf("ParseRedisURL(%q).String() = %q, want %q", g.url, s, g.str)
		}
	}

	const pw = "hunter2-topsecret"
	bad := []struct{ url, says string }{
		{"", "empty"},
		{"localhost:6379", "scheme"},
		{"http://" + pw + "@h:1", `"http"`},
		{"unix:///tmp/redis.sock", `"unix"`},
		{"redis://:" + pw + "@h:port", `port`},
		{"redis://:" + pw + "@h:70000", `port "70000"`},
		{"redis://user@h:1", "without a password"},
		{"redis://u:@h:1", "empty password"},
		{"redis://:" + pw + "@h:1/x", `database "x"`},
		{"redis://:" + pw + "@h:1/-1", `database "-1"`},
		{"redis://:" + pw + "@h:1/0/1", "path"},
		{"redis://:" + pw + "@:1", "no host"},
		{"redis://:" + pw + "@h:1?protocol=2", `parameter "protocol"`},
		{"redis://:" + pw + "@h:1?addr=h2:x", `port "x"`},
		{"redis://:" + pw + "@h:1?master_set=", "master_set"},
		{"redis://:" + pw + "@h:1?dial_timeout=soon", "dial_timeout"},
		{"redis://:" + pw + "@h:1/3?addr=h2:2", "database 0"},
		{"redis://:" + pw + "@h:1#frag", "fragment"},
		{"redis://:" + pw + "@h\n:1", "not a URL"},
		{"redis://:" + pw + "@h\x7f:1", "not a URL"},
		{"redis:h:1", "two slashes"},
	}
	for _, b := range bad {
		_, err := ParseRedisURL(b.url)
		if err == nil {
			t.Errorf("ParseRedisURL(%q) succeeded", b.url)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "REDIS_URL: ") || !strings.Contains(msg, b.says) || strings.Contains(msg, "\n") {
			t.Errorf("ParseRedisURL(%q) = %q, want one line starting REDIS_URL: and saying %q", b.url, msg, b.says)
		}
		if strings.Contains(msg, pw) {
			t.Errorf("ParseRedisURL(%q) error repeats the password: %q", b.url, msg)
		}
	}
}

func TestRedisConfigRedactsPassword(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-topsecret"
	cfg, err := ParseRedisURL("rediss://relay:" + pw + "@cache:6380/1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cfg.String(), cfg.GoString(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, &cfg)} {
		if strings.Contains(s, pw) {
			t.Fatalf("password printed: %s", s)
		}
	}
}

func TestRedisCrossReplica(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a, b := twoReplicas(t, testRedisConfig(t, srv.URL()), sec)

	s := newTestSession(t, sec, time.Hour)
	mustPut(t, a, s)
	// Redis echoes a's own write back as an invalidation; a keeps serving
	// the very *Session it paired (and its replay window), without asking
	// Redis.
	eventually(t, 2*time.Second, "a hears its own write", func() bool { return a.stats.invalidations.Load() > 0 })
	if got, err := a.Get(ctx, s.ClientID.ID()); err != nil || got != s {
		t.Fatalf("a.Get after its own Put: %v, same *Session: %v", err, got == s)
	}
	if n := a.stats.loads.Load(); n != 0 {
		t.Fatalf("a read its own session from Redis %d times", n)
	}
	got, err := b.Get(ctx, s.ClientID.ID())
	if err != nil || !sameSession(got, s) {
		t.Fatalf("replica b: Get of a's session: %v", err)
	}
	// Seen once, b serves it from memory: no more round trips.
	loads := b.stats.loads.Load()
	for range 100 {
		if g, err := b.Get(ctx, s.ClientID.ID()); err != nil || g != got {
			t.Fatalf("second Get: %v, same object: %v", err, g == got)
		}
	}
	if n := b.stats.loads.Load() - loads; n != 0 {
		t.Fatalf("%d Redis reads for a session b already holds", n)
	}

	// A frame accepted by a and replayed to b is refused, and the other
	// way round; fresh counters pass on either.
	sa, _ := a.Get(ctx, s.ClientID.ID())
	for c := uint64(1); c <= 50; c++ {
		first, second := a, b
		s1, s2 := sa, got
		if c%2 == 0 {
			first, second, s1, s2 = b, a, got, sa
		}
		if err := first.Accept(ctx, s1, c); err != nil {
			t.Fatalf("counter %d: first Accept: %v", c, err)
		}
		if err := second.Accept(ctx, s2, c); !errors.Is(err, ErrReplay) {
			t.Fatalf("counter %d replayed to the other replica: %v, want ErrReplay", c, err)
		}
	}
	// An in-replica replay costs no Redis command.
	accepts := a.stats.accepts.Load()
	if err := a.Accept(ctx, sa, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay on the same replica: %v", err)
	}
	if a.stats.accepts.Load() != accepts {
		t.Fatal("a replay the local window refuses went to Redis")
	}
}

// Many replicas racing on the same counters: each is accepted exactly once
// in the fleet.
func TestRedisAcceptRace(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	s := newTestSession(t, sec, time.Hour)
	const replicas, counters = 4, 300
	stores := make([]*RedisStore, replicas)
	for i := range stores {
		stores[i] = openTestRedis(t, srv, sec)
		waitHealthy(t, stores[i])
	}
	if err := stores[0].Put(ctx, s); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepted := make(map[uint64]int)
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Go(func() {
			local, err := st.Get(ctx, s.ClientID.ID())
			if err != nil {
				t.Error(err)
				return
			}
			for c := uint64(1); c <= counters; c++ {
				if err := st.Accept(ctx, local, c); err == nil {
					mu.Lock()
					accepted[c]++
					mu.Unlock()
				} else if !errors.Is(err, ErrReplay) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for c := uint64(1); c <= counters; c++ {
		if accepted[c] != 1 {
			t.Fatalf("counter %d accepted %d times across the fleet", c, accepted[c])
		}
	}
}

// The shared record accepts each counter exactly once, in any order, across
// chunk boundaries: checked against a plain set on random sequences.
func TestRedisSharedRecordExact(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	r := openTestRedis(t, srv, sec)
	waitHealthy(t, r)
	c := r.client.Load()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		s := newTestSession(t, sec, time.Hour)
		seen := make(map[uint64]bool)
		next := uint64(1)
		for i := range 3000 {
			var counter uint64
			switch p := rng.IntN(100); {
			case p < 50:
				counter = next
				next++
			case p < 80: // behind
				counter = 1 + uint64(rng.Int64N(int64(next)))
			case p < 95: // ahead
				counter = next + uint64(rng.IntN(3000))
			default: // far ahead, over several chunks
				next += uint64(rng.IntN(5 * chunkCounters))
				counter = next
			}
			got, err := r.acceptShared(ctx, c, s, counter)
			if err != nil {
				t.Fatal(err)
			}
			if got != seen[counter] {
				t.Fatalf("round %d step %d: counter %d: shared record says seen=%v, want %v", round, i, counter, got, seen[counter])
			}
			seen[counter] = true
		}
	}
	// The highest counter a session may use fits.
	s := newTestSession(t, sec, time.Hour)
	for i, want := range []bool{false, true} {
		if got, err := r.acceptShared(ctx, c, s, RejectAfterMessages-1); err != nil || got != want {
			t.Fatalf("attempt %d at 2^32-1: seen=%v err=%v, want %v", i, got, err, want)
		}
	}
}

// Chunks of the shared record expire: the current one with the session, a
// finished one chunkRetire after the next one starts; each chunk is stamped
// once, not on every request.
func TestRedisSharedRecordExpiry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a, b := twoReplicas(t, testRedisConfig(t, srv.URL()), sec)
	s := newTestSession(t, sec, 30*time.Minute)
	mustPut(t, a, s)
	sb, err := b.Get(ctx, s.ClientID.ID())
	if err != nil {
		t.Fatal(err)
	}
	pttl := func(chunk uint64) time.Duration {
		t.Helper()
		v, err := srv.Do("PTTL", keysFor("").chunkKey(s, chunk))
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := strconv.ParseInt(v, 10, 64)
		return time.Duration(ms) * time.Millisecond
	}
	for c := uint64(1); c < chunkCounters; c += 7 {
		if err := a.Accept(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.stats.stamps.Load(); n != 1 {
		t.Fatalf("%d stamps for one chunk, want 1", n)
	}
	life := time.Until(s.Expires) + MaxClockSkew
	if d := pttl(0); d < life-5*time.Second || d > life+time.Second {
		t.Fatalf("current chunk expires in %v, want about %v", d, life)
	}
	// b starts chunk 1: it stamps it and retires chunk 0.
	if err := b.Accept(ctx, sb, chunkCounters+3); err != nil {
		t.Fatal(err)
	}
	if err := a.Accept(ctx, s, chunkCounters+4); err != nil {
		t.Fatal(err)
	}
	if a.stats.stamps.Load() != 1 || b.stats.stamps.Load() != 1 {
		t.Fatalf("stamps: a %d, b %d; want 1 each", a.stats.stamps.Load(), b.stats.stamps.Load())
	}
	if d := pttl(0); d <= 0 || d > chunkRetire {
		t.Fatalf("finished chunk expires in %v, want at most %v", d, chunkRetire)
	}
	if d := pttl(1); d < life-5*time.Second || d > life+time.Second {
		t.Fatalf("new chunk expires in %v, want about %v", d, life)
	}
	// Until it expires, the finished chunk still refuses replays.
	if err := b.Accept(ctx, sessionWithKeysOf(s), 8); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay from the finished chunk: %v, want ErrReplay", err)
	}
}

// Invalidation: a session deleted or replaced on one replica is not served
// stale by another once the invalidation has arrived.
func TestRedisInvalidation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a, b := twoReplicas(t, testRedisConfig(t, srv.URL()), sec)

	t.Run("Delete", func(t *testing.T) {
		s := newTestSession(t, sec, time.Hour)
		id := s.ClientID.ID()
		mustPut(t, a, s)
		if _, err := b.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "b drops the deleted session", func() bool {
			_, ok := b.GetLocal(id)
			return !ok
		})
		if _, err := b.Get(ctx, id); !errors.Is(err, ErrUnknownSession) {
			t.Fatalf("b.Get after a.Delete = %v, want ErrUnknownSession", err)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		s1 := newTestSession(t, sec, time.Hour)
		id := s1.ClientID.ID()
		s2 := sessionWithID(sec, id, s1.Created.Add(time.Second), s1.Expires)
		mustPut(t, a, s1)
		if got, err := b.Get(ctx, id); err != nil || !sameSession(got, s1) {
			t.Fatal("b does not see s1", err)
		}
		mustPut(t, a, s2)
		eventually(t, 2*time.Second, "b drops the replaced session", func() bool {
			got, ok := b.GetLocal(id)
			return !ok || !sameSession(got, s1)
		})
		if got, err := b.Get(ctx, id); err != nil || !sameSession(got, s2) {
			t.Fatalf("b.Get after a replaced the session: %v", err)
		}
	})
	t.Run("Repeated", func(t *testing.T) {
		// Many rounds of replace-then-delete: once b has heard of a
		// change, it never serves what was there before.
		for range 40 {
			s1 := newTestSession(t, sec, time.Hour)
			id := s1.ClientID.ID()
			mustPut(t, a, s1)
			if _, err := b.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			heard := b.stats.invalidations.Load()
			s2 := sessionWithID(sec, id, s1.Created.Add(time.Second), s1.Expires)
			mustPut(t, a, s2)
			eventually(t, 2*time.Second, "b hears of the replacement", func() bool { return b.stats.invalidations.Load() > heard })
			if got, err := b.Get(ctx, id); err != nil || !sameSession(got, s2) {
				t.Fatalf("b after the replacement: %v, stale: %v", err, err == nil && sameSession(got, s1))
			}
			heard = b.stats.invalidations.Load()
			if err := a.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			eventually(t, 2*time.Second, "b hears of the delete", func() bool { return b.stats.invalidations.Load() > heard })
			if _, err := b.Get(ctx, id); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("b after the delete: %v", err)
			}
		}
	})
	t.Run("PairedHere", func(t *testing.T) {
		// b paired the session itself (never read it from Redis): a's
		// Delete still reaches it, through broadcast tracking.
		s := newTestSession(t, sec, time.Hour)
		id := s.ClientID.ID()
		mustPut(t, b, s)
		if _, err := b.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "b drops the session it paired", func() bool {
			_, err := b.Get(ctx, id)
			return errors.Is(err, ErrUnknownSession)
		})
	})
}

// Invalidations lost with a connection: b holds a session, every connection
// is killed, a deletes the session before b reconnects; b must not serve it.
func TestRedisLostInvalidations(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a, b := twoReplicas(t, testRedisConfig(t, srv.URL()), sec)
	s := newTestSession(t, sec, time.Hour)
	id := s.ClientID.ID()
	mustPut(t, a, s)
	if _, err := b.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	gen := b.gen.Load()
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "b notices its connections closed", func() bool { return b.gen.Load() != gen })
	// a's connections died too; its Delete reconnects (or is kept and
	// flushed after a short outage).
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, a)
	eventually(t, 2*time.Second, "a tombstone replaces the session in Redis", func() bool {
		return isTombstone(srv, id)
	})
	waitHealthy(t, b)
	if got, err := b.Get(ctx, id); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("b served a session deleted while its connection was down: %v %v", got, err)
	}

	// A session that is still in Redis is confirmed and kept, with its
	// replay window.
	s2 := newTestSession(t, sec, time.Hour)
	mustPut(t, a, s2)
	first, err := b.Get(ctx, s2.ClientID.ID())
	if err != nil {
		t.Fatal(err)
	}
	gen = b.gen.Load()
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "b notices its connections closed", func() bool { return b.gen.Load() != gen })
	eventually(t, 2*time.Second, "b confirms the session", func() bool {
		got, err := b.Get(ctx, s2.ClientID.ID())
		return err == nil && got == first
	})
}

// A Redis dump holds no key material: the session blob is sealed, the window
// holds counters only, and both expire with the session.
func TestRedisAtRest(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	r := openTestRedis(t, srv, sec)
	waitHealthy(t, r)
	s := newTestSession(t, sec, 30*time.Minute)
	mustPut(t, r, s)
	for c := uint64(1); c <= 100; c++ {
		if err := r.Accept(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := srv.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(keys, "\n")
	if len(names) != 3 {
		t.Fatalf("keys in Redis: %q, want the session, its window and the epoch", names)
	}
	for _, name := range names {
		v, err := srv.Do("GET", name)
		if err != nil {
			t.Fatal(err)
		}
		if name == keysFor("").epoch {
			// The one key without a TTL: it dates the data, and holds only
			// a time.
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				t.Errorf("epoch %q is not a time in µs", v)
			}
			continue
		}
		switch {
		case name == keysFor("").sessionKey(s.ClientID.ID()):
			if len(v) != SealedSessionLen {
				t.Errorf("session blob is %d bytes, want %d", len(v), SealedSessionLen)
			}
		case name == keysFor("").chunkKey(s, 0):
			if len(v) > chunkCounters/8+1 {
				t.Errorf("replay chunk is %d bytes, want at most %d", len(v), chunkCounters/8+1)
			}

		default:
			t.Errorf("unexpected key %q", name)
		}
		for i := range s.keys {
			for off := 0; off+8 <= 32; off += 4 { // no 8-byte run of any key
				if strings.Contains(v, string(s.keys[i][off:off+8])) {
					t.Fatalf("%s holds session key material", name)
				}
			}
		}
		if strings.Contains(v, string(s.ClientID[24:])) {
			t.Fatalf("%s holds the client id's MAC", name)
		}
		pttl, err := srv.Do("PTTL", name)
		if err != nil {
			t.Fatal(err)
		}
		var ms int64
		fmt.Sscan(pttl, &ms)
		life := time.Until(s.Expires).Milliseconds()
		if ms < life-5000 || ms > life+MaxClockSkew.Milliseconds()+1000 {
			t.Errorf("%s expires in %d ms, want about %d", name, ms, life)
		}
	}
}

// Outage, default policy: Redis stops mid-use. Sessions shared through it
// are refused (Get says unknown, so the outbound relay pairs anew), new
// pairings are kept and work on their local window, deletes are kept; the
// outage is logged once and shows in Health; the store recovers by itself,
// writes what it kept, and keeps on this replica what served requests.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	// This Redis keeps its data across the restart (an append-only file
	// synced on every write), so the delete kept during the outage has
	// something to delete when it is flushed.
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	sec := testSecrets(t)
	ctx := context.Background()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	a := openTestRedisConfig(t, testRedisConfig(t, srv.URL()), sec, log)
	waitHealthy(t, a)

	shared := newTestSession(t, sec, time.Hour)
	doomed := newTestSession(t, sec, time.Hour)
	for _, s := range []*Session{shared, doomed} {
		mustPut(t, a, s)
	}
	shared, _ = a.Get(ctx, shared.ClientID.ID())
	if err := a.Accept(ctx, shared, 1); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	// The first command to fail starts the outage.
	if err := a.Accept(ctx, shared, 2); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Accept of a shared session during the outage = %v, want ErrStoreUnavailable", err)
	}
	if _, err := a.Get(ctx, shared.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("Get of a shared session during the outage = %v, want ErrUnknownSession", err)
	}
	health := a.Health()
	if health == nil || !strings.HasPrefix(health.Error(), "redis unreachable since ") {
		t.Fatalf("Health during outage = %v", health)
	}

	// Pairing still works: the new sessions are this replica's alone.
	used := newTestSession(t, sec, time.Hour)
	idle := newTestSession(t, sec, time.Hour)
	for _, s := range []*Session{used, idle} {
		if err := a.Put(ctx, s); err != nil {
			t.Fatalf("Put during outage: %v", err)
		}
	}
	if got, err := a.Get(ctx, used.ClientID.ID()); err != nil || got != used {
		t.Fatalf("Get of a session paired during the outage: %v", err)
	}
	for c := uint64(1); c <= 20; c++ {
		if err := a.Accept(ctx, used, c); err != nil {
			t.Fatalf("Accept for a session paired during the outage: %v", err)
		}
	}
	if err := a.Accept(ctx, used, 7); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay during outage: %v, want ErrReplay", err)
	}
	if err := a.Delete(ctx, doomed.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	if h := a.Health(); h == nil || !strings.Contains(h.Error(), "3 session writes waiting") {
		t.Fatalf("Health with kept writes = %v", h)
	}

	// Redis comes back on the same port, with its data.
	srv.Restart()
	waitHealthy(t, a)
	b := openTestRedis(t, srv, sec)
	waitHealthy(t, b)
	if !isTombstone(srv, doomed.ClientID.ID()) {
		t.Fatal("the delete kept during the outage did not leave a tombstone in Redis")
	}
	if _, err := b.Get(ctx, doomed.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("replica b serves a session deleted during the outage: %v", err)
	}
	if got, err := b.Get(ctx, idle.ClientID.ID()); err != nil || !sameSession(got, idle) {
		t.Fatalf("replica b: unused session paired during the outage: %v", err)
	}
	// The session that served requests on its local window stays here:
	// another replica must not accept those frames again.
	if _, err := b.Get(ctx, used.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("replica b sees a session used during the outage: %v", err)
	}
	if got, err := a.Get(ctx, used.ClientID.ID()); err != nil || got != used {
		t.Fatalf("a no longer serves the session it kept: %v", err)
	}
	if err := a.Accept(ctx, used, 21); err != nil {
		t.Fatal(err)
	}
	// Shared sessions are back, with the shared record.
	sa, err := a.Get(ctx, shared.ClientID.ID())
	if err != nil {
		t.Fatalf("shared session after recovery: %v", err)
	}
	if err := a.Accept(ctx, sa, 100); err != nil {
		t.Fatal(err)
	}
	sb, err := b.Get(ctx, shared.ClientID.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Accept(ctx, sb, 100); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay to b after recovery: %v, want ErrReplay", err)
	}

	out := logs.String()
	if n := strings.Count(out, "redis unreachable:"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "redis reachable") || !strings.Contains(out, "kept_on_this_replica=1") {
		t.Errorf("recovery not logged as expected:\n%s", out)
	}
	if strings.Contains(out, testStoreSecret) {
		t.Error("logs hold CLIENT_ID_SECRET")
	}
}

// Outage with OutageLocalWindow: shared sessions stay usable on every
// replica, each checking replays on its own window only.
func TestRedisOutageLocalWindow(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	cfg := localWindowConfig(t, srv)
	logs := &syncbuf.Buffer{}
	a, b := openTestRedisConfig(t, cfg, sec, slog.New(slog.NewTextHandler(logs, nil))), openTestRedisConfig(t, cfg, sec, nil)
	waitHealthy(t, a)
	waitHealthy(t, b)
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, a, s)
	sa, _ := a.Get(ctx, s.ClientID.ID())
	sb, err := b.Get(ctx, s.ClientID.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Accept(ctx, sa, 1); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for c := uint64(2); c < 20; c++ {
		if err := a.Accept(ctx, sa, c); err != nil {
			t.Fatalf("Accept during outage: %v", err)
		}
		if got, err := a.Get(ctx, s.ClientID.ID()); err != nil || got != sa {
			t.Fatalf("Get of a known session during outage: %v", err)
		}
	}
	if err := a.Accept(ctx, sa, 5); !errors.Is(err, ErrReplay) {
		t.Fatalf("in-replica replay during outage: %v, want ErrReplay", err)
	}
	// The documented weakness: b has not seen counter 5.
	if err := b.Accept(ctx, sb, 5); err != nil {
		t.Fatalf("b during the outage: %v (the local window alone decides)", err)
	}
	if a.Health() == nil {
		t.Fatal("Health reports no outage")
	}
	srv.Restart()
	waitHealthy(t, a)
	waitHealthy(t, b)
	// Redis came back empty. a and b still hold the session, and each
	// confirms it with Redis before serving it again: the first to ask
	// writes it back, the other finds it there, and both keep their
	// entries with their windows.
	if got, err := a.Get(ctx, s.ClientID.ID()); err != nil || got != sa {
		t.Fatalf("a after Redis lost the session: %v (same entry: %v)", err, got == sa)
	}
	if _, err := srv.Do("GET", keysFor("").sessionKey(s.ClientID.ID())); err != nil {
		t.Fatalf("the session was not written back: %v", err)
	}
	if got, err := b.Get(ctx, s.ClientID.ID()); err != nil || got != sb {
		t.Fatalf("b after Redis lost the session: %v (same entry: %v)", err, got == sb)
	}
	if err := b.Accept(ctx, sb, 5); !errors.Is(err, ErrReplay) {
		t.Fatalf("b's window was not kept: Accept(5) = %v, want ErrReplay", err)
	}
	if n := a.stats.writeBacks.Load() + b.stats.writeBacks.Load(); n < 1 || n > 2 {
		t.Fatalf("%d write-backs, want 1 (or 2 if both raced)", n)
	}
	if n := strings.Count(logs.String(), "redis lost sessions this replica holds"); n != 1 {
		t.Fatalf("the write-back logged %d times, want once:\n%s", n, logs.String())
	}
	// A replica that never held it reads it from Redis.
	c := openTestRedisConfig(t, cfg, sec, nil)
	waitHealthy(t, c)
	if got, err := c.Get(ctx, s.ClientID.ID()); err != nil || !sameSession(got, s) {
		t.Fatalf("a third replica: %v", err)
	}
	// A deleted session is not written back: its tombstone says so.
	if err := c.Delete(ctx, s.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a drops the deleted session", func() bool {
		_, err := a.Get(ctx, s.ClientID.ID())
		return errors.Is(err, ErrUnknownSession)
	})
	if !isTombstone(srv, s.ClientID.ID()) {
		t.Fatal("a deleted session was written back")
	}
}

// Replicas that hold a session Redis lost race to write it back; the ones
// that lose the race must read the winner's copy, not answer "unknown".
func TestRedisWriteBackRace(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	cfg := localWindowConfig(t, srv)
	a, b := twoReplicas(t, cfg, sec)
	replicas := []*RedisStore{a, b}
	const rounds, getters = 10, 16
	for round := range rounds {
		s := newTestSession(t, sec, time.Hour)
		id := s.ClientID.ID()
		if err := replicas[0].Put(ctx, s); err != nil {
			t.Fatal(err)
		}
		gens := make([]uint64, len(replicas))
		for i, r := range replicas {
			if _, err := r.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
			gens[i] = r.gen.Load()
		}
		// FLUSHALL loses the session; Redis tells every tracking client
		// with a nil invalidation, so each entry must be confirmed.
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		for i, r := range replicas {
			eventually(t, 2*time.Second, "the flush is noticed", func() bool { return r.gen.Load() != gens[i] })
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		for _, r := range replicas {
			for range getters {
				wg.Go(func() {
					if _, err := r.Get(ctx, id); err != nil {
						failed.Add(1)
					}
				})
			}
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Fatalf("round %d: %d of %d Gets failed after Redis lost a session both replicas hold", round, n, getters*len(replicas))
		}
	}
}

// By default a session Redis lost is dropped, not written back: its replay
// record is gone with it, and outbound relays pair anew.
func TestRedisLostSessionDropped(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	a := openTestRedis(t, srv, sec)
	waitHealthy(t, a)
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, a, s)
	if _, err := a.Get(ctx, s.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	gen := a.gen.Load()
	srv.Kill()
	srv.Restart()
	eventually(t, 2*time.Second, "a notices its connection closed", func() bool { return a.gen.Load() != gen })
	waitHealthy(t, a)
	if _, err := a.Get(ctx, s.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("a serves a session Redis lost: %v", err)
	}
	if _, err := srv.Do("GET", keysFor("").sessionKey(s.ClientID.ID())); !errors.Is(err, redistest.ErrNil) {
		t.Fatalf("a lost session was written back without OutageLocalWindow: %v", err)
	}
	if n := a.stats.writeBacks.Load(); n != 0 {
		t.Fatalf("%d write-backs", n)
	}
}

// isTombstone reports whether Redis holds Delete's tombstone for id.
func isTombstone(srv *redistest.Server, id ID) bool {
	v, err := srv.Do("GET", keysFor("").sessionKey(id))
	return err == nil && v == tombstone
}

// An idle replica notices an outage without a request failing, so Health
// tells the truth, and notices the recovery too.
func TestRedisIdleOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := openTestRedis(t, srv, testSecrets(t))
	waitHealthy(t, r)
	srv.Kill()
	eventually(t, 3*time.Second, "Health reports the outage", func() bool { return r.Health() != nil })
	srv.Restart()
	waitHealthy(t, r)
}

// sessionWithKeysOf is s as another replica would load it: same keys, its
// own local window.
func sessionWithKeysOf(s *Session) *Session {
	return sessionFromKeys(s.Suite, s.ClientID, s.keys, s.Created, s.Expires)
}

// Start-up with Redis down: NewRedisStore returns at once, serves from
// memory, logs the retries, and connects when Redis appears.
func TestRedisStartsWithoutRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	srv.Stop()
	sec := testSecrets(t)
	ctx := context.Background()
	logs := &syncbuf.Buffer{}
	cfg := testRedisConfig(t, "redis://:hunter2-topsecret@"+srv.Addr)
	cfg.logEvery = time.Hour
	start := time.Now()
	r := openTestRedisConfig(t, cfg, sec, slog.New(slog.NewTextHandler(logs, nil)))
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("NewRedisStore took %v with Redis down", d)
	}
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, r, s)
	if got, err := r.Get(ctx, s.ClientID.ID()); err != nil || got != s {
		t.Fatalf("Get before Redis is up: %v", err)
	}
	if err := r.Accept(ctx, s, 1); err != nil {
		t.Fatal(err)
	}
	idle := newTestSession(t, sec, time.Hour)
	mustPut(t, r, idle)
	time.Sleep(100 * time.Millisecond) // a few attempts
	if h := r.Health(); h == nil || !strings.Contains(h.Error(), "redis unreachable since") {
		t.Fatalf("Health before Redis is up = %v", h)
	}
	srv.Restart()
	// The server has no password: AUTH fails and the store keeps trying.
	// Set one and it connects.
	if _, err := srv.Do("CONFIG", "SET", "requirepass", "hunter2-topsecret"); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, r)
	out := logs.String()
	if n := strings.Count(out, "retrying with back-off"); n != 1 {
		t.Errorf("start-up failures logged %d times within logEvery, want 1:\n%s", n, out)
	}
	if strings.Contains(out, "hunter2-topsecret") {
		t.Errorf("logs hold the Redis password:\n%s", out)
	}
	if h := r.Health(); h != nil {
		t.Fatal(h)
	}
	// The session paired before Redis was reached and not used is shared
	// now; the one that served a request stays here.
	srv.Password = "hunter2-topsecret"
	if n, err := srv.Do("EXISTS", keysFor("").sessionKey(idle.ClientID.ID()), keysFor("").sessionKey(s.ClientID.ID())); err != nil || n != "1" {
		t.Fatalf("sessions in Redis: %s %v, want the unused one only", n, err)
	}
}

// No goroutine outlives Close, after use and after an outage.
func TestRedisCloseLeaksNothing(t *testing.T) {
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	runtime.GC()
	before := runtime.NumGoroutine()
	for range 3 {
		r, err := NewRedisStore(testRedisConfig(t, srv.URL()), sec, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, r)
		s := newTestSession(t, sec, time.Hour)
		_ = r.Put(ctx, s)
		_, _ = r.Get(ctx, s.ClientID.ID())
		_ = r.Accept(ctx, s, 1)
		srv.Kill()
		_ = r.Accept(ctx, s, 2)
		srv.Restart()
		waitHealthy(t, r)
		r.Close()
	}
	// A store closed while Redis is down and it is still dialling.
	srv.Kill()
	r, _ := NewRedisStore(testRedisConfig(t, srv.URL()), sec, nil)
	time.Sleep(30 * time.Millisecond)
	r.Close()
	eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// The same fleet behaviour through rueidis's Cluster and Sentinel clients,
// with the URL forms docs/REDIS.md documents.
func TestRedisClusterAndSentinel(t *testing.T) {
	t.Parallel()
	sec := testSecrets(t)
	urls := map[string]func(t *testing.T) string{
		"Cluster": func(t *testing.T) string {
			nodes := redistest.StartCluster(t, 3)
			return "redis://" + nodes[0].Addr + "?addr=" + nodes[1].Addr + "&addr=" + nodes[2].Addr
		},
		"Sentinel": func(t *testing.T) string {
			master := redistest.Start(t)
			sentinel := redistest.StartSentinel(t, master, "relays")
			return "redis://" + sentinel.Addr + "/0?master_set=relays"
		},
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := testRedisConfig(t, url(t))
			a, b := twoReplicas(t, cfg, sec)
			// Enough sessions to land on every cluster node.
			sessions := make([]*Session, 24)
			for i := range sessions {
				sessions[i] = newTestSession(t, sec, time.Hour)
				mustPut(t, a, sessions[i])
			}
			for _, s := range sessions {
				sb, err := b.Get(ctx, s.ClientID.ID())
				if err != nil || !sameSession(sb, s) {
					t.Fatalf("b.Get of a's session: %v", err)
				}
				if err := a.Accept(ctx, s, 1); err != nil {
					t.Fatal(err)
				}
				if err := b.Accept(ctx, sb, 1); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay to b: %v, want ErrReplay", err)
				}
				if err := a.Delete(ctx, s.ClientID.ID()); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range sessions {
				eventually(t, 2*time.Second, "b drops a deleted session", func() bool {
					_, err := b.Get(ctx, s.ClientID.ID())
					return errors.Is(err, ErrUnknownSession)
				})
			}
		})
	}
}

// The ACL docs/REDIS.md gives is enough: a user limited to it can pair,
// look up, accept and delete.
func TestRedisACLUser(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	acl := strings.Fields(redisACL)
	if _, err := srv.Do(append([]string{"ACL", "SETUSER", "relay", "on", ">relay-password-0123"}, acl...)...); err != nil {
		t.Fatal(err)
	}
	sec := testSecrets(t)
	ctx := context.Background()
	logs := &syncbuf.Buffer{}
	r := openTestRedisConfig(t, testRedisConfig(t, "redis://relay:relay-password-0123@"+srv.Addr), sec,
		slog.New(slog.NewTextHandler(logs, nil)))
	eventually(t, 5*time.Second, "the limited user connects", func() bool { return r.Health() == nil })
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, r, s)
	for c := uint64(1); c <= chunkCounters+2; c += chunkCounters / 2 {
		if err := r.Accept(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	b := openTestRedisConfig(t, testRedisConfig(t, "redis://relay:relay-password-0123@"+srv.Addr), sec, nil)
	waitHealthy(t, b)
	if _, err := b.Get(ctx, s.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, s.ClientID.ID()); err != nil {
		t.Fatal(err)
	}
	if r.Health() != nil || strings.Contains(logs.String(), "NOPERM") {
		t.Fatalf("the limited user lacks a permission: %v\n%s", r.Health(), logs.String())
	}
}

// redisACL is the user rule docs/REDIS.md recommends.
const redisACL = `~pqrelay:* resetchannels -@all +get +set +bitfield +setbit +pexpire +pexpireat +pttl +multi +exec +ping +time +hello +auth +select +client|tracking +client|setname`

// TestRedisTLS: rediss:// to a real redis-server serving TLS with a private
// CA and requiring client certificates (REDIS_CA_FILE, REDIS_CERT_FILE,
// REDIS_KEY_FILE); without the CA or the client certificate the store
// stays unhealthy and says why.
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "redis CA")
	caFile := ca.Write(t, dir, "ca")
	srvCert, srvKey := ca.Issue(t, certtest.Options{}).Write(t, dir, "redis")
	cliCert, cliKey := ca.Issue(t, certtest.Options{CommonName: "relay", Client: true}).Write(t, dir, "relay")
	srv := redistest.StartTLS(t, redistest.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: caFile, AuthClients: true})
	sec := testSecrets(t)

	tlsFor := func(kv ...string) *tls.Config {
		env := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		st, err := tlsconf.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		set, err := tlsconf.Load(st)
		if err != nil {
			t.Fatal(err)
		}
		return set.Redis.Config("127.0.0.1")
	}
	cases := []struct {
		name    string
		tls     *tls.Config
		healthy bool
		why     string // in Health's error when not healthy
	}{
		{"private CA and client certificate", tlsFor("REDIS_CA_FILE", caFile, "REDIS_CERT_FILE", cliCert, "REDIS_KEY_FILE", cliKey), true, ""},
		// redis-server resets the connection without a TLS alert.
		{"no client certificate", tlsFor("REDIS_CA_FILE", caFile), false, "unreachable"},
		{"system roots", nil, false, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testRedisConfig(t, srv.TLSURL())
			cfg.TLSConfig = c.tls
			r := openTestRedisConfig(t, cfg, sec, nil)
			if !c.healthy {
				eventually(t, 5*time.Second, "a connection attempt fails", func() bool {
					err := r.Health()
					return err != nil && strings.Contains(err.Error(), c.why)
				})
				time.Sleep(100 * time.Millisecond) // and it stays so
				if err := r.Health(); err == nil {
					t.Fatal("the store connected")
				}
				return
			}
			waitHealthy(t, r)
			s := newTestSession(t, sec, time.Hour)
			mustPut(t, r, s)
			b := openTestRedisConfig(t, cfg, sec, nil)
			waitHealthy(t, b)
			if _, err := b.Get(context.Background(), s.ClientID.ID()); err != nil {
				t.Fatalf("the second replica does not see the session: %v", err)
			}
		})
	}
}

// TestRedisNamespaces: two stores of one relay's DOMAIN_MAP entries on one
// Redis, with the same secret, keep apart: a session put in one is unknown
// to the other (on its own and on a second replica), its replay record is
// its own, and every key is under the entry's namespace.
func TestRedisNamespaces(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sec := testSecrets(t)
	ctx := context.Background()
	open := func(namespace string) *RedisStore {
		cfg := testRedisConfig(t, srv.URL())
		cfg.Namespace = namespace
		r := openTestRedisConfig(t, cfg, sec, nil)
		waitHealthy(t, r)
		return r
	}
	one, two, oneAgain := open("api.example.com"), open("api.example.com:8443"), open("api.example.com")
	s := newTestSession(t, sec, time.Hour)
	mustPut(t, one, s)
	if err := one.Accept(ctx, s, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Get(ctx, s.ClientID.ID()); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("another entry's store found the session: %v", err)
	}
	if _, ok := two.GetLocal(s.ClientID.ID()); ok {
		t.Fatal("another entry's store holds the session locally")
	}
	got, err := oneAgain.Get(ctx, s.ClientID.ID())
	if err != nil {
		t.Fatalf("a replica of the same entry: %v", err)
	}
	if err := oneAgain.Accept(ctx, got, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("the same entry's replica accepted counter 1 again: %v", err)
	}
	keys, err := srv.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	for name := range strings.SplitSeq(keys, "\n") {
		if !strings.HasPrefix(name, "pqrelay:d:api.example.com:") && !strings.HasPrefix(name, "pqrelay:d:api.example.com:8443:") {
			t.Errorf("key %q is outside the entries' namespaces", name)
		}
	}
	if !strings.Contains(keys, "pqrelay:d:api.example.com:s:") || !strings.Contains(keys, "pqrelay:d:api.example.com:r:") {
		t.Errorf("keys in Redis: %q, want the entry's session and replay record under pqrelay:d:api.example.com:", keys)
	}
}
