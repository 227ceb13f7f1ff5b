package session

import (
	"context"
	"errors"
	"time"
)

// Store holds the inbound relay's sessions, keyed by the random part of the
// client id. Implementations: MemoryStore (in-process sharded maps) and the
// Redis store, which layers a MemoryStore over Redis so that a replica that
// has seen a session once serves it without a network round trip.
type Store interface {
	// GetLocal returns the live session with id if this process can serve
	// it without I/O (an allocation-free map read).
	GetLocal(id ID) (*Session, bool)
	// Get returns the live session with id, or ErrUnknownSession. Unlike
	// GetLocal it may ask a shared store, so callers verify the client id's
	// MAC first: junk ids must not cost a network round trip.
	Get(ctx context.Context, id ID) (*Session, error)
	// Put stores s until s.Expires.
	Put(ctx context.Context, s *Session) error
	// Delete forgets the session with id; deleting an unknown id is no error.
	Delete(ctx context.Context, id ID) error
	// Accept records that request counter of s was received and returns
	// ErrReplay if it was received before. A shared store must refuse a
	// counter accepted by any replica (docs/PROTOCOL.md §6).
	Accept(ctx context.Context, s *Session, counter uint64) error
	// Kept returns how long the store has kept every session it was given
	// and every counter it accepted, until they expire: a session it does
	// not know now was never stored, has expired, or was lost more than
	// Kept ago (a restart, a flush). It is 0 when the store cannot vouch for
	// anything, as a Redis store cut off from Redis. An inbound relay sends
	// it in its unknown-session proof (docs/PROTOCOL.md §2.3).
	Kept(ctx context.Context) time.Duration
	// Close releases the store's resources.
	Close() error
}

// Store errors.
var (
	ErrUnknownSession = errors.New("session: unknown session")
	ErrReplay         = errors.New("session: replayed message")
)
