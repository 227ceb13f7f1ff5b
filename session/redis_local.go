package session

import (
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"
)

// localSessions is the Redis store's in-process layer: sharded maps like
// MemoryStore's, but each entry remembers whether Redis confirmed it and
// under which connection generation, so that an invalidation, or a lost
// connection that may have dropped invalidations, retires it. MemoryStore
// holds bare *Session values and cannot say either, hence a layer of its
// own rather than a MemoryStore underneath.
type localSessions struct {
	shards [memoryShards]localShard
}

type localShard struct {
	mu sync.RWMutex
	m  map[ID]*localEntry
	// epoch moves (under mu) on every invalidation, Put and Delete in the
	// shard. A load from Redis that began before the move may have read
	// what the move replaced, so install refuses it (see RedisStore.load).
	epoch atomic.Uint64
	// echoes counts this replica's own writes whose invalidation has not
	// come back yet: Redis tells every tracking client of every write,
	// the writer included, and our own write must not mark the session we
	// just wrote as changed.
	echoes map[ID]int32
}

type localEntry struct {
	s *Session
	// gen is the store generation (RedisStore.gen) in which Redis last
	// confirmed s. An entry from an older generation may have missed an
	// invalidation: it is checked against Redis before it is served again,
	// unless Redis is unreachable. invalidatedGen: an invalidation for s
	// arrived; it is checked against Redis before it is served, always.
	gen atomic.Uint64
	// pending is set while s is written locally but not yet in Redis (an
	// outage, or the SET in flight). Such an entry is authoritative here:
	// invalidations do not remove it and it needs no confirmation.
	pending atomic.Bool
	// scope says who else may hold s, and so which replay record decides.
	scope atomic.Int32
}

// Entry scopes (docs/REDIS.md, "Outages").
const (
	// scopeShared: s is in Redis, or may be (a write was attempted), so
	// other replicas may accept its frames: the shared record decides.
	scopeShared int32 = iota
	// scopeLocal: paired while Redis was down and never written; no other
	// replica can have it, so its local window is the whole record.
	scopeLocal
	// scopeLocalUsed: a scopeLocal session that accepted frames on its local
	// window alone. It is never written to Redis, so that no other replica
	// can accept those frames again; it lives out its lifetime here.
	scopeLocalUsed
)

// invalidatedGen marks an entry whose key an invalidation named. The store
// generation never reaches it.
const invalidatedGen = ^uint64(0)

func newLocalSessions() *localSessions {
	l := new(localSessions)
	for i := range l.shards {
		l.shards[i].m = make(map[ID]*localEntry)
	}
	return l
}

// servable reports whether the entry may be served without asking Redis:
// while Redis is up, when confirmed in the current generation or pending;
// while it is down, when it is this replica's alone or, with
// sharedDuringOutage, when it is not invalidated.
func (e *localEntry) servable(gen uint64, down, sharedDuringOutage bool) bool {
	if !down {
		return e.gen.Load() == gen || e.pending.Load()
	}
	return e.scope.Load() != scopeShared || (sharedDuringOutage && e.gen.Load() != invalidatedGen)
}

// useLocally reports whether s's frames are decided by its local window
// alone, and if so pins s to this replica for good.
func (e *localEntry) useLocally() bool {
	for {
		switch sc := e.scope.Load(); sc {
		case scopeShared:
			return false
		case scopeLocalUsed:
			return true
		default:
			if e.scope.CompareAndSwap(sc, scopeLocalUsed) {
				return true
			}
		}
	}
}

func (l *localSessions) shard(id ID) *localShard { return &l.shards[id[0]%memoryShards] }

// get is the hot path: one read lock and a map lookup, no allocation.
func (l *localSessions) get(id ID) *localEntry {
	sh := l.shard(id)
	sh.mu.RLock()
	e := sh.m[id]
	sh.mu.RUnlock()
	return e
}

func (l *localSessions) epoch(id ID) uint64 { return l.shard(id).epoch.Load() }

// put stores s as a pending entry, replacing whatever was there.
func (l *localSessions) put(id ID, s *Session, gen uint64, scope int32) *localEntry {
	e := &localEntry{s: s}
	e.gen.Store(gen)
	e.pending.Store(true)
	e.scope.Store(scope)
	sh := l.shard(id)
	sh.mu.Lock()
	sh.m[id] = e
	sh.epoch.Add(1)
	sh.mu.Unlock()
	return e
}

