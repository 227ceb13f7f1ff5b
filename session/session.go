package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/session/replay"
)

const (
	keyRequestMKE = iota
	keyRequestMTE
	keyResponseMKE
	keyResponseMTE
	numKeys
)

// Session is one paired relay-to-relay session. The outbound relay seals
// requests with Request and opens responses with Response; the inbound relay
// does the reverse. It serves any number of concurrent requests: the counter
// is atomic and the replay window is locked only for one bitmap update.
type Session struct {
	ClientID ClientID
	Suite    Suite
	Created  time.Time
	Expires  time.Time
	Request  *codec.Keys
	Response *codec.Keys

	keys    [numKeys][32]byte // kept to seal the session at rest
	counter atomic.Uint64     // outbound: last request counter used

	mu     sync.Mutex
	window replay.Window // inbound: request counters accepted
}

func (s *Secrets) newSession(suite Suite, id ClientID, shared, request, response []byte, created, expires time.Time) (*Session, error) {
	keys, err := s.deriveKeys(shared, request, response)
	if err != nil {
		return nil, err
	}
	return sessionFromKeys(suite, id, keys, created, expires), nil
}

func sessionFromKeys(suite Suite, id ClientID, keys [numKeys][32]byte, created, expires time.Time) *Session {
	return &Session{
		ClientID: id,
		Suite:    suite,
		Created:  created,
		Expires:  expires,
		Request:  codec.NewKeys(keys[keyRequestMKE][:], keys[keyRequestMTE][:]),
		Response: codec.NewKeys(keys[keyResponseMKE][:], keys[keyResponseMTE][:]),
		keys:     keys,
	}
}

// NextCounter returns the counter for the next request. ok is false once the
// session has sealed RejectAfterMessages requests: it must not seal more.
func (s *Session) NextCounter() (counter uint64, ok bool) {
	c := s.counter.Add(1)
	return c, c < RejectAfterMessages
}

// Sealed is how many request counters the session has handed out.
func (s *Session) Sealed() uint64 { return s.counter.Load() }

// Accept records a request counter in the session's own replay window and
// reports whether it is new. Call it only after the frame authenticated.
func (s *Session) Accept(counter uint64) bool {
	if counter == 0 || counter >= RejectAfterMessages {
		return false
	}
	s.mu.Lock()
	ok := s.window.Accept(counter)
	s.mu.Unlock()
	return ok
}

// RekeyAt is when the outbound relay starts pairing anew.
func (s *Session) RekeyAt() time.Time {
	return s.Created.Add(time.Duration(float64(s.Expires.Sub(s.Created)) * RekeyAfterFraction))
}

// Expired reports whether the session may no longer be used at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.Expires) }

// String names the session without key material.
func (s *Session) String() string {
	return "session " + string(s.ClientID.AppendText(nil)[:8]) + "… (" + s.Suite.String() + ")"
}
