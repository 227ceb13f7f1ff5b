package tlsconf

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Set is every TLS side of one relay, loaded and checked.
type Set struct {
	// Listener is nil when the relay serves plain HTTP.
	Listener *Server
	// Peer, Upstream and Redis are never nil: a side without variables
	// verifies servers against the system roots and sends no certificate.
	Peer, Upstream, Redis *Client

	now   func() time.Time
	mu    sync.Mutex // serialises polls: watched is not safe for concurrent use
	files []*watched
}

// Default is the set with no TLS variables: plain HTTP on the listener,
// and every client side verifying servers against the system roots.
func Default() *Set {
	return &Set{
		now:      time.Now,
		Peer:     newClient(ClientSettings{Prefix: "PEER"}),
		Upstream: newClient(ClientSettings{Prefix: "UPSTREAM"}),
		Redis:    newClient(ClientSettings{Prefix: "REDIS"}),
	}
}

// DefaultPollInterval is how often Watch looks at the files: a Kubernetes
// Secret update reaches the pod's volume within about a minute anyway, and
// a poll is a few stat calls.
const DefaultPollInterval = 10 * time.Second

// Load opens and checks every file the settings name. Its error is one
// line naming the variable and what is wrong with the file: unreadable, not
// PEM, a key that does not match its certificate, expired, or not a CA.
func Load(st Settings) (*Set, error) {
	s := &Set{now: time.Now}
	if st.Listener.Enabled() {
		s.Listener = newServer(st.Listener)
		s.files = append(s.files, &s.Listener.cert.w)
		if s.Listener.cas != nil {
			s.files = append(s.files, &s.Listener.cas.w)
		}
	}
	s.Peer, s.Upstream, s.Redis = newClient(st.Peer), newClient(st.Upstream), newClient(st.Redis)
	for _, c := range []*Client{s.Peer, s.Upstream, s.Redis} {
		if c.roots != nil {
			s.files = append(s.files, &c.roots.w)
		}
		if c.cert != nil {
			s.files = append(s.files, &c.cert.w)
		}
	}
	now := s.now()
	for _, w := range s.files {
		if err := w.load(now); err != nil {
			return nil, err
		}
	}
	if s.Listener != nil {
		s.Listener.rebuild()
	}
	return s, nil
}

// Reload re-reads every file now (SIGHUP). Files whose contents did not
// change are left alone; a broken file is refused with one line in log.
func (s *Set) Reload(log *slog.Logger) { s.poll(true, log) }

// Watch polls the files every interval until ctx ends, installing those
// that changed on disk and logging each change or refusal once.
func (s *Set) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if len(s.files) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll(false, log)
		}
	}
}

func (s *Set) poll(force bool, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, w := range s.files {
		w.poll(force, now, log)
	}
}