// remove forgets id.
func (l *localSessions) remove(id ID) {
	sh := l.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.epoch.Add(1)
	sh.mu.Unlock()
}

// invalidate marks id's entry as changed in Redis, unless the invalidation
// is the echo of our own write or the entry is pending (ours, not yet in
// Redis). An invalidated entry is never served as it is: the next Get reads
// Redis and keeps the entry (its *Session and replay window) only if Redis
// still holds the same session.
func (l *localSessions) invalidate(id ID) {
	sh := l.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.epoch.Add(1)
	if n := sh.echoes[id]; n > 0 {
		if n == 1 {
			delete(sh.echoes, id)
		} else {
			sh.echoes[id] = n - 1
		}
		return
	}
	if e := sh.m[id]; e != nil && !e.pending.Load() {
		e.gen.Store(invalidatedGen)
	}
}

// expectEcho notes that we are about to write id's key; cancelEcho takes
// that back when the write cannot have changed the key (it failed, or a SET NX
// found the key taken). A write whose outcome is unknown is taken back too: if
// its echo comes after all, the entry is confirmed once more, no harm done.
func (l *localSessions) expectEcho(id ID) {
	sh := l.shard(id)
	sh.mu.Lock()
	if sh.echoes == nil {
		sh.echoes = make(map[ID]int32)
	}
	sh.echoes[id]++
	sh.mu.Unlock()
}

func (l *localSessions) cancelEcho(id ID) {
	sh := l.shard(id)
	sh.mu.Lock()
	if n := sh.echoes[id]; n > 1 {
		sh.echoes[id] = n - 1
	} else {
		delete(sh.echoes, id)
	}
	sh.mu.Unlock()
}

// forgetEchoes drops every expected echo: the connection they would have
// come on is closed.
func (l *localSessions) forgetEchoes() {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		sh.echoes = nil
		sh.mu.Unlock()
	}
}

// install records s, just read from Redis in generation gen, unless the
// shard moved since epoch was read. When the entry already holds the same
// session it is kept, with its replay window, and only confirmed.
func (l *localSessions) install(id ID, s *Session, gen, epoch uint64) (*Session, bool) {
	sh := l.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch.Load() != epoch {
		return nil, false
	}
	if e := sh.m[id]; e != nil && sameSession(e.s, s) {
		e.gen.Store(gen)
		return e.s, true
	}
	e := &localEntry{s: s}
	e.gen.Store(gen)
	sh.m[id] = e
	return s, true
}

// drop forgets the entry old for id, which Redis no longer holds, unless the
// shard moved since epoch was read.
func (l *localSessions) drop(id ID, old *localEntry, epoch uint64) {
	if old == nil {
		return
	}
	sh := l.shard(id)
	sh.mu.Lock()
	if sh.epoch.Load() == epoch && sh.m[id] == old && !old.pending.Load() {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// confirm marks the entry holding s as written to Redis in generation gen.
func (l *localSessions) confirm(id ID, s *Session, gen uint64) {
	sh := l.shard(id)
	sh.mu.Lock()
	if e := sh.m[id]; e != nil && e.s == s {
		e.gen.Store(gen)
		e.pending.Store(false)
	}
	sh.mu.Unlock()
}

// claimForFlush decides whether s, kept for id during an outage, is written
// to Redis now: yes if it is still id's entry and no frame was accepted on
// its local window alone (it becomes shared before the write, so a frame
// arriving meanwhile goes to the shared record); no if it was used (it stays
// on this replica) or is no longer held.
func (l *localSessions) claimForFlush(id ID, s *Session) bool {
	e := l.get(id)
	if e == nil || e.s != s {
		return false
	}
	return e.scope.CompareAndSwap(scopeLocal, scopeShared) || e.scope.Load() == scopeShared
}

// sweep drops expired entries.
func (l *localSessions) sweep(now time.Time) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if e.s.Expired(now) {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
}

// sameSession reports whether a and b are the same session: same id, suite,
// lifetime (to the millisecond, as sealed at rest) and keys (compared in
// constant time).
func sameSession(a, b *Session) bool {
	if a.ClientID != b.ClientID || a.Suite != b.Suite ||
		a.Created.UnixMilli() != b.Created.UnixMilli() || a.Expires.UnixMilli() != b.Expires.UnixMilli() {
		return false
	}
	eq := 1
	for i := range a.keys {
		eq &= subtle.ConstantTimeCompare(a.keys[i][:], b.keys[i][:])
	}
	return eq == 1
}
