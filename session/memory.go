package session

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is the in-process Store: sessions in sharded maps so that
// concurrent lookups of different sessions rarely meet on a lock, and replay
// windows inside the sessions themselves. Lookups do not allocate.
type MemoryStore struct {
	shards  [memoryShards]memoryShard
	now     func() time.Time
	created time.Time // with its monotonic reading: Kept is an elapsed time
	stop    chan struct{}
	done    chan struct{}
}

const memoryShards = 64

type memoryShard struct {
	mu       sync.RWMutex
	sessions map[ID]*Session
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store that drops expired sessions every
// sweep interval (0 means a minute). Close stops the sweeper.
func NewMemoryStore(sweep time.Duration) *MemoryStore {
	if sweep <= 0 {
		sweep = time.Minute
	}
	m := &MemoryStore{now: time.Now, created: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].sessions = make(map[ID]*Session)
	}
	go m.sweepEvery(sweep)
	return m
}

func (m *MemoryStore) shard(id ID) *memoryShard {
	// The id is uniformly random, so any byte of it spreads the load.
	return &m.shards[id[0]%memoryShards]
}

// GetLocal returns the live session with id: every session of a
// MemoryStore is local.
func (m *MemoryStore) GetLocal(id ID) (*Session, bool) {
	sh := m.shard(id)
	sh.mu.RLock()
	s := sh.sessions[id]
	sh.mu.RUnlock()
	if s == nil || s.Expired(m.now()) {
		return nil, false
	}
	return s, true
}

// Get returns the live session with id.
func (m *MemoryStore) Get(_ context.Context, id ID) (*Session, error) {
	if s, ok := m.GetLocal(id); ok {
		return s, nil
	}
	return nil, ErrUnknownSession
}

// Put stores s, replacing any session with the same id.
func (m *MemoryStore) Put(_ context.Context, s *Session) error {
	sh := m.shard(s.ClientID.ID())
	sh.mu.Lock()
	sh.sessions[s.ClientID.ID()] = s
	sh.mu.Unlock()
	return nil
}

// Delete forgets the session with id.
func (m *MemoryStore) Delete(_ context.Context, id ID) error {
	sh := m.shard(id)
	sh.mu.Lock()
	delete(sh.sessions, id)
	sh.mu.Unlock()
	return nil
}

// Accept checks counter against the session's own replay window.
func (m *MemoryStore) Accept(_ context.Context, s *Session, counter uint64) error {
	if !s.Accept(counter) {
		return ErrReplay
	}
	return nil
}

// Kept is how long the store has existed: it loses nothing it holds
// before a session expires, and everything when the process ends.
func (m *MemoryStore) Kept(context.Context) time.Duration { return time.Since(m.created) }

// Len is the number of sessions held, expired ones not yet swept included.
func (m *MemoryStore) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.sessions)
		sh.mu.RUnlock()
	}
	return n
}

// Close stops the sweeper. The store stays readable.
func (m *MemoryStore) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
		<-m.done
	}
	return nil
}

func (m *MemoryStore) sweepEvery(d time.Duration) {
	defer close(m.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Sweep drops expired sessions now.
func (m *MemoryStore) Sweep() {
	now := m.now()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for id, s := range sh.sessions {
			if s.Expired(now) {
				delete(sh.sessions, id)
			}
		}
		sh.mu.Unlock()
	}
}
